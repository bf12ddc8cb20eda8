// A length-prefixed unit (an HTTP/2 frame, a DNS message over TCP) that comes in many pieces: the pieces are kept and
// joined once, when all of it is here. why: joining each piece to all before it copied a 4 MiB frame 1,500 times.

export class Pieces {
  private readonly parts: Buffer[];
  private have: number;

  /** `first`: the unit's bytes so far (kept as it is: the caller's own), `need`: the unit's whole length */
  constructor(first: Buffer, private readonly need: number) {
    this.parts = [first];
    this.have = first.length;
  }

  /** The unit's bytes and what came after them, once `chunk` completes it; null while it does not (`chunk` copied, as it
   * may be a view of the reader's buffer). */
  add(chunk: Buffer): Buffer | null {
    this.have += chunk.length;
    if (this.have < this.need) {
      this.parts.push(Buffer.from(chunk));
      return null;
    }
    this.parts.push(chunk);
    return Buffer.concat(this.parts, this.have);
  }
}
