// Secret redaction inside HTTP/2 header blocks of decrypted records (pcapng export). One H2Redactor follows
// one direction of a connection across records: frames (a frame header or payload may straddle records),
// header blocks (HEADERS/PUSH_PROMISE + CONTINUATION, fed piece by piece) and the HPACK dynamic table's names
// and entry sizes, so a literal whose name is an index into the dynamic table is recognised too.
//
// Values of Authorization, Proxy-Authorization, Cookie and Set-Cookie are overwritten in place, lengths kept:
// raw strings with 'x'; a Huffman string, when it lies in one record, with another valid Huffman string of the
// same byte length that decodes to the same number of characters (mostly 'x'), so the receiver's dynamic table
// (and tshark's) keeps the same entry sizes. A Huffman value split across two records is filled with '0'
// codes and valid padding instead (the first part is written before the rest is seen): still decodable, but
// its decoded length may differ, which can shift tshark's view of later dynamic-table entries (not ours).
// Fields sent as an index into the dynamic table carry no value bytes (they repeat an earlier literal, which
// was redacted where it appeared).
//
// Conservative cases: when the dynamic table is not known (the connection was seen mid-way, or bytes of a
// header block were missing from the capture), every literal whose name refers to the dynamic table has its
// value masked. A header block we cannot decode (bad integer or string, invalid Huffman name, a block ending
// mid-field) is masked with 'x' from the field we could not decode to the block's end (tshark then reports
// that block as undecodable). When frame boundaries are lost (bytes missing across a frame header), records
// are masked whole until one starts with a plausible frame header. A direction taken for HTTP/2 from its bytes
// alone (a cleartext connection taken up in the middle) loses them at a frame header no sender would write too.
import hpack from 'hpack.js';
import { H2_PREFACE } from '../dissect/http2.js';
import { MASK, isSecretHeader } from './redact.js';

const FRAME_HEADERS = 0x1;
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_CONTINUATION = 0x9;
const MAX_KNOWN_FRAME_TYPE = 0x9;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const STATIC_COUNT = 61;
const HPACK_DEFAULT = 4096;
const ENTRY_OVERHEAD = 32;
// why: an unfinished field is held until its last byte arrives; a single field this large is not a header a
// peer would accept, and the cap bounds the memory per direction.
const PENDING_CAP = 256 * 1024;

/** RFC 7541 static table names, 1-based (index 0 unused). */
const STATIC_NAMES: string[] = (() => {
  const t = hpack.table.create({ maxSize: HPACK_DEFAULT });
  return ['', ...Array.from({ length: STATIC_COUNT }, (_, i) => t.lookup(i + 1).name)];
})();

// ---- Huffman (RFC 7541 Appendix B, code table from hpack.js: [bits, code] per symbol, 256 = EOS) ----

const CODES = (hpack as unknown as { huffman: { encode: [number, number][] } }).huffman.encode;
const EOS = 256;

/** Binary trie of the code: node n's children at 2n and 2n+1; a positive entry is a node, -(sym+1) a leaf. */
const TRIE: Int32Array = (() => {
  const t: number[] = [0, 0];
  CODES.forEach(([bits, code], sym) => {
    let node = 0;
    for (let k = bits - 1; k >= 0; k--) {
      const slot = node * 2 + ((code >>> k) & 1);
      if (k === 0) t[slot] = -(sym + 1);
      else {
        if (t[slot] === 0) {
          t.push(0, 0);
          t[slot] = t.length / 2 - 1;
        }
        node = t[slot]!;
      }
    }
  });
  return Int32Array.from(t);
})();

/** Decodes a Huffman string; null when invalid (EOS inside, padding over 7 bits or not all ones). */
export function huffmanDecode(buf: Buffer, start: number, end: number): number[] | null {
  const out: number[] = [];
  let node = 0;
  let depth = 0;
  let ones = true;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let k = 7; k >= 0; k--) {
      const bit = (byte >> k) & 1;
      const next = TRIE[node * 2 + bit]!;
      if (next < 0) {
        if (-next - 1 === EOS) return null;
        out.push(-next - 1);
        node = 0;
        depth = 0;
        ones = true;
      } else {
        node = next;
        depth++;
        ones &&= bit === 1;
      }
    }
  }
  return depth <= 7 && ones ? out : null;
}

/** One symbol per code length: 'x' (7 bits), '0' (5), '-' (6), '*' (8), then printable characters, then any. */
const SYMBOL_OF_LENGTH: Map<number, number> = (() => {
  const order = [0x78, 0x30, 0x2d, 0x2a, ...Array.from({ length: 94 }, (_, i) => 0x21 + i), ...Array.from({ length: 256 }, (_, i) => i)];
  const m = new Map<number, number>();
  for (const sym of order) if (!m.has(CODES[sym]![0])) m.set(CODES[sym]![0], sym);
  return m;
})();
const LENGTHS = [...SYMBOL_OF_LENGTH.keys()].sort((a, b) => a - b);
const MIN_LEN = LENGTHS[0]!;
const MAX_LEN = LENGTHS[LENGTHS.length - 1]!;

/**
 * A valid Huffman string of exactly `bytes` bytes that decodes to exactly `symbols` characters (mostly 'x'),
 * or null when none exists. Code lengths are picked one by one near the average still needed, within what
 * the remaining symbols can still reach; padding (under 8 bits) is all ones.
 */
export function huffmanFiller(bytes: number, symbols: number): Buffer | null {
  const hi = bytes * 8;
  const lo = hi - 7;
  const lens: number[] = [];
  let used = 0;
  for (let i = 0; i < symbols; i++) {
    const rest = symbols - i - 1;
    const cMax = hi - used - rest * MIN_LEN;
    const cMin = lo - used - rest * MAX_LEN;
    const ideal = (hi - used) / (rest + 1);
    let best = -1;
    for (const l of LENGTHS) if (l >= cMin && l <= cMax && (best < 0 || Math.abs(l - ideal) < Math.abs(best - ideal))) best = l;
    if (best < 0) return null;
    lens.push(best);
    used += best;
  }
  if (used < lo || used > hi) return null;
  const out = Buffer.alloc(bytes);
  let bit = 0;
  const put = (code: number, n: number): void => {
    for (let k = n - 1; k >= 0; k--, bit++) if ((code >>> k) & 1) out[bit >> 3]! |= 0x80 >> (bit & 7);
  };
  for (const l of lens) put(CODES[SYMBOL_OF_LENGTH.get(l)!]![1], l);
  put(0xff, hi - used);
  return out;
}

/** The '0'-code fill for a Huffman value whose first bytes were written before its end was seen. */
function zeroFiller(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  const pad = (bytes * 8) % 5;
  if (bytes > 0 && pad > 0) out[bytes - 1] = (1 << pad) - 1;
  return out;
}

// ---- HPACK ----

/** The dynamic table as far as redaction needs it: names and entry sizes, newest first. */
class DynamicNames {
  private entries: { name: string; size: number }[] = [];
  private size = 0;
  private max = HPACK_DEFAULT;

  /** False once an update was missed: dynamic indexes then resolve to null (unknown). */
  constructor(public known: boolean) {}

  /** The name at an HPACK index; null when unknown or out of range. */
  name(index: number): string | null {
    if (index >= 1 && index <= STATIC_COUNT) return STATIC_NAMES[index]!;
    if (!this.known) return null;
    return this.entries[index - STATIC_COUNT - 1]?.name ?? null;
  }

  add(name: string, valueLen: number): void {
    const size = name.length + valueLen + ENTRY_OVERHEAD;
    this.evict(this.max - size);
    if (size <= this.max) {
      this.entries.unshift({ name, size });
      this.size += size;
    }
  }

  resize(max: number): void {
    this.max = max;
    this.evict(max);
  }

  forget(): void {
    this.known = false;
    this.entries = [];
    this.size = 0;
  }

  private evict(room: number): void {
    while (this.size > Math.max(room, 0) && this.entries.length > 0) this.size -= this.entries.pop()!.size;
  }
}

interface Str { huffman: boolean; start: number; end: number }
const INCOMPLETE = 'incomplete';
const INVALID = 'invalid';
type Parsed<T> = T | typeof INCOMPLETE | typeof INVALID;

function readInt(buf: Buffer, p: number, prefixBits: number): Parsed<{ value: number; next: number }> {
  if (p >= buf.length) return INCOMPLETE;
  const mask = (1 << prefixBits) - 1;
  let value = buf[p]! & mask;
  p++;
  if (value < mask) return { value, next: p };
  for (let m = 0; ; m += 7) {
    if (m > 28) return INVALID;
    if (p >= buf.length) return INCOMPLETE;
    const b = buf[p++]!;
    value += (b & 0x7f) * 2 ** m;
    if ((b & 0x80) === 0) return { value, next: p };
  }
}

/** A string's span; its end may lie beyond the bytes held so far (the caller checks). */
function readStr(buf: Buffer, p: number): Parsed<Str> {
  if (p >= buf.length) return INCOMPLETE;
  const len = readInt(buf, p, 7);
  if (typeof len === 'string') return len;
  return { huffman: (buf[p]! & 0x80) !== 0, start: len.next, end: len.next + len.value };
}

function strText(buf: Buffer, s: Str): string | null {
  if (!s.huffman) return buf.toString('latin1', s.start, s.end);
  const syms = huffmanDecode(buf, s.start, s.end);
  return syms ? String.fromCharCode(...syms) : null;
}

function strLength(buf: Buffer, s: Str): number | null {
  return s.huffman ? huffmanDecode(buf, s.start, s.end)?.length ?? null : s.end - s.start;
}

/** One field representation: `secret` is the value to mask (set as soon as the name is known to be secret). */
type Field =
  | { kind: 'done'; next: number; secret: Str | null }
  | { kind: 'incomplete'; secret: Str | null }
  | { kind: 'invalid' };

/** Parses the field at buf[p]; applies its dynamic-table effect only once it is complete. */
function parseField(buf: Buffer, p: number, table: DynamicNames): Field {
  const b = buf[p]!;
  if (b & 0x80 || (b & 0xe0) === 0x20) {
    const r = readInt(buf, p, b & 0x80 ? 7 : 5);
    if (r === INCOMPLETE) return { kind: 'incomplete', secret: null };
    if (r === INVALID || (b & 0x80 && r.value === 0)) return { kind: 'invalid' };
    if (!(b & 0x80)) table.resize(r.value);
    return { kind: 'done', next: r.next, secret: null };
  }
  const indexing = (b & 0xc0) === 0x40;
  const idx = readInt(buf, p, indexing ? 6 : 4);
  if (idx === INCOMPLETE) return { kind: 'incomplete', secret: null };
  if (idx === INVALID) return { kind: 'invalid' };
  let q = idx.next;
  let name: string | null;
  if (idx.value === 0) {
    const n = readStr(buf, q);
    if (n === INVALID) return { kind: 'invalid' };
    if (n === INCOMPLETE || n.end > buf.length) return { kind: 'incomplete', secret: null };
    name = strText(buf, n);
    if (name === null) return { kind: 'invalid' };
    q = n.end;
  } else {
    name = table.name(idx.value);
    if (name === null && table.known) return { kind: 'invalid' };
  }
  // why: a name we cannot resolve (dynamic table unknown) may be a secret one
  const secret = name === null || isSecretHeader(name);
  const v = readStr(buf, q);
  if (v === INVALID) return { kind: 'invalid' };
  if (v === INCOMPLETE) return { kind: 'incomplete', secret: null };
  if (v.end > buf.length) return { kind: 'incomplete', secret: secret ? v : null };
  if (indexing) {
    const valueLen = strLength(buf, v);
    if (valueLen === null) return { kind: 'invalid' };
    if (name === null) table.forget();
    else table.add(name, valueLen);
  }
  return { kind: 'done', next: v.end, secret: secret ? v : null };
}

/** Where held bytes came from: `out` is their offset in the current record's copy, -1 once written. */
interface Seg { at: number; len: number; out: number }

/** One header block at a time, fed piece by piece (frame payloads, records). */
class BlockScanner {
  private pending: Buffer = Buffer.alloc(0);
  private segs: Seg[] = [];
  /** The block could not be decoded: mask the rest of it. */
  private garbage = false;

  constructor(readonly table: DynamicNames) {}

  /** A new record begins: bytes held from earlier records are already written. */
  newRecord(): void {
    for (const s of this.segs) s.out = -1;
  }

  feed(buf: Buffer, s: number, e: number, out: Buffer): void {
    if (this.garbage) {
      out.fill(MASK, s, e);
      return;
    }
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, buf.subarray(s, e)]) : buf.subarray(s, e);
    this.segs.push({ at: this.pending.length, len: e - s, out: s });
    let p = 0;
    while (p < data.length) {
      const f = parseField(data, p, this.table);
      if (f.kind === 'invalid') {
        this.fail(data, p, out);
        return;
      }
      if (f.secret) this.maskValue(data, f.secret, f.kind === 'done', out);
      if (f.kind === 'incomplete') break;
      p = f.next;
    }
    this.hold(data, p);
    if (this.pending.length > PENDING_CAP) this.fail(data, p, out);
  }

  /** END_HEADERS: a field left unfinished means the block cannot be decoded. */
  end(out: Buffer): void {
    if (this.pending.length > 0 && !this.garbage) this.fail(this.pending, 0, out);
    this.reset();
  }

  /** Bytes of this block are missing from the capture: the table and the rest of the block are unknown. */
  lose(): void {
    this.table.forget();
    this.pending = Buffer.alloc(0);
    this.segs = [];
    this.garbage = true;
  }

  reset(): void {
    this.pending = Buffer.alloc(0);
    this.segs = [];
    this.garbage = false;
  }

  private fail(data: Buffer, from: number, out: Buffer): void {
    for (let i = from; i < data.length; i++) {
      const loc = this.locate(i);
      if (loc >= 0) out[loc] = MASK;
    }
    this.lose();
  }

  private hold(data: Buffer, from: number): void {
    if (from >= data.length) {
      this.pending = Buffer.alloc(0);
      this.segs = [];
      return;
    }
    this.pending = Buffer.from(data.subarray(from));
    this.segs = this.segs.filter((g) => g.at + g.len > from).map((g) => {
      const cut = Math.max(0, from - g.at);
      return { at: g.at + cut - from, len: g.len - cut, out: g.out < 0 ? -1 : g.out + cut };
    });
  }

  private locate(i: number): number {
    for (const g of this.segs) if (i >= g.at && i < g.at + g.len) return g.out < 0 ? -1 : g.out + (i - g.at);
    return -1;
  }

  private maskValue(data: Buffer, v: Str, complete: boolean, out: Buffer): void {
    const present = Math.min(v.end, data.length);
    let fill: Buffer | null = null;
    if (v.huffman) {
      const whole = complete && this.locate(v.start) >= 0;
      const syms = whole ? huffmanDecode(data, v.start, v.end) : null;
      fill = (syms && huffmanFiller(v.end - v.start, syms.length)) ?? zeroFiller(v.end - v.start);
    }
    for (let i = v.start; i < present; i++) {
      const loc = this.locate(i);
      if (loc >= 0) out[loc] = fill ? fill[i - v.start]! : MASK;
    }
  }
}

// ---- frames ----

interface FrameState {
  type: number;
  flags: number;
  /** Payload length and prologue length (for the header block length once the pad length is known). */
  len: number;
  prologue: number;
  /** Payload bytes still to come. */
  left: number;
  /** Bytes before the header block fragment (pad length, priority, promised stream id) still to come. */
  prologueLeft: number;
  /** Header block bytes still to come; -1 until the pad length byte was read. */
  blockLeft: number;
  isBlock: boolean;
}

function isHeaderFrame(type: number): boolean {
  return type === FRAME_HEADERS || type === FRAME_PUSH_PROMISE || type === FRAME_CONTINUATION;
}

// why: finding frame boundaries again after a loss must not take payload bytes for a frame header (garbage
// "frames" would hide real header blocks), so a candidate must hold for every frame up to the buffer's end.
const DEFAULT_MAX_FRAME = 16384;
const FIXED_LENGTH: Record<number, number> = { 2: 5, 3: 4, 6: 8, 8: 4 };
const STREAM_ZERO = new Set([4, 6, 7]);

/** A frame header at p that a sender could have written: type, length and stream id fit the type. */
function plausibleFrameHeader(buf: Buffer, p: number): boolean {
  if (p + 9 > buf.length) return false;
  const len = buf.readUIntBE(p, 3);
  const type = buf[p + 3]!;
  const stream = buf.readUInt32BE(p + 5);
  if (type > MAX_KNOWN_FRAME_TYPE || stream >>> 31 || len > DEFAULT_MAX_FRAME) return false;
  if (FIXED_LENGTH[type] !== undefined && len !== FIXED_LENGTH[type]) return false;
  if (type === 4 && len % 6 !== 0) return false;
  return STREAM_ZERO.has(type) ? stream === 0 : type === 8 || stream !== 0;
}

/** Whether buf, from its first byte, reads as whole plausible frames (the last may run past its end). */
function framesFromStart(buf: Buffer): boolean {
  let p = 0;
  while (p < buf.length) {
    if (!plausibleFrameHeader(buf, p)) return p + 9 > buf.length && p > 0;
    p += 9 + buf.readUIntBE(p, 3);
  }
  return true;
}

/**
 * Whether buf is plausible frames from its first byte to its last, the last one ending where buf does: what one write of
 * an HTTP/2 sender looks like, which tells a connection taken up in the middle (no preface seen) for HTTP/2. why the
 * exact end: a run of bytes of another protocol (TLS records cut anywhere, a body) whose first bytes happen to look like
 * a frame header almost never goes on as frames that end with it.
 */
export function readsAsFrames(buf: Buffer): boolean {
  let p = 0;
  while (p < buf.length) {
    if (!plausibleFrameHeader(buf, p)) return false;
    p += 9 + buf.readUIntBE(p, 3);
  }
  return buf.length > 0 && p === buf.length;
}

/** Follows one direction of an HTTP/2 connection across decrypted records and redacts its header blocks. */
export class H2Redactor {
  private prefaceLeft: number;
  private readonly head = Buffer.alloc(9);
  private headFill = 0;
  private frame: FrameState | null = null;
  private blockOpen = false;
  /** Frame boundaries lost (bytes missing across a frame header): mask until a record starts with a frame. */
  private lost = false;
  private readonly block: BlockScanner;

  /**
   * @param fromClient this direction starts with the client connection preface
   * @param fromStart the connection was seen from its start, so the HPACK dynamic table can be followed
   * @param guessed the direction is taken for HTTP/2 from what its bytes look like (a TCP connection taken up in the
   *   middle): a frame header no sender would write loses the frame boundaries (records are masked until one starts
   *   with frames). why: bytes that are no frames (another protocol's, or a segment that began inside a frame) would
   *   be skipped as one frame's payload, secrets and all
   */
  constructor(fromClient: boolean, fromStart = true, private readonly guessed = false) {
    this.prefaceLeft = fromClient ? H2_PREFACE.length : 0;
    this.block = new BlockScanner(new DynamicNames(fromStart));
  }

  /** Whether the next byte would begin a frame: no frame, frame header or preface part is being read. */
  get betweenFrames(): boolean {
    return this.frame === null && this.headFill === 0 && this.prefaceLeft === 0 && !this.lost;
  }

  /**
   * Returns a redacted copy of the record payload, or null when nothing changed. `missing` is how many bytes
   * of the record the capture cut off after `buf`.
   */
  redact(buf: Buffer, missing = 0): Buffer | null {
    const out = Buffer.from(buf);
    this.block.newRecord();
    let p = this.skipPreface(buf);
    if (this.lost && p < buf.length) {
      if (p === 0 && framesFromStart(buf)) {
        this.lost = false;
        this.block.table.forget();
      } else {
        out.fill(MASK, p);
        p = buf.length;
      }
    }
    while (p < buf.length) {
      p = this.step(buf, p, buf.length, out);
      if (this.lost) {
        // (a guessed direction's implausible frame header: it and everything after it, as far as this record goes)
        out.fill(MASK, Math.max(0, p - 9));
        p = buf.length;
      }
    }
    this.skipMissing(missing, out);
    return out.equals(buf) ? null : out;
  }

  private skipPreface(buf: Buffer): number {
    if (this.prefaceLeft === 0) return 0;
    const done = H2_PREFACE.length - this.prefaceLeft;
    const n = Math.min(this.prefaceLeft, buf.length);
    if (!buf.subarray(0, n).equals(H2_PREFACE.subarray(done, done + n))) {
      // why: no preface (seen mid-connection): frames from here, the table is not known
      this.prefaceLeft = 0;
      if (done === 0) this.block.table.forget();
      return 0;
    }
    this.prefaceLeft -= n;
    return n;
  }

  /** Consumes bytes from p (at most up to `end`) of a frame header or payload; returns the new position. */
  private step(buf: Buffer, p: number, end: number, out: Buffer): number {
    if (!this.frame) {
      const n = Math.min(9 - this.headFill, end - p);
      buf.copy(this.head, this.headFill, p, p + n);
      this.headFill += n;
      if (this.headFill === 9) this.startFrame(out);
      return p + n;
    }
    const f = this.frame;
    const n = Math.min(f.left, end - p);
    if (f.isBlock) this.blockBytes(f, buf, p, p + n, out);
    f.left -= n;
    if (f.left === 0) this.endFrame(out);
    return p + n;
  }

  private startFrame(out: Buffer): void {
    this.headFill = 0;
    if (this.guessed && !plausibleFrameHeader(this.head, 0)) {
      this.loseFrames();
      return;
    }
    const len = this.head.readUIntBE(0, 3);
    const type = this.head[3]!;
    const flags = this.head[4]!;
    const isBlock = isHeaderFrame(type);
    if (this.blockOpen && type !== FRAME_CONTINUATION) {
      // why: a header block must continue with CONTINUATION; anything else means it ended unfinished
      this.block.end(out);
      this.blockOpen = false;
    }
    if (type === FRAME_CONTINUATION && !this.blockOpen) this.block.lose();
    if (isBlock && type !== FRAME_CONTINUATION) this.blockOpen = true;
    const padded = type !== FRAME_CONTINUATION && (flags & FLAG_PADDED) !== 0;
    const prologue = (padded ? 1 : 0) + (type === FRAME_HEADERS && flags & FLAG_PRIORITY ? 5 : 0) + (type === FRAME_PUSH_PROMISE ? 4 : 0);
    this.frame = { type, flags, len, prologue, left: len, prologueLeft: isBlock ? prologue : 0, blockLeft: padded ? -1 : len - prologue, isBlock };
    if (len === 0) this.endFrame(out);
  }

  private blockBytes(f: FrameState, buf: Buffer | null, p: number, end: number, out: Buffer): void {
    while (p < end) {
      if (f.prologueLeft > 0) {
        if (f.blockLeft < 0) {
          // why: the first prologue byte of a padded frame is the pad length
          const pad = buf ? buf[p]! : -1;
          f.blockLeft = f.len - f.prologue - pad;
          if (pad < 0 || f.blockLeft < 0) {
            f.blockLeft = 0;
            this.block.lose();
          }
        }
        const n = Math.min(f.prologueLeft, end - p);
        f.prologueLeft -= n;
        p += n;
      } else if (f.blockLeft > 0) {
        const n = Math.min(f.blockLeft, end - p);
        if (buf) this.block.feed(buf, p, p + n, out);
        else this.block.lose();
        f.blockLeft -= n;
        p += n;
      } else {
        return; // padding
      }
    }
  }

  private endFrame(out: Buffer): void {
    const f = this.frame!;
    this.frame = null;
    if (f.isBlock && f.flags & FLAG_END_HEADERS) {
      this.block.end(out);
      this.blockOpen = false;
    }
  }

  /** Frame boundaries are lost: the header block being read and the HPACK table with them. */
  private loseFrames(): void {
    this.lost = true;
    this.headFill = 0;
    this.block.lose();
    this.blockOpen = false;
  }

  /** Whether the next `n` bytes all lie inside the payload of the current frame, which is not a header block. */
  insideOtherFrame(n: number): boolean {
    return !this.lost && this.prefaceLeft === 0 && this.frame !== null && !this.frame.isBlock && this.frame.left >= n;
  }

  /**
   * Bytes of this direction the capture does not have (a TCP gap): skipped like a record's cut-off tail.
   * Returns true when they all lay inside payloads of frames other than header blocks, so nothing secret was
   * in them.
   */
  skip(missing: number): boolean {
    this.block.newRecord();
    return this.skipMissing(missing, Buffer.alloc(0));
  }

  /** Bytes the capture cut off the record: skip them inside a frame; across a frame header, boundaries are lost. */
  private skipMissing(missing: number, out: Buffer): boolean {
    let harmless = !this.lost;
    while (missing > 0 && !this.lost) {
      const f = this.frame;
      if (!f) {
        this.loseFrames();
        return false;
      }
      const n = Math.min(f.left, missing);
      if (f.isBlock) {
        harmless = false;
        this.blockBytes(f, null, 0, n, out);
      }
      f.left -= n;
      missing -= n;
      if (f.left === 0) this.endFrame(out);
    }
    return harmless;
  }
}
