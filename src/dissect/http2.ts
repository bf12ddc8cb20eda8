// Incremental HTTP/2 parser for one direction of a connection: frames (preface, SETTINGS, HEADERS +
// CONTINUATION, DATA, padding, priority, PUSH_PROMISE), one HPACK decoder (RFC 7541) and dynamic table per
// direction, and one HttpMessage per stream once the stream ends (END_STREAM or RST_STREAM). gRPC requests
// carry the method name (`:path`) in grpcMethod. A direction that cannot be decoded further says why (failure).
import { createRequire } from 'node:module';
import { BODY_CAP, type HttpMessage } from './http1.js';
import { Pieces } from '../util/pieces.js';
import { HEADER_BYTES_CAP } from '../model/http-text.js';

// why loaded on first use: most captures carry no HTTP/2, and the library was a tenth of the CLI's start-up. Only its
// tables are used (RFC 7541's static table and Huffman code); the decoding is below.
let hpackLib: HpackTables | null = null;
interface HpackTables {
  'static-table': { table: { name: string; value: string }[] };
  /** [bit length, code] of each symbol, 256 being EOS */
  huffman: { encode: [number, number][] };
}
function hpack(): HpackTables {
  return (hpackLib ??= createRequire(import.meta.url)('hpack.js') as HpackTables);
}

/**
 * A message's head from its decoded fields (HTTP/2's and HTTP/3's): pseudo-headers name its method, path or status.
 * `dropped` fields came after `headers` and were not built; `late` holds the first of them of each name read here.
 */
export function applyHeaders(msg: HttpMessage, headers: [string, string][], dropped = 0, late: [string, string][] = NO_FIELDS): void {
  msg.headers = [];
  addHeaders(msg, headers, dropped);
  const get = (k: string): string | undefined => (headers.find(([n]) => n === k) ?? late.find(([n]) => n === k))?.[1];
  const status = get(':status');
  if (status !== undefined) {
    msg.kind = 'response';
    msg.status = Number(status);
  } else {
    const method = get(':method');
    const path = get(':path');
    if (method !== undefined) msg.method = method;
    if (path !== undefined) msg.path = path;
    if (path !== undefined && get('content-type')?.startsWith('application/grpc')) msg.grpcMethod = path;
  }
}

const NO_FIELDS: [string, string][] = [];
/** The fields applyHeaders reads: of a block's fields past HEADER_BYTES_CAP, the first of each of these is still built. */
function readByApply(name: string): boolean {
  return name === ':status' || name === ':path' || name === ':method' || name === 'content-type';
}

export { HEADER_BYTES_CAP };

/**
 * `headers` added to msg's while all it keeps stay within HEADER_BYTES_CAP; the rest, and `dropped` more that came
 * after them, counted in headersDropped.
 */
export function addHeaders(msg: HttpMessage, headers: [string, string][], dropped = 0): void {
  let size = 0;
  for (const [k, v] of msg.headers) size += k.length + v.length;
  let kept = 0;
  for (; kept < headers.length; kept++) {
    size += headers[kept]![0].length + headers[kept]![1].length;
    if (size > HEADER_BYTES_CAP) break;
  }
  const notKept = headers.length - kept + dropped;
  if (notKept > 0) msg.headersDropped = (msg.headersDropped ?? 0) + notKept;
  const add = kept === headers.length ? headers : headers.slice(0, kept);
  // (no push(...add): a spread of tens of thousands of arguments)
  msg.headers = msg.headers.length === 0 ? add : msg.headers.concat(add);
}

// ---- Huffman (RFC 7541 §5.2, Appendix B) ----
// why a table of 4-bit steps: a code is 5 to 30 bits, so one nibble ends at most one symbol; two lookups a byte
// (nghttp2's way) instead of walking the code tree a bit at a time.
const HUFF_EMIT = 1 << 16;
const HUFF_FAIL = 1 << 17;
/** per (state << 4 | nibble): the next state (a node of the code tree) | its symbol << 8 | HUFF_EMIT, or HUFF_FAIL */
let huffSteps: Uint32Array | null = null;
/** the states where a code may end: the root, or 1 to 7 one-bits into a code (EOS's first bits, the padding) */
let huffEnds: Uint8Array | null = null;
let huffOut = Buffer.allocUnsafe(4096);

function buildHuffman(): void {
  // (the tree: node 0 the root; kids[2n + bit] a node, or -1 - symbol for a leaf)
  const kids: number[] = [0, 0];
  hpack().huffman.encode.forEach(([bits, code], symbol) => {
    let node = 0;
    for (let k = bits - 1; k > 0; k--) {
      const at = 2 * node + ((code >>> k) & 1);
      if (kids[at] === 0) {
        kids[at] = kids.length / 2;
        kids.push(0, 0);
      }
      node = kids[at]!;
    }
    kids[2 * node + (code & 1)] = -1 - symbol;
  });
  const states = kids.length / 2;
  const steps = new Uint32Array(states * 16);
  for (let state = 0; state < states; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let step = 0;
      for (let k = 3; k >= 0 && step !== HUFF_FAIL; k--) {
        const next = kids[2 * node + ((nibble >> k) & 1)]!;
        if (next >= 0) node = next;
        else if (next === -257) step = HUFF_FAIL; // EOS in a string is an error (§5.2)
        else {
          step = HUFF_EMIT | ((-1 - next) << 8);
          node = 0;
        }
      }
      steps[state * 16 + nibble] = step === HUFF_FAIL ? HUFF_FAIL : step | node;
    }
  }
  const ends = new Uint8Array(states);
  ends[0] = 1;
  for (let node = 0, depth = 1; depth <= 7 && kids[2 * node + 1]! > 0; depth++) ends[(node = kids[2 * node + 1]!)] = 1;
  huffSteps = steps;
  huffEnds = ends;
}

/** buf[start, end) decoded as a Huffman code, as latin1 text; throws on a code that is not one. */
function huffman(buf: Buffer, start: number, end: number): string {
  if (huffSteps === null) buildHuffman();
  const steps = huffSteps!;
  // (at most 8 symbols in 5 bytes: the shortest code is 5 bits)
  const most = Math.ceil(((end - start) * 8) / 5);
  const out = most <= huffOut.length ? huffOut : most <= 1 << 16 ? (huffOut = Buffer.allocUnsafe(most)) : Buffer.allocUnsafe(most);
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    const high = steps[(state << 4) | (byte >> 4)]!;
    if (high & HUFF_EMIT) out[n++] = (high >> 8) & 0xff;
    const low = steps[((high & 0xff) << 4) | (byte & 15)]!;
    if ((high | low) & HUFF_FAIL) throw new Error('a Huffman code holds EOS');
    if (low & HUFF_EMIT) out[n++] = (low >> 8) & 0xff;
    state = low & 0xff;
  }
  if (!huffEnds![state]) throw new Error('a Huffman code ends in padding that is not 1 to 7 one-bits');
  return out.toString('latin1', 0, n);
}

/** A string's Huffman code decoded (RFC 7541 Appendix B, which QPACK uses too); throws on a code that is not one. */
export function huffmanDecode(code: Buffer): string {
  return huffman(code, 0, code.length);
}

// ---- HPACK (RFC 7541) ----
// why: the encoder may use a table as large as the decoder's SETTINGS_HEADER_TABLE_SIZE allows, up to 2^32-1, so any
// size update is taken; but the entries kept are bounded here. An entry costs the table 32 bytes plus its strings and
// us about as much, and one can be inserted with 2 bytes: a table limited only by its declared size would grow ~16x a
// hostile capture. Past this bound the oldest entries go (no encoder seen uses more than 64 KiB); a reference to one
// of them ends the direction's decoding, saying so.
const HPACK_KEPT_MAX = 16 << 20;
const HPACK_DEFAULT = 4096;
const HPACK_STATIC = 61;
let staticTable: { names: string[]; values: string[] } | null = null;
const NO_BYTES: Buffer = Buffer.alloc(0);

/** One header block decoded: its fields within the room it was given, and how many came after (see decode). */
interface HeaderBlock {
  fields: [string, string][];
  dropped: number;
  /** of the fields past the room, the first of each name applyHeaders reads */
  late: [string, string][];
}

/** One direction's HPACK decoder: its dynamic table, and the block being read. */
class HpackDecoder {
  /** the encoder's table size, as its last size update set it */
  maxSize = HPACK_DEFAULT;
  // (the dynamic table: entries oldest first from `first`, the newest last)
  private names: string[] = [];
  private values: string[] = [];
  private first = 0;
  private size = 0;
  /** entries were let go that the encoder's table still holds (HPACK_KEPT_MAX) */
  private trimmed = false;
  private readonly staticNames: string[];
  private readonly staticValues: string[];
  private b = NO_BYTES;
  private pos = 0;

  constructor() {
    if (staticTable === null) {
      const table = hpack()['static-table'].table;
      staticTable = { names: table.map((e) => e.name), values: table.map((e) => e.value) };
    }
    this.staticNames = staticTable.names;
    this.staticValues = staticTable.values;
  }

  /**
   * The block's fields in order while their names and values total at most `room` bytes. why: a field of one byte can
   * name a 4 KiB table entry; a block's fields were all built first and the cap applied after, so memory and time
   * followed the block × ~100. Past the room the fields are only counted: an indexed one builds nothing, a literal
   * one is read only as far as the table needs (its insertion), so the table stays in step.
   */
  decode(block: Buffer, room: number): HeaderBlock {
    const b = (this.b = block);
    this.pos = 0;
    const fields: [string, string][] = [];
    let late = NO_FIELDS;
    let dropped = 0;
    let size = 0;
    let over = room < 0;
    while (this.pos < b.length) {
      const c = b[this.pos]!;
      let name: string;
      let value: string;
      if (c & 0x80) {
        // indexed field (§6.1)
        const i = this.index(this.int(7));
        name = this.nameAt(i);
        if (over) {
          dropped++;
          if (readByApply(name) && !late.some(([k]) => k === name)) late = [...late, [name, this.valueAt(i)]];
          continue;
        }
        value = this.valueAt(i);
      } else if (c & 0x40) {
        // literal with incremental indexing (§6.2.1): its strings go into the table, past the room too
        name = this.literalName(6);
        value = this.str();
        this.insert(name, value);
      } else if (c & 0x20) {
        // dynamic table size update (§6.3); taken anywhere in a block (the RFC wants it first)
        this.resize(this.int(5));
        continue;
      } else {
        // literal without indexing or never indexed (§6.2.2, §6.2.3)
        name = this.literalName(4);
        if (over && !readByApply(name)) {
          this.str(false);
          dropped++;
          continue;
        }
        value = this.str();
      }
      if (!over) {
        size += name.length + value.length;
        if (size <= room) {
          fields.push([name, value]);
          continue;
        }
        over = true;
      }
      dropped++;
      if (readByApply(name) && !late.some(([k]) => k === name)) late = [...late, [name, value]];
    }
    this.b = NO_BYTES;
    return { fields, dropped, late };
  }

  /** The name of entry `i` (an index() checked). */
  private nameAt(i: number): string {
    return i <= HPACK_STATIC ? this.staticNames[i - 1]! : this.names[this.names.length + HPACK_STATIC - i]!;
  }

  private valueAt(i: number): string {
    return i <= HPACK_STATIC ? this.staticValues[i - 1]! : this.values[this.values.length + HPACK_STATIC - i]!;
  }

  /** An index that names an entry (1-based: the static table, then the dynamic one newest first), or throws. */
  private index(i: number): number {
    if (i === 0) throw new Error('HPACK index 0');
    const count = this.names.length - this.first;
    if (i > HPACK_STATIC + count) {
      throw new Error(`HPACK index ${i} names no entry (the dynamic table holds ${count}${this.trimmed ? `, its oldest let go past Tapscope's bound of ${HPACK_KEPT_MAX >> 20} MiB` : ''})`);
    }
    return i;
  }

  private literalName(prefix: number): string {
    const i = this.int(prefix);
    return i === 0 ? this.str() : this.nameAt(this.index(i));
  }

  /** An integer with a `prefix`-bit prefix (§5.1), up to 2^32-1 (what SETTINGS_HEADER_TABLE_SIZE allows). */
  private int(prefix: number): number {
    const b = this.b;
    const max = (1 << prefix) - 1;
    let v = b[this.pos++]! & max;
    if (v < max) return v;
    for (let scale = 1; ; scale *= 128) {
      if (this.pos >= b.length) throw new Error('HPACK integer cut short by its block\'s end');
      const c = b[this.pos++]!;
      v += (c & 0x7f) * scale;
      if (c < 0x80) break;
      if (scale === 1 << 28) throw new Error('HPACK integer longer than 32 bits');
    }
    if (v > 0xffffffff) throw new Error(`HPACK integer ${v} longer than 32 bits`);
    return v;
  }

  /** A string literal (§5.2), as latin1 text; skipped (and its Huffman code not read) when not `wanted`. */
  private str(wanted: false): void;
  private str(): string;
  private str(wanted = true): string | void {
    const b = this.b;
    if (this.pos >= b.length) throw new Error('HPACK string missing at its block\'s end');
    const huff = b[this.pos]! & 0x80;
    const len = this.int(7);
    const start = this.pos;
    if (len > b.length - start) throw new Error(`HPACK string of ${len} bytes past its block's end (${b.length - start} left)`);
    this.pos = start + len;
    if (wanted) return huff ? huffman(b, start, this.pos) : b.toString('latin1', start, this.pos);
  }

  private insert(name: string, value: string): void {
    this.names.push(name);
    this.values.push(value);
    this.size += name.length + value.length + 32;
    this.evict();
  }

  private resize(size: number): void {
    this.maxSize = size;
    this.evict();
  }

  /** Oldest entries out while the table is over the encoder's size, or over HPACK_KEPT_MAX. */
  private evict(): void {
    const limit = Math.min(this.maxSize, HPACK_KEPT_MAX);
    if (this.size <= limit) return;
    while (this.size > limit) {
      if (this.size <= this.maxSize) this.trimmed = true;
      this.size -= this.names[this.first]!.length + this.values[this.first]!.length + 32;
      // (its strings freed now; its slots dropped from the arrays now and then, not one at a time)
      this.names[this.first] = '';
      this.values[this.first] = '';
      this.first++;
    }
    if (this.first > 1024 && this.first * 2 > this.names.length) {
      this.names = this.names.slice(this.first);
      this.values = this.values.slice(this.first);
      this.first = 0;
    }
  }
}

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
/** RST_STREAM frames held between two takeResets (a flood of them keeps the first) */
const MAX_RESETS = 1024;

export interface H2Reset { streamId: number; error: string }
const NO_RESETS: H2Reset[] = [];

/** RFC 9113 §7's error codes by name; another as its number. */
const H2_ERRORS = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL',
  'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
];

export function h2ErrorName(code: number): string {
  return H2_ERRORS[code] ?? `0x${code.toString(16)}`;
}
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/** a header block's CONTINUATION frames and bytes (compressed) past which its direction is not decoded further */
const MAX_BLOCK_FRAMES = 4096;
const MAX_BLOCK_BYTES = 1 << 20;

const FRAME_NAMES = ['DATA', 'HEADERS', 'PRIORITY', 'RST_STREAM', 'SETTINGS', 'PUSH_PROMISE', 'PING', 'GOAWAY', 'WINDOW_UPDATE', 'CONTINUATION'];

/** True when the bytes begin with (a prefix of) the HTTP/2 client connection preface. */
export function looksLikeHttp2(firstBytes: Buffer): boolean {
  const n = Math.min(firstBytes.length, H2_PREFACE.length);
  return n >= 3 && firstBytes.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
}

interface StreamState {
  msg: HttpMessage;
  parts: Buffer[];
  kept: number;
  headersDone: boolean;
}

export class Http2Parser {
  private buf: Buffer = Buffer.alloc(0);
  /** a frame still incomplete (a peer may allow 16 MiB frames): its pieces, joined once it is whole */
  private waiting: Pieces | null = null;
  private prefaceChecked: boolean;
  private readonly streams = new Map<number, StreamState>();
  private readonly resets: H2Reset[] = [];
  private readonly hpack = new HpackDecoder();
  /**
   * header block being collected across CONTINUATION frames: `streamId` the stream its frames come on, `target` the
   * stream it opens (a PUSH_PROMISE's block is continued on the stream it came on, RFC 9113 §6.10, and opens the
   * promised one)
   */
  private block: { streamId: number; target: number; parts: Buffer[]; bytes: number; endStream: boolean; promised: boolean } | null = null;
  /** once HPACK state is lost (bad frame, gap) nothing after can be decoded reliably; the reason why */
  private broken: string | null = null;
  /** ts of the last push: a stream finished is read up to there (its message's endTs) */
  private lastTs = 0;
  /** bytes of this direction read before `buf`, and frames read: where a failure was */
  private offset = 0;
  private frames = 0;

  constructor(private readonly side: 'client' | 'server') {
    this.prefaceChecked = side === 'server';
  }

  /** Current HPACK dynamic table limit of this direction, as last signalled by its encoder. */
  get hpackTableSize(): number {
    return this.hpack.maxSize;
  }

  /** True after a framing or HPACK error or a gap: this direction can no longer be decoded (failure says why). */
  get failed(): boolean {
    return this.broken !== null;
  }

  /**
   * Why this direction is no longer decoded, null while it is: what failed and where, e.g. "frame 9 (HEADERS, stream 5)
   * at byte 1187: HPACK index 70 names no entry (the dynamic table holds 3)". Frames and bytes count from the first
   * this parser was given (its preface included; after an h2c upgrade, from the end of the 101's head).
   */
  get failure(): string | null {
    return this.broken;
  }

  push(chunk: Buffer, ts: number): HttpMessage[] {
    if (this.broken !== null) return [];
    this.lastTs = ts;
    const out: HttpMessage[] = [];
    if (this.waiting !== null) {
      const whole = this.waiting.add(chunk);
      if (whole === null) return out;
      this.buf = whole;
      this.waiting = null;
    } else this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.prefaceChecked) {
      const n = Math.min(this.buf.length, H2_PREFACE.length);
      if (!this.buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
        // no preface: the capture started mid-connection; try frames from here
        this.prefaceChecked = true;
      } else if (n < H2_PREFACE.length) {
        this.buf = Buffer.from(this.buf);
        return out;
      } else {
        this.buf = this.buf.subarray(H2_PREFACE.length);
        this.offset = H2_PREFACE.length;
        this.prefaceChecked = true;
      }
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const type = this.buf[3]!;
      const flags = this.buf[4]!;
      const streamId = this.buf.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buf.subarray(9, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      this.frames++;
      try {
        this.frame(type, flags, streamId, payload, ts, out);
      } catch (e) {
        // a malformed frame or an HPACK error: the dynamic table is out of step from here on
        const name = FRAME_NAMES[type] ?? `type ${type}`;
        this.broken = `frame ${this.frames} (${name}, stream ${streamId}) at byte ${this.offset}: ${(e as Error).message}`;
        // (the streams whose headers came are returned as they are, cut short: nothing more of them can be read)
        for (const s of this.streams.values()) s.msg.bodyTruncated = true;
        for (const m of this.close()) out.push(m);
        this.buf = Buffer.alloc(0);
        this.block = null;
        return out;
      }
      this.offset += 9 + len;
    }
    // why: never keep a view into the caller's chunk (it may be a slice of a large reader buffer)
    if (this.buf.length > 0 && this.buf.buffer === chunk.buffer) this.buf = Buffer.from(this.buf);
    if (this.buf.length >= 9) this.waiting = new Pieces(this.buf, 9 + this.buf.readUIntBE(0, 3));
    return out;
  }

  /**
   * The direction ended (its FIN, or the connection's reset): the streams whose headers came are returned as they are,
   * a body short of its content-length marked truncated. (A server that sends its last DATA frame's END_STREAM on its
   * own, as Node's does, loses it to a client that closes as soon as it has the body it was told of: the answer came.)
   */
  close(): HttpMessage[] {
    const out: HttpMessage[] = [];
    for (const s of this.streams.values()) {
      if (!s.headersDone) continue;
      const length = s.msg.headers.find(([k]) => k === 'content-length')?.[1];
      if (length === undefined || Number(length) !== s.kept) s.msg.bodyTruncated = true;
      out.push(this.finish(s));
    }
    this.streams.clear();
    return out;
  }

  /** Bytes were lost: HPACK state cannot be recovered, streams in flight are returned truncated. */
  gap(): HttpMessage[] {
    for (const s of this.streams.values()) s.msg.bodyTruncated = true;
    const out = this.close();
    this.buf = Buffer.alloc(0);
    this.waiting = null;
    this.broken ??= `bytes missing from the capture after frame ${this.frames} (byte ${this.offset} on): the HPACK table cannot be followed past them`;
    return out;
  }

  /** The RST_STREAM frames this side sent since the last call: the stream and its error code's name. */
  takeResets(): H2Reset[] {
    if (this.resets.length === 0) return NO_RESETS;
    return this.resets.splice(0);
  }

  private frame(type: number, flags: number, streamId: number, payload: Buffer, ts: number, out: HttpMessage[]): void {
    if (this.block && type !== FRAME_CONTINUATION) {
      throw new Error(`a frame other than CONTINUATION while the header block on stream ${this.block.streamId} was not ended (RFC 9113 §6.10)`);
    }
    switch (type) {
      case FRAME_DATA: {
        const s = this.streams.get(streamId);
        const data = unpad(payload, flags);
        if (s) this.appendBody(s, data);
        if (s && flags & FLAG_END_STREAM) this.end(streamId, out);
        break;
      }
      case FRAME_HEADERS: {
        let p = unpad(payload, flags);
        if (flags & FLAG_PRIORITY) p = p.subarray(5);
        this.openBlock(streamId, streamId, p, flags, false);
        if (!this.streams.has(streamId)) this.streams.set(streamId, this.newStream(streamId, ts));
        if (flags & FLAG_END_HEADERS) this.headerBlockDone(out);
        break;
      }
      case FRAME_PUSH_PROMISE: {
        const p = unpad(payload, flags);
        if (p.length < 4) throw new Error(`a PUSH_PROMISE of ${p.length} bytes, too short for its promised stream`);
        const promisedId = p.readUInt32BE(0) & 0x7fffffff;
        this.openBlock(streamId, promisedId, p.subarray(4), flags & ~FLAG_END_STREAM, true);
        // why: a promise is a request the server makes up; it must be decoded to keep HPACK in step
        const s = this.newStream(promisedId, ts);
        s.msg.kind = 'request';
        this.streams.set(promisedId, s);
        if (flags & FLAG_END_HEADERS) this.headerBlockDone(out);
        break;
      }
      case FRAME_CONTINUATION: {
        const block = this.block;
        if (!block) throw new Error('a CONTINUATION with no header block to continue');
        if (block.streamId !== streamId) throw new Error(`a CONTINUATION on stream ${streamId} while the header block on stream ${block.streamId} was not ended`);
        // why: a header block that never ends (a CONTINUATION flood) was kept whole: a million one-byte frames took 230 MB.
        // One past these bounds, far beyond any real one, ends the direction's decoding (its HPACK table cannot be kept
        // in step without the block)
        block.bytes += payload.length;
        if (block.parts.length >= MAX_BLOCK_FRAMES) throw new Error(`a header block in more than ${MAX_BLOCK_FRAMES} frames`);
        if (block.bytes > MAX_BLOCK_BYTES) throw new Error(`a header block continued past ${MAX_BLOCK_BYTES >> 20} MiB (${block.bytes} bytes so far)`);
        block.parts.push(Buffer.from(payload));
        if (flags & FLAG_END_HEADERS) this.headerBlockDone(out);
        break;
      }
      case FRAME_RST_STREAM: {
        // (kept for the analyzer, which marks the stream's exchange: a reset of a stream whose message this side had
        // sent whole, a client cancelling a request, ends the answer the other side's parser waits for)
        if (payload.length >= 4 && this.resets.length < MAX_RESETS) this.resets.push({ streamId, error: h2ErrorName(payload.readUInt32BE(0)) });
        const s = this.streams.get(streamId);
        if (s && s.headersDone) {
          s.msg.bodyTruncated = true;
          out.push(this.finish(s));
        }
        this.streams.delete(streamId);
        break;
      }
      default:
        // SETTINGS, PRIORITY, PING, GOAWAY, WINDOW_UPDATE and unknown types carry nothing we show
        break;
    }
  }

  /** A header block begun by `fragment` (of a frame with `flags`), on stream `streamId` for stream `target`. */
  private openBlock(streamId: number, target: number, fragment: Buffer, flags: number, promised: boolean): void {
    // why no MAX_BLOCK_BYTES here: that bound is on the frames a block's pieces were kept for. A block in one frame (up
    // to 16 MiB) is already whole in memory, and decoding it costs time by its bytes, not by what it names (decode):
    // a 14 MiB block of 1-byte references reads in 0.15 s, and its request is still shown, as tshark shows it.
    // (a block in one frame is decoded at once: no copy of the caller's bytes is kept)
    const part = flags & FLAG_END_HEADERS ? fragment : Buffer.from(fragment);
    this.block = { streamId, target, parts: [part], bytes: fragment.length, endStream: (flags & FLAG_END_STREAM) !== 0, promised };
  }

  private newStream(streamId: number, ts: number): StreamState {
    const kind = this.side === 'client' ? 'request' : 'response';
    return { msg: { kind, headers: [], body: Buffer.alloc(0), bodyTruncated: false, ts, streamId, version: 'HTTP/2' }, parts: [], kept: 0, headersDone: false };
  }

  private headerBlockDone(out: HttpMessage[]): void {
    const block = this.block!;
    this.block = null;
    const s = this.streams.get(block.target);
    // (room for trailers: what the message's headers left of HEADER_BYTES_CAP)
    let room = HEADER_BYTES_CAP;
    if (s?.headersDone) for (const [k, v] of s.msg.headers) room -= k.length + v.length;
    const { fields, dropped, late } = this.hpack.decode(block.parts.length === 1 ? block.parts[0]! : Buffer.concat(block.parts), room);
    if (!s) return;
    if (!s.headersDone) {
      const status = (fields.find(([k]) => k === ':status') ?? late.find(([k]) => k === ':status'))?.[1];
      if (status !== undefined && /^1\d\d$/.test(status)) {
        // interim response (100, 103): its own message; the final headers follow on the same stream
        const interim = this.newStream(block.target, s.msg.ts);
        interim.headersDone = true;
        applyHeaders(interim.msg, fields, dropped, late);
        out.push(this.finish(interim));
        return;
      }
      applyHeaders(s.msg, fields, dropped, late);
      s.headersDone = true;
    } else {
      // trailers (e.g. grpc-status)
      addHeaders(s.msg, fields, dropped);
    }
    if (block.promised) {
      out.push(this.finish(s));
      this.streams.delete(block.target);
      return;
    }
    if (block.endStream) this.end(block.target, out);
  }

  private appendBody(s: StreamState, b: Buffer): void {
    if (b.length === 0) return;
    const room = BODY_CAP - s.kept;
    if (room <= 0) {
      s.msg.bodyTruncated = true;
      return;
    }
    const take = b.length <= room ? b : b.subarray(0, room);
    s.parts.push(Buffer.from(take));
    s.kept += take.length;
    if (take.length < b.length) s.msg.bodyTruncated = true;
  }

  private end(streamId: number, out: HttpMessage[]): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    this.streams.delete(streamId);
    if (s.headersDone) out.push(this.finish(s));
  }

  private finish(s: StreamState): HttpMessage {
    s.msg.body = s.parts.length === 1 ? s.parts[0]! : Buffer.concat(s.parts);
    s.msg.endTs = this.lastTs;
    return s.msg;
  }
}

function unpad(payload: Buffer, flags: number): Buffer {
  if (!(flags & FLAG_PADDED)) return payload;
  const padLen = payload[0];
  if (padLen === undefined || padLen >= payload.length) throw new Error(`padding of ${padLen ?? 'no'} bytes in a ${payload.length}-byte payload`);
  return payload.subarray(1, payload.length - padLen);
}

export interface GrpcMessage {
  compressed: boolean;
  /** declared length; `data` is shorter when the body was capped */
  length: number;
  data: Buffer;
}

/** Split a gRPC request or response body into its length-prefixed messages (5-byte prefix each). */
export function grpcMessages(body: Buffer): GrpcMessage[] {
  const out: GrpcMessage[] = [];
  let o = 0;
  while (o + 5 <= body.length) {
    const flag = body[o]!;
    if (flag > 1) break;
    const length = body.readUInt32BE(o + 1);
    out.push({ compressed: flag === 1, length, data: body.subarray(o + 5, Math.min(body.length, o + 5 + length)) });
    o += 5 + length;
  }
  return out;
}
