// HTTP/2 frame and HPACK field builders for the redaction tests (fields encoded by hand so a test controls
// indexing and dynamic-table references; strings, raw or Huffman, through hpack.js's encoder), and an
// independent decoder of header blocks (hpack.js's decompressor).
import hpack from 'hpack.js';

interface HpackLib {
  encoder: { create(): { encodeStr(v: number[], huffman: boolean): void; render(): Buffer[] } };
  decompressor: {
    create(o: { table: { maxSize: number } }): {
      write(b: Buffer): void;
      execute(): void;
      read(): { name: string; value: string } | null;
      on(e: string, f: (err: Error) => void): void;
    };
  };
}
const lib = hpack as unknown as HpackLib;

export const HEADERS = 1;
export const CONTINUATION = 9;
export const DATA = 0;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;

/** An HPACK integer with an N-bit prefix, OR-ed into `pattern`. */
export function int(v: number, prefixBits: number, pattern: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (v < max) return Buffer.from([pattern | v]);
  const out = [pattern | max];
  for (v -= max; v >= 128; v >>= 7) out.push((v & 0x7f) | 0x80);
  out.push(v);
  return Buffer.from(out);
}

export function str(s: string, huffman: boolean): Buffer {
  const e = lib.encoder.create();
  e.encodeStr([...Buffer.from(s, 'latin1')], huffman);
  return Buffer.concat(e.render());
}

export const indexed = (i: number): Buffer => int(i, 7, 0x80);
/** Literal with incremental indexing, new name. */
export const addNew = (name: string, value: string, huffman = false): Buffer => Buffer.concat([Buffer.from([0x40]), str(name, huffman), str(value, huffman)]);
/** Literal with incremental indexing, indexed name. */
export const addIdx = (i: number, value: string, huffman = false): Buffer => Buffer.concat([int(i, 6, 0x40), str(value, huffman)]);
/** Literal without indexing (or never indexed), indexed name. */
export const litIdx = (i: number, value: string, huffman = false, never = false): Buffer => Buffer.concat([int(i, 4, never ? 0x10 : 0), str(value, huffman)]);
export const sizeUpdate = (n: number): Buffer => int(n, 5, 0x20);

export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

export const SETTINGS = frame(4, 0, 0, Buffer.alloc(0));

/** Decodes header blocks in order with hpack.js (one table across them); throws on an HPACK error. */
export function decodeBlocks(blocks: Buffer[]): [string, string][][] {
  const d = lib.decompressor.create({ table: { maxSize: 4096 } });
  let err: Error | null = null;
  d.on('error', (e) => { err = e; });
  return blocks.map((b) => {
    d.write(b);
    d.execute();
    if (err) throw err;
    const out: [string, string][] = [];
    for (let h = d.read(); h; h = d.read()) out.push([h.name, h.value]);
    return out;
  });
}
