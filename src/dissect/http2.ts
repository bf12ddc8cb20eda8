// Incremental HTTP/2 parser for one direction of a connection: frames (preface, SETTINGS, HEADERS +
// CONTINUATION, DATA, padding, priority, PUSH_PROMISE), one HPACK dynamic table per direction, and one
// HttpMessage per stream once the stream ends (END_STREAM or RST_STREAM). gRPC requests carry the
// method name (`:path`) in grpcMethod.
import { createRequire } from 'node:module';
import type HpackLib from 'hpack.js';
import { BODY_CAP, type HttpMessage } from './http1.js';
import { Pieces } from '../util/pieces.js';
import { HEADER_BYTES_CAP } from '../model/http-text.js';

// why loaded on first use: most captures carry no HTTP/2, and the library was a tenth of the CLI's start-up
let hpackLib: typeof HpackLib | null = null;
function hpack(): typeof HpackLib {
  return (hpackLib ??= createRequire(import.meta.url)('hpack.js') as typeof HpackLib);
}

/** A message's head from its decoded fields (HTTP/2's and HTTP/3's): pseudo-headers name its method, path or status. */
export function applyHeaders(msg: HttpMessage, headers: [string, string][]): void {
  msg.headers = [];
  addHeaders(msg, headers);
  const get = (k: string): string | undefined => headers.find(([n]) => n === k)?.[1];
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

export { HEADER_BYTES_CAP };

/** `headers` added to msg's while all it keeps stay within HEADER_BYTES_CAP; the rest counted in headersDropped. */
export function addHeaders(msg: HttpMessage, headers: [string, string][]): void {
  let size = 0;
  for (const [k, v] of msg.headers) size += k.length + v.length;
  let kept = 0;
  for (; kept < headers.length; kept++) {
    size += headers[kept]![0].length + headers[kept]![1].length;
    if (size > HEADER_BYTES_CAP) break;
  }
  if (kept < headers.length) msg.headersDropped = (msg.headersDropped ?? 0) + headers.length - kept;
  const add = kept === headers.length ? headers : headers.slice(0, kept);
  // (no push(...add): a spread of tens of thousands of arguments)
  msg.headers = msg.headers.length === 0 ? add : msg.headers.concat(add);
}

/** A string's Huffman code decoded (RFC 7541 Appendix B, which QPACK uses too); throws on a code that is not one. */
export function huffmanDecode(code: Buffer): string {
  // (the library decodes HPACK string literals: the code gets one's head, the Huffman bit and the length)
  const head: number[] = [];
  if (code.length < 127) head.push(0x80 | code.length);
  else {
    head.push(0xff);
    let rest = code.length - 127;
    for (; rest >= 128; rest = Math.floor(rest / 128)) head.push(0x80 | (rest % 128));
    head.push(rest);
  }
  const d = hpack().decoder.create();
  d.push(Buffer.concat([Buffer.from(head), code]));
  return hpack().utils.stringify(d.decodeStr());
}

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

// why: the largest frame a peer may send is 2^24-1 (SETTINGS_MAX_FRAME_SIZE upper bound); anything
// longer means we are not looking at an HTTP/2 frame boundary.
const MAX_FRAME = (1 << 24) - 1;
/** a header block's CONTINUATION frames and bytes (compressed) past which its direction is not decoded further */
const MAX_BLOCK_FRAMES = 4096;
const MAX_BLOCK_BYTES = 1 << 20;
// why: the decoder's table limit is set by the *other* side's SETTINGS; we accept whatever size the
// encoder signals (dynamic table size update) up to a generous bound instead of tracking SETTINGS.
const HPACK_PROTOCOL_MAX = 1 << 20;
const HPACK_DEFAULT = 4096;

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
  private readonly table = hpack().table.create({ maxSize: HPACK_DEFAULT });
  /** header block being collected across CONTINUATION frames */
  private block: { streamId: number; parts: Buffer[]; bytes: number; endStream: boolean; promised: boolean } | null = null;
  /** once HPACK state is lost (bad frame, gap) nothing after can be decoded reliably */
  private broken = false;
  /** ts of the last push: a stream finished is read up to there (its message's endTs) */
  private lastTs = 0;

  constructor(private readonly side: 'client' | 'server') {
    this.prefaceChecked = side === 'server';
    (this.table as unknown as { protocolMaxSize: number }).protocolMaxSize = HPACK_PROTOCOL_MAX;
  }

  /** Current HPACK dynamic table limit of this direction, as last signalled by its encoder. */
  get hpackTableSize(): number {
    return (this.table as unknown as { maxSize: number }).maxSize;
  }

  /** True after a framing or HPACK error: this direction can no longer be decoded. */
  get failed(): boolean {
    return this.broken;
  }

  push(chunk: Buffer, ts: number): HttpMessage[] {
    if (this.broken) return [];
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
        this.prefaceChecked = true;
      }
    }
    while (this.buf.length >= 9 && !this.broken) {
      const len = this.buf.readUIntBE(0, 3);
      if (len > MAX_FRAME) {
        this.broken = true;
        break;
      }
      if (this.buf.length < 9 + len) break;
      const type = this.buf[3]!;
      const flags = this.buf[4]!;
      const streamId = this.buf.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buf.subarray(9, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      try {
        this.frame(type, flags, streamId, payload, ts, out);
      } catch {
        // a malformed frame or an HPACK error: the dynamic table is out of step from here on
        this.broken = true;
      }
    }
    // why: never keep a view into the caller's chunk (it may be a slice of a large reader buffer)
    if (this.buf.length > 0 && this.buf.buffer === chunk.buffer) this.buf = Buffer.from(this.buf);
    if (this.buf.length >= 9 && !this.broken) this.waiting = new Pieces(this.buf, 9 + this.buf.readUIntBE(0, 3));
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
    this.broken = true;
    return out;
  }

  private frame(type: number, flags: number, streamId: number, payload: Buffer, ts: number, out: HttpMessage[]): void {
    if (this.block && type !== FRAME_CONTINUATION) throw new Error('header block interrupted');
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
        if (!this.streams.has(streamId)) this.streams.set(streamId, this.newStream(streamId, ts));
        this.block = { streamId, parts: [Buffer.from(p)], bytes: p.length, endStream: (flags & FLAG_END_STREAM) !== 0, promised: false };
        if (flags & FLAG_END_HEADERS) this.headerBlockDone(out);
        break;
      }
      case FRAME_PUSH_PROMISE: {
        const p = unpad(payload, flags);
        const promisedId = p.readUInt32BE(0) & 0x7fffffff;
        // why: a promise is a request the server makes up; it must be decoded to keep HPACK in step
        const s = this.newStream(promisedId, ts);
        s.msg.kind = 'request';
        this.streams.set(promisedId, s);
        this.block = { streamId: promisedId, parts: [Buffer.from(p.subarray(4))], bytes: p.length - 4, endStream: false, promised: true };
        if (flags & FLAG_END_HEADERS) this.headerBlockDone(out);
        break;
      }
      case FRAME_CONTINUATION: {
        const block = this.block;
        if (!block || block.streamId !== streamId) throw new Error('unexpected CONTINUATION');
        // why: a header block that never ends (a CONTINUATION flood) was kept whole: a million one-byte frames took 230 MB.
        // One past these bounds, far beyond any real one, ends the direction's decoding (its HPACK table cannot be kept
        // in step without the block)
        block.bytes += payload.length;
        if (block.parts.length >= MAX_BLOCK_FRAMES || block.bytes > MAX_BLOCK_BYTES) throw new Error('header block too long');
        block.parts.push(Buffer.from(payload));
        if (flags & FLAG_END_HEADERS) this.headerBlockDone(out);
        break;
      }
      case FRAME_RST_STREAM: {
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

  private newStream(streamId: number, ts: number): StreamState {
    const kind = this.side === 'client' ? 'request' : 'response';
    return { msg: { kind, headers: [], body: Buffer.alloc(0), bodyTruncated: false, ts, streamId, version: 'HTTP/2' }, parts: [], kept: 0, headersDone: false };
  }

  private headerBlockDone(out: HttpMessage[]): void {
    const block = this.block!;
    this.block = null;
    const headers = this.decode(block.parts.length === 1 ? block.parts[0]! : Buffer.concat(block.parts));
    const s = this.streams.get(block.streamId);
    if (!s) return;
    if (!s.headersDone) {
      const status = headers.find(([k]) => k === ':status')?.[1];
      if (status !== undefined && /^1\d\d$/.test(status)) {
        // interim response (100, 103): its own message; the final headers follow on the same stream
        const interim = this.newStream(block.streamId, s.msg.ts);
        interim.headersDone = true;
        applyHeaders(interim.msg, headers);
        out.push(this.finish(interim));
        return;
      }
      applyHeaders(s.msg, headers);
      s.headersDone = true;
    } else {
      // trailers (e.g. grpc-status)
      addHeaders(s.msg, headers);
    }
    if (block.promised) {
      out.push(this.finish(s));
      this.streams.delete(block.streamId);
      return;
    }
    if (block.endStream) this.end(block.streamId, out);
  }

  private decode(block: Buffer): [string, string][] {
    const d = hpack().decoder.create();
    d.push(block);
    const out: [string, string][] = [];
    while (!d.isEmpty()) {
      if (d.decodeBit()) {
        const e = this.table.lookup(d.decodeInt());
        out.push([e.name, e.value]);
        continue;
      }
      const incremental = d.decodeBit();
      if (!incremental) {
        if (d.decodeBit()) {
          this.table.updateSize(d.decodeInt());
          continue;
        }
        d.decodeBit(); // never-indexed flag: matters to proxies, not to us
      }
      const index = d.decodeInt();
      let name: string;
      let nameSize: number;
      if (index === 0) {
        const raw = d.decodeStr();
        nameSize = raw.length;
        name = hpack().utils.stringify(raw);
      } else {
        const e = this.table.lookup(index);
        name = e.name;
        nameSize = e.nameSize;
      }
      const rawValue = d.decodeStr();
      const value = hpack().utils.stringify(rawValue);
      if (incremental) this.table.add(name, value, nameSize, rawValue.length);
      out.push([name, value]);
    }
    return out;
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
  if (padLen === undefined || padLen >= payload.length) throw new Error('bad padding');
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
