// Unsigned integers read from bytes inline. Buffer.readUInt16BE/32LE/... validate their argument on every
// call, which was a third of the block walk and a tenth of packet decoding; callers check bounds first.

export function be16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** The same 32 bits as be32, as a signed int32: a key that stays a small integer for every address. */
export function be32s(b: Uint8Array, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

export function le32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** The text of an option value in v[start, end) without trailing NULs (a string option's padding some writers include). */
export function utf8NoNul(v: Buffer, start: number, end: number): string {
  return v.toString('utf8', start, noNulEnd(v, start, end));
}

function noNulEnd(v: Uint8Array, start: number, end: number): number {
  while (end > start && v[end - 1] === 0) end--;
  return end;
}

/**
 * utf8NoNul that remembers its last text: the same bytes again give the same string without decoding them. Decrypted
 * records come in runs with one comment and one protocol name (a response read in chunks), each decoded once.
 */
export class LastText {
  private readonly bytes = Buffer.alloc(256);
  /** bytes[0, len) is the last text's encoding; -1 when it was too long to keep */
  private len = -1;
  private text = '';

  of(v: Buffer, start: number, end: number): string {
    end = noNulEnd(v, start, end);
    const n = end - start;
    if (n === this.len) {
      let i = 0;
      while (i < n && v[start + i] === this.bytes[i]) i++;
      if (i === n) return this.text;
    }
    this.text = v.toString('utf8', start, end);
    if (n <= this.bytes.length) {
      v.copy(this.bytes, 0, start, end);
      this.len = n;
    } else this.len = -1;
    return this.text;
  }
}
