// Whole blocks in a pcapng byte stream cut anywhere, by their length fields alone (no block is decoded): what
// the transports pass on (only whole blocks, so a cut never tears one) and the live merge of node streams share.
import { BLOCK_SHB, BYTE_ORDER_MAGIC, MAX_BLOCK_LENGTH } from './types.js';

/** Where a stream's framing stands between calls: the byte order of its current section. */
export interface Framing {
  le: boolean;
  /** a section header was seen (before one, the bytes are not known to be pcapng) */
  sectioned: boolean;
}

export function newFraming(): Framing {
  return { le: true, sectioned: false };
}

/**
 * Walks the whole blocks of buf from `from`, calling onBlock(start, end) for each (a section header first
 * updates `f`); returns the offset after the last whole one, or -1 at a length no block can have (the bytes
 * are not pcapng from there on).
 */
export function wholeBlocks(buf: Buffer, from: number, f: Framing, onBlock?: (start: number, end: number) => void): number {
  let off = from;
  while (buf.length - off >= 12) {
    if (buf.readUInt32LE(off) === BLOCK_SHB) {
      f.le = buf.readUInt32LE(off + 8) === BYTE_ORDER_MAGIC;
      f.sectioned = true;
    }
    const len = f.le ? buf.readUInt32LE(off + 4) : buf.readUInt32BE(off + 4);
    if (len < 12 || len % 4 !== 0 || len > MAX_BLOCK_LENGTH) return -1;
    if (buf.length - off < len) break;
    onBlock?.(off, off + len);
    off += len;
  }
  return off;
}
