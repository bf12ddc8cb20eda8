// Bytes that come at offsets, in any order and in pieces of any size (QUIC's CRYPTO and STREAM frames, DTLS's handshake
// fragments), put back in order. Each piece is handled in logarithmic time whatever the order: a hostile peer's
// one-byte pieces sent backwards once cost time quadratic in their number (a 6 MB capture of QUIC Initials took 36 s
// to read, tshark 1 s), and memory follows the bytes received, never a length a header declares.

/**
 * Pieces waiting for the hole before them to fill, smallest offset first (a binary heap). A piece is kept only when it
 * reaches further than those waiting at its offset (a retransmission of the same piece is not kept twice).
 */
export class Later {
  private readonly offsets: number[] = [];
  private readonly pieces: Buffer[] = [];
  /** the longest piece waiting at each offset */
  private readonly longest = new Map<number, number>();
  /** the bytes of the pieces waiting */
  bytes = 0;

  get size(): number {
    return this.offsets.length;
  }

  /** Whether a piece of `length` bytes at `offset` would be kept: none waiting there reaches as far. */
  wants(offset: number, length: number): boolean {
    return (this.longest.get(offset) ?? -1) < length;
  }

  /** Keeps `piece` (the caller's: copy a view first) when wanted (see wants); false when not. */
  push(offset: number, piece: Buffer): boolean {
    if (!this.wants(offset, piece.length)) return false;
    this.longest.set(offset, piece.length);
    this.bytes += piece.length;
    const o = this.offsets;
    const p = this.pieces;
    let i = o.length;
    o.push(offset);
    p.push(piece);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (o[up]! <= offset) break;
      o[i] = o[up]!;
      p[i] = p[up]!;
      i = up;
    }
    o[i] = offset;
    p[i] = piece;
    return true;
  }

  /**
   * The bytes from `next` on of the waiting piece that reaches past it, taken out with the pieces wholly before it;
   * null when the first piece left begins after `next` (there is still a hole) or none is left.
   */
  from(next: number): Buffer | null {
    while (this.offsets.length > 0) {
      const offset = this.offsets[0]!;
      if (offset > next) return null;
      const piece = this.pop();
      if (offset + piece.length > next) return piece.subarray(next - offset);
    }
    return null;
  }

  clear(): void {
    this.offsets.length = 0;
    this.pieces.length = 0;
    this.longest.clear();
    this.bytes = 0;
  }

  private pop(): Buffer {
    const o = this.offsets;
    const p = this.pieces;
    const top = p[0]!;
    if (this.longest.get(o[0]!) === top.length) this.longest.delete(o[0]!);
    this.bytes -= top.length;
    const lastO = o.pop()!;
    const lastP = p.pop()!;
    const n = o.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const c = l + 1 < n && o[l + 1]! < o[l]! ? l + 1 : l;
        if (o[c]! >= lastO) break;
        o[i] = o[c]!;
        p[i] = p[c]!;
        i = c;
      }
      o[i] = lastO;
      p[i] = lastP;
    }
    return top;
  }
}

/**
 * The run of bytes from offset 0 as pieces fill it: a piece reaching past the run's end extends it (the bytes first
 * seen at a position are kept), one beginning after it waits for the hole to fill.
 */
export class InOrder {
  private readonly parts: Buffer[] = [];
  private joined: Buffer | null = null;
  private readonly later = new Later();
  /** where the run from offset 0 ends */
  end = 0;

  /** The bytes of a piece at `offset` (a view is fine: what is kept is copied). */
  add(offset: number, data: Buffer): void {
    if (offset > this.end) {
      if (this.later.wants(offset, data.length)) this.later.push(offset, Buffer.from(data));
      return;
    }
    if (offset + data.length <= this.end) return;
    this.extend(Buffer.from(data.subarray(this.end - offset)));
    for (let next = this.later.from(this.end); next !== null; next = this.later.from(this.end)) this.extend(next);
  }

  /** The run from offset 0 (up to its first hole). */
  bytes(): Buffer {
    if (this.joined === null) {
      this.joined = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.end);
      // (joined once: the parts are the joined bytes from here)
      this.parts.length = 0;
      if (this.end > 0) this.parts.push(this.joined);
    }
    return this.joined;
  }

  /** Bytes of the pieces still waiting for a hole before them. */
  get waiting(): number {
    return this.later.bytes;
  }

  private extend(piece: Buffer): void {
    this.parts.push(piece);
    this.end += piece.length;
    this.joined = null;
  }
}
