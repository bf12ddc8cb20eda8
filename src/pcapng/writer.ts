// pcapng block encoders (little-endian, pcapng 1.0): SHB, IDB, EPB, ISB, NRB, DSB and custom blocks with options.
// Used by export, the session store and tests; everything here returns one complete block as a Buffer.
import { ipToBytes } from '../util/ip.js';
import {
  BLOCK_CB_COPY, BLOCK_CB_NOCOPY, BLOCK_DSB, BLOCK_EPB, BLOCK_IDB, BLOCK_ISB, BLOCK_NRB, BLOCK_SHB, BYTE_ORDER_MAGIC,
  TAPSCOPE_PEN, type NameRecord, type RawOption,
} from './types.js';

const TWO32 = 4294967296;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function strOpt(code: number, s: string | null | undefined): RawOption[] {
  return s === null || s === undefined ? [] : [{ code, value: Buffer.from(s, 'utf8') }];
}

function u64Opt(code: number, v: bigint | number | null | undefined): RawOption[] {
  if (v === null || v === undefined) return [];
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return [{ code, value: b }];
}

function commentOpts(comments: string[] | undefined): RawOption[] {
  return (comments ?? []).map((c) => ({ code: 1, value: Buffer.from(c, 'utf8') }));
}

function optionsLength(opts: RawOption[]): number {
  if (opts.length === 0) return 0;
  let n = 4; // opt_endofopt
  for (const o of opts) n += 4 + pad4(o.value.length);
  return n;
}

/** Builds a block: type, total length, fixed body, data (padded), options, trailing length. */
export function encodeBlock(type: number, fixed: Buffer, data: Buffer | null, opts: RawOption[]): Buffer {
  const dataLen = data ? pad4(data.length) : 0;
  const len = 12 + fixed.length + dataLen + optionsLength(opts);
  const out = Buffer.alloc(len);
  out.writeUInt32LE(type >>> 0, 0);
  out.writeUInt32LE(len, 4);
  fixed.copy(out, 8);
  let p = 8 + fixed.length;
  if (data) {
    data.copy(out, p);
    p += dataLen;
  }
  if (opts.length > 0) {
    for (const o of opts) {
      out.writeUInt16LE(o.code, p);
      out.writeUInt16LE(o.value.length, p + 2);
      o.value.copy(out, p + 4);
      p += 4 + pad4(o.value.length);
    }
    p += 4; // endofopt: zeros
  }
  out.writeUInt32LE(len, len - 4);
  return out;
}

export interface ShbInit {
  hardware?: string | null;
  os?: string | null;
  userappl?: string | null;
  comments?: string[];
}

export function encodeShb(init: ShbInit = {}): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(BYTE_ORDER_MAGIC, 0);
  fixed.writeUInt16LE(1, 4);
  fixed.writeUInt16LE(0, 6);
  fixed.writeBigInt64LE(-1n, 8); // section length unknown
  return encodeBlock(BLOCK_SHB, fixed, null, [
    ...commentOpts(init.comments), ...strOpt(2, init.hardware), ...strOpt(3, init.os), ...strOpt(4, init.userappl),
  ]);
}

export interface IdbInit {
  linkType: number;
  snapLen?: number;
  name?: string | null;
  description?: string | null;
  /** Raw if_tsresol (default 9: nanoseconds). */
  tsresol?: number;
  /** if_tsoffset seconds. */
  tsoffset?: number;
  comments?: string[];
}

export function encodeIdb(init: IdbInit): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(init.linkType, 0);
  fixed.writeUInt32LE(init.snapLen ?? 0, 4);
  const tsresol = init.tsresol ?? 9;
  const opts: RawOption[] = [...commentOpts(init.comments), ...strOpt(2, init.name), ...strOpt(3, init.description)];
  // why: 6 (microseconds) is the default; omit it to match what capture tools write.
  if (tsresol !== 6) opts.push({ code: 9, value: Buffer.from([tsresol]) });
  if (init.tsoffset) {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(init.tsoffset));
    opts.push({ code: 14, value: b });
  }
  return encodeBlock(BLOCK_IDB, fixed, null, opts);
}

export interface EpbInit {
  interfaceId: number;
  tsHigh: number;
  tsLow: number;
  data: Buffer;
  origLen?: number;
  flags?: number | null;
  comments?: string[];
}

export function encodeEpb(init: EpbInit): Buffer {
  const fixed = Buffer.alloc(20);
  fixed.writeUInt32LE(init.interfaceId, 0);
  fixed.writeUInt32LE(init.tsHigh >>> 0, 4);
  fixed.writeUInt32LE(init.tsLow >>> 0, 8);
  fixed.writeUInt32LE(init.data.length, 12);
  fixed.writeUInt32LE(init.origLen ?? init.data.length, 16);
  const opts: RawOption[] = [...commentOpts(init.comments)];
  if (init.flags !== null && init.flags !== undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(init.flags >>> 0);
    opts.push({ code: 2, value: b });
  }
  return encodeBlock(BLOCK_EPB, fixed, init.data, opts);
}

export interface IsbInit {
  interfaceId: number;
  tsHigh: number;
  tsLow: number;
  ifRecv?: bigint | number | null;
  ifDrop?: bigint | number | null;
  osDrop?: bigint | number | null;
  filterAccept?: bigint | number | null;
  usrDeliv?: bigint | number | null;
  comments?: string[];
}

export function encodeIsb(init: IsbInit): Buffer {
  const fixed = Buffer.alloc(12);
  fixed.writeUInt32LE(init.interfaceId, 0);
  fixed.writeUInt32LE(init.tsHigh >>> 0, 4);
  fixed.writeUInt32LE(init.tsLow >>> 0, 8);
  return encodeBlock(BLOCK_ISB, fixed, null, [
    ...commentOpts(init.comments), ...u64Opt(4, init.ifRecv), ...u64Opt(5, init.ifDrop), ...u64Opt(6, init.filterAccept),
    ...u64Opt(7, init.osDrop), ...u64Opt(8, init.usrDeliv),
  ]);
}

export function encodeCustom(pen: number, data: Buffer, copiable = true): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt32LE(pen, 0);
  // why: custom data has no length field; pad with NULs (Tapscope's JSON readers strip them).
  return encodeBlock(copiable ? BLOCK_CB_COPY : BLOCK_CB_NOCOPY, fixed, data, []);
}

/** A Tapscope JSON record as a copiable custom block (native/FORMAT.md). */
export function encodeTapscopeRecord(record: { t: string } & Record<string, unknown>): Buffer {
  return encodeCustom(TAPSCOPE_PEN, Buffer.from(JSON.stringify(record), 'utf8'), true);
}

export function encodeDsb(secretsType: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt32LE(secretsType >>> 0, 0);
  fixed.writeUInt32LE(data.length, 4);
  return encodeBlock(BLOCK_DSB, fixed, data, []);
}

export function encodeNrb(records: NameRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const addr = ipToBytes(r.address);
    if (!addr) continue;
    const value = Buffer.concat([addr, ...r.names.map((n) => Buffer.from(`${n}\0`, 'utf8'))]);
    const rec = Buffer.alloc(4 + pad4(value.length));
    rec.writeUInt16LE(r.kind === 'ipv4' ? 1 : 2, 0);
    rec.writeUInt16LE(value.length, 2);
    value.copy(rec, 4);
    parts.push(rec);
  }
  parts.push(Buffer.alloc(4)); // nrb_record_end
  return encodeBlock(BLOCK_NRB, Buffer.concat(parts), null, []);
}

/** Splits a timestamp given in milliseconds into pcapng high/low words for an interface resolution. */
export function tsFromMs(ms: number, unitsPerSecond = 1e9): { tsHigh: number; tsLow: number } {
  const units = Math.round((ms / 1000) * unitsPerSecond);
  return { tsHigh: Math.floor(units / TWO32), tsLow: units % TWO32 };
}

/** Splits a nanosecond timestamp (bigint, exact) into high/low words. */
export function tsFromNs(ns: bigint): { tsHigh: number; tsLow: number } {
  return { tsHigh: Number(ns >> 32n), tsLow: Number(ns & 0xffffffffn) };
}
