// Minimal pcapng block walker for helper tests: lists blocks, decodes Tapscope custom-block JSON and
// EPB comments. Deliberately independent of the core's reader in src/pcapng/ (which it helps test).
import { readFileSync } from 'node:fs';

export interface Block { type: number; offset: number; body: Buffer }
export interface Epb { ifid: number; tsNs: bigint; caplen: number; origlen: number; data: Buffer; comment: string | null; flags: number | null }
export interface Idb { linktype: number; snaplen: number; name: string | null; description: string | null }

export const TAPSCOPE_PEN = 32473;

/** Walks a little-endian pcapng buffer; throws on a torn or inconsistent block (a trailing partial block is an error). */
export function walkBlocks(buf: Buffer): Block[] {
  const out: Block[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 12 > buf.length) throw new Error(`truncated block header at ${off}`);
    const type = buf.readUInt32LE(off);
    const len = buf.readUInt32LE(off + 4);
    if (len < 12 || len % 4 !== 0 || off + len > buf.length) throw new Error(`bad block length ${len} at ${off}`);
    if (buf.readUInt32LE(off + len - 4) !== len) throw new Error(`trailing length mismatch at ${off}`);
    out.push({ type, offset: off, body: buf.subarray(off + 8, off + len - 4) });
    off += len;
  }
  return out;
}

function parseOptions(b: Buffer, start: number): Map<number, Buffer[]> {
  const opts = new Map<number, Buffer[]>();
  let o = start;
  while (o + 4 <= b.length) {
    const code = b.readUInt16LE(o);
    const len = b.readUInt16LE(o + 2);
    if (code === 0) break;
    const v = b.subarray(o + 4, o + 4 + len);
    opts.set(code, [...(opts.get(code) ?? []), v]);
    o += 4 + ((len + 3) & ~3);
  }
  return opts;
}

export interface Capture {
  blocks: Block[];
  idbs: Idb[];
  epbs: Epb[];
  /** Custom block JSON records, in stream order. */
  records: Array<Record<string, unknown> & { t: string }>;
}

export function readCapture(pathOrBuf: string | Buffer): Capture {
  const buf = typeof pathOrBuf === 'string' ? readFileSync(pathOrBuf) : pathOrBuf;
  const blocks = walkBlocks(buf);
  const idbs: Idb[] = [];
  const epbs: Epb[] = [];
  const records: Capture['records'] = [];
  for (const b of blocks) {
    if (b.type === 1) {
      const o = parseOptions(b.body, 8);
      idbs.push({ linktype: b.body.readUInt16LE(0), snaplen: b.body.readUInt32LE(4),
        name: o.get(2)?.[0]?.toString() ?? null, description: o.get(3)?.[0]?.toString() ?? null });
    } else if (b.type === 6) {
      const caplen = b.body.readUInt32LE(12);
      const o = parseOptions(b.body, 20 + ((caplen + 3) & ~3));
      epbs.push({ ifid: b.body.readUInt32LE(0), tsNs: (BigInt(b.body.readUInt32LE(4)) << 32n) | BigInt(b.body.readUInt32LE(8)),
        caplen, origlen: b.body.readUInt32LE(16), data: b.body.subarray(20, 20 + caplen),
        comment: o.get(1)?.[0]?.toString() ?? null, flags: o.get(2)?.[0]?.readUInt32LE(0) ?? null });
    } else if ((b.type === 0xbad || b.type === 0x40000bad) && b.body.readUInt32LE(0) === TAPSCOPE_PEN) {
      const text = b.body.subarray(4).toString('utf8').replace(/\0+$/, '');
      records.push(JSON.parse(text) as Capture['records'][number]);
    }
  }
  return { blocks, idbs, epbs, records };
}

/** Parses a `tapscope-tls k=v ...` EPB comment. */
export function parseTlsComment(c: string | null): Record<string, string> | null {
  if (!c?.startsWith('tapscope-tls ')) return null;
  return Object.fromEntries(c.slice(13).split(' ').map((kv) => { const i = kv.indexOf('='); return [kv.slice(0, i), kv.slice(i + 1)]; }));
}
