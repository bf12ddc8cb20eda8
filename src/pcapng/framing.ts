// Whole blocks in a pcapng byte stream cut anywhere, by their length fields alone (no block is decoded): what
// the transports pass on and the node files are written in (only whole blocks, so a cut or a kill never tears one), and
// what the live merge of node streams shares.
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

/**
 * A pcapng stream cut anywhere, handed on in whole blocks: push() returns the bytes up to the end of the last whole
 * block and holds the rest until the chunks after it complete that block. From a length no block can have on, the
 * bytes are not pcapng, and are handed on as they come (the parser that reads them says where they went wrong).
 */
export class WholeBlocks {
  private pending = Buffer.alloc(0);
  private framing = newFraming();
  private raw = false;

  /** The whole blocks `chunk` completes; onBlock(start, end) is called for each, at its offsets in what is returned. */
  push(chunk: Buffer, onBlock?: (start: number, end: number) => void): Buffer {
    if (this.raw) return chunk;
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = wholeBlocks(buf, 0, this.framing, onBlock);
    if (off < 0) {
      this.raw = true;
      off = buf.length;
    }
    // (a copy: the held bytes outlive the chunk they came in)
    this.pending = Buffer.from(buf.subarray(off));
    return buf.subarray(0, off);
  }

  /** Drops the bytes held (a block the stream's end tore) and starts over, for a new stream. */
  reset(): void {
    this.pending = Buffer.alloc(0);
    this.framing = newFraming();
    this.raw = false;
  }
}
