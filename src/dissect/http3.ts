// HTTP/3 (RFC 9114) over a decrypted QUIC connection's streams, with QPACK (RFC 9204): each side's control stream
// (its SETTINGS: the QPACK table capacity it decodes with), its encoder stream (the dynamic table its header sections
// refer to) and the request streams, whose HEADERS make one HttpMessage per direction once the stream ends. Bytes
// come per stream in order (the QUIC layer reassembles them); a stream that lost bytes is given up, alone.
import { BODY_CAP, type HttpMessage } from './http1.js';
import { addHeaders, applyHeaders, huffmanDecode } from './http2.js';
import { varint } from './quic-packet.js';

const FRAME_DATA = 0x00;
const FRAME_HEADERS = 0x01;
const FRAME_SETTINGS = 0x04;
const SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0x01;

const STREAM_CONTROL = 0x00;
const STREAM_QPACK_ENCODER = 0x02;

/** A header section larger than this is not kept (the stream is given up): a peer's limit is usually 16 KiB. */
const MAX_SECTION = 256 * 1024;
/** Stream directions remembered per connection (as the QUIC layer's). */
const MAX_STREAMS = 4096;
/** Header sections waiting for encoder stream inserts, per connection. */
const MAX_BLOCKED = 64;

// RFC 9204 Appendix A.
const STATIC: readonly (readonly [string, string])[] = [
  [':authority', ''], [':path', '/'], ['age', '0'], ['content-disposition', ''], ['content-length', '0'], ['cookie', ''], ['date', ''],
  ['etag', ''], ['if-modified-since', ''], ['if-none-match', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['referer', ''],
  ['set-cookie', ''], [':method', 'CONNECT'], [':method', 'DELETE'], [':method', 'GET'], [':method', 'HEAD'], [':method', 'OPTIONS'],
  [':method', 'POST'], [':method', 'PUT'], [':scheme', 'http'], [':scheme', 'https'], [':status', '103'], [':status', '200'],
  [':status', '304'], [':status', '404'], [':status', '503'], ['accept', '*/*'], ['accept', 'application/dns-message'],
  ['accept-encoding', 'gzip, deflate, br'], ['accept-ranges', 'bytes'], ['access-control-allow-headers', 'cache-control'],
  ['access-control-allow-headers', 'content-type'], ['access-control-allow-origin', '*'], ['cache-control', 'max-age=0'],
  ['cache-control', 'max-age=2592000'], ['cache-control', 'max-age=604800'], ['cache-control', 'no-cache'], ['cache-control', 'no-store'],
  ['cache-control', 'public, max-age=31536000'], ['content-encoding', 'br'], ['content-encoding', 'gzip'],
  ['content-type', 'application/dns-message'], ['content-type', 'application/javascript'], ['content-type', 'application/json'],
  ['content-type', 'application/x-www-form-urlencoded'], ['content-type', 'image/gif'], ['content-type', 'image/jpeg'],
  ['content-type', 'image/png'], ['content-type', 'text/css'], ['content-type', 'text/html; charset=utf-8'], ['content-type', 'text/plain'],
  ['content-type', 'text/plain;charset=utf-8'], ['range', 'bytes=0-'], ['strict-transport-security', 'max-age=31536000'],
  ['strict-transport-security', 'max-age=31536000; includesubdomains'], ['strict-transport-security', 'max-age=31536000; includesubdomains; preload'],
  ['vary', 'accept-encoding'], ['vary', 'origin'], ['x-content-type-options', 'nosniff'], ['x-xss-protection', '1; mode=block'],
  [':status', '100'], [':status', '204'], [':status', '206'], [':status', '302'], [':status', '400'], [':status', '403'], [':status', '421'],
  [':status', '425'], [':status', '500'], ['accept-language', ''], ['access-control-allow-credentials', 'FALSE'],
  ['access-control-allow-credentials', 'TRUE'], ['access-control-allow-headers', '*'], ['access-control-allow-methods', 'get'],
  ['access-control-allow-methods', 'get, post, options'], ['access-control-allow-methods', 'options'],
  ['access-control-expose-headers', 'content-length'], ['access-control-request-headers', 'content-type'],
  ['access-control-request-method', 'get'], ['access-control-request-method', 'post'], ['alt-svc', 'clear'], ['authorization', ''],
  ['content-security-policy', "script-src 'none'; object-src 'none'; base-uri 'none'"], ['early-data', '1'], ['expect-ct', ''],
  ['forwarded', ''], ['if-range', ''], ['origin', ''], ['purpose', 'prefetch'], ['server', ''], ['timing-allow-origin', '*'],
  ['upgrade-insecure-requests', '1'], ['user-agent', ''], ['x-forwarded-for', ''], ['x-frame-options', 'deny'], ['x-frame-options', 'sameorigin'],
];

/** Thrown when an instruction or a section is cut short: more bytes are needed. */
const SHORT = new Error('short');

/** A reader of QPACK's prefixed integers and strings over one buffer; throws SHORT past its end. */
class Reader {
  constructor(readonly b: Buffer, public at = 0) {}

  get done(): boolean {
    return this.at >= this.b.length;
  }

  /** The integer whose first byte's low `bits` bits start it (RFC 7541 §5.1). */
  int(bits: number): number {
    if (this.at >= this.b.length) throw SHORT;
    const max = (1 << bits) - 1;
    let v = this.b[this.at++]! & max;
    if (v < max) return v;
    for (let scale = 1; ; scale *= 128) {
      if (this.at >= this.b.length) throw SHORT;
      const byte = this.b[this.at++]!;
      v += (byte & 0x7f) * scale;
      if (scale > 2 ** 42) throw new Error('QPACK integer too large');
      if ((byte & 0x80) === 0) return v;
    }
  }

  /** A string whose Huffman flag is `hFlag` in the first byte and whose length has `bits` bits there. */
  str(hFlag: number, bits: number): string {
    const huffman = (this.b[this.at] ?? 0) & hFlag;
    const len = this.int(bits);
    if (this.at + len > this.b.length) throw SHORT;
    const raw = this.b.subarray(this.at, this.at + len);
    this.at += len;
    return huffman ? huffmanDecode(raw) : raw.toString('latin1');
  }
}

/** One side's QPACK dynamic table, as its encoder stream builds it (RFC 9204 §3.2). */
class DynamicTable {
  private entries: [string, string][] = [];
  /** entries evicted: the absolute index of entries[0] */
  private dropped = 0;
  private size = 0;
  capacity = 0;

  /** Entries inserted since the connection began. */
  get inserted(): number {
    return this.dropped + this.entries.length;
  }

  get(absolute: number): [string, string] {
    const e = this.entries[absolute - this.dropped];
    if (!e) throw new Error(`QPACK dynamic table entry ${absolute} is not there`);
    return e;
  }

  insert(name: string, value: string): void {
    this.entries.push([name, value]);
    this.size += name.length + value.length + 32;
    this.evict();
  }

  setCapacity(c: number): void {
    this.capacity = c;
    this.evict();
  }

  private evict(): void {
    let n = 0;
    while (this.size > this.capacity && n < this.entries.length) {
      const [name, value] = this.entries[n++]!;
      this.size -= name.length + value.length + 32;
    }
    if (n > 0) {
      this.entries = this.entries.slice(n);
      this.dropped += n;
    }
  }
}

/** One side of the connection: its encoder's table and the capacity it allows the other's (its SETTINGS). */
interface Side {
  table: DynamicTable;
  /** SETTINGS_QPACK_MAX_TABLE_CAPACITY this side sent (it decodes the other's sections with it); null until seen */
  maxCapacity: number | null;
}

/** One direction of one stream. */
interface StreamState {
  fromClient: boolean;
  /** uni streams: the stream type, once read; bidi: 'request' */
  kind: 'request' | 'unknown' | number;
  buf: Buffer;
  /** bytes of the current frame still to skip or keep (DATA, unknown frames) */
  skip: number;
  skipType: number;
  msg: HttpMessage | null;
  parts: Buffer[];
  kept: number;
  /** header sections waiting for inserts, in order */
  blocked: Buffer[];
  fin: boolean;
  done: boolean;
}

/** HTTP/3 over one QUIC connection; messages come out of data() and close(). */
export class Http3Connection {
  private readonly client: Side = { table: new DynamicTable(), maxCapacity: null };
  private readonly server: Side = { table: new DynamicTable(), maxCapacity: null };
  private readonly streams = new Map<string, StreamState>();
  private blockedCount = 0;
  /** ts of the last stream bytes: a message finished is read up to there (its endTs) */
  private lastTs = 0;
  /** streams given up (bytes lost, a malformed frame or section) */
  failedStreams = 0;

  /**
   * In-order bytes of stream `id` from the client (true) or the server; `fin`: they end it. Complete messages are
   * appended to `out`.
   */
  data(id: number, fromClient: boolean, chunk: Buffer, fin: boolean, ts: number, out: HttpMessage[]): void {
    this.lastTs = ts;
    const s = this.stream(id, fromClient);
    if (s.done) return;
    s.buf = s.buf.length === 0 ? chunk : Buffer.concat([s.buf, chunk]);
    s.fin ||= fin;
    try {
      this.parse(s, id, ts, out);
    } catch {
      // (a malformed frame or section, one cut short, a table entry that is not there: this stream is given up)
      this.fail(s);
      return;
    }
    if (s.buf.length > 0 && s.buf.buffer === chunk.buffer) s.buf = Buffer.from(s.buf);
    if (s.fin && s.kind === 'request') this.finish(s, out);
  }

  /** Bytes of the stream were lost: it is given up (its message is not made). */
  gap(id: number, fromClient: boolean): void {
    this.fail(this.stream(id, fromClient));
  }

  /** The connection closed: requests and responses whose headers came are returned as they are. */
  close(out: HttpMessage[]): void {
    for (const s of this.streams.values()) {
      if (s.done || !s.msg) continue;
      s.msg.bodyTruncated = true;
      this.finish(s, out);
    }
  }

  private stream(id: number, fromClient: boolean): StreamState {
    const key = `${id}${fromClient ? 'c' : 's'}`;
    let s = this.streams.get(key);
    if (!s) {
      // (bit 1 of the id: a unidirectional stream, whose first bytes say its type)
      s = { fromClient, kind: (id & 2) === 0 ? 'request' : 'unknown', buf: Buffer.alloc(0), skip: 0, skipType: -1, msg: null, parts: [], kept: 0, blocked: [], fin: false, done: false };
      this.streams.set(key, s);
      if (this.streams.size > MAX_STREAMS) {
        // (the oldest finished ones are forgotten: a connection carries a stream per request)
        for (const [k, old] of this.streams) {
          if (this.streams.size <= MAX_STREAMS) break;
          if (old.done) this.streams.delete(k);
        }
      }
    }
    return s;
  }

  private fail(s: StreamState): void {
    if (!s.done) this.failedStreams++;
    s.done = true;
    s.buf = Buffer.alloc(0);
    this.blockedCount -= s.blocked.length;
    s.blocked = [];
    s.msg = null;
  }

  private parse(s: StreamState, id: number, ts: number, out: HttpMessage[]): void {
    if (s.kind === 'unknown') {
      const t = varint(s.buf, 0);
      if (!t) return;
      s.kind = t[0];
      s.buf = s.buf.subarray(t[1]);
    }
    if (s.kind === STREAM_QPACK_ENCODER) {
      this.encoderInstructions(s, out);
      return;
    }
    if (s.kind !== 'request' && s.kind !== STREAM_CONTROL) {
      // (the peer's QPACK decoder stream, push streams, extensions: nothing a summary needs)
      s.buf = Buffer.alloc(0);
      return;
    }
    for (;;) {
      if (s.skip > 0) {
        const n = Math.min(s.skip, s.buf.length);
        if (s.skipType === FRAME_DATA) this.body(s, s.buf.subarray(0, n));
        s.skip -= n;
        s.buf = s.buf.subarray(n);
        if (s.skip > 0) return;
      }
      const type = varint(s.buf, 0);
      if (!type) return;
      const len = varint(s.buf, type[1]);
      if (!len) return;
      const head = type[1] + len[1];
      if (type[0] === FRAME_HEADERS || type[0] === FRAME_SETTINGS) {
        if (len[0] > MAX_SECTION) throw new Error('HTTP/3 frame too large');
        if (s.buf.length < head + len[0]) return;
        const payload = s.buf.subarray(head, head + len[0]);
        s.buf = s.buf.subarray(head + len[0]);
        if (type[0] === FRAME_SETTINGS && s.kind === STREAM_CONTROL) this.settings(s.fromClient ? this.client : this.server, payload);
        else if (type[0] === FRAME_HEADERS && s.kind === 'request') this.headers(s, id, Buffer.from(payload), ts, out);
        continue;
      }
      s.buf = s.buf.subarray(head);
      s.skip = len[0];
      s.skipType = type[0];
      if (s.skip === 0) continue;
    }
  }

  private settings(side: Side, payload: Buffer): void {
    for (let at = 0; at < payload.length;) {
      const k = varint(payload, at);
      const v = k ? varint(payload, at + k[1]) : null;
      if (!k || !v) return;
      if (k[0] === SETTINGS_QPACK_MAX_TABLE_CAPACITY) side.maxCapacity = v[0];
      at += k[1] + v[1];
    }
  }

  private body(s: StreamState, b: Buffer): void {
    if (!s.msg || b.length === 0) return;
    const room = BODY_CAP - s.kept;
    if (room < b.length) s.msg.bodyTruncated = true;
    if (room <= 0) return;
    const take = b.length <= room ? b : b.subarray(0, room);
    s.parts.push(Buffer.from(take));
    s.kept += take.length;
  }

  /** A HEADERS frame's section: the message's head (the first), trailers (later ones), or kept until inserts come. */
  private headers(s: StreamState, id: number, section: Buffer, ts: number, out: HttpMessage[]): void {
    if (s.blocked.length > 0) {
      this.block(s, section);
      return;
    }
    const fields = this.decode(s.fromClient ? this.client : this.server, s.fromClient ? this.server : this.client, section);
    if (fields === null) {
      this.block(s, section);
      return;
    }
    this.apply(s, id, fields, ts, out);
  }

  private block(s: StreamState, section: Buffer): void {
    if (this.blockedCount >= MAX_BLOCKED) throw new Error('too many blocked HTTP/3 header sections');
    s.blocked.push(section);
    this.blockedCount++;
  }

  private apply(s: StreamState, id: number, fields: [string, string][], ts: number, out: HttpMessage[]): void {
    if (s.msg) {
      addHeaders(s.msg, fields);
      return;
    }
    const status = fields.find(([k]) => k === ':status')?.[1];
    const msg: HttpMessage = { kind: s.fromClient ? 'request' : 'response', headers: [], body: Buffer.alloc(0), bodyTruncated: false, ts, streamId: id, version: 'HTTP/3' };
    applyHeaders(msg, fields);
    // (an interim answer, 100 or 103: its own message; the final one follows on the stream)
    if (status !== undefined && /^1\d\d$/.test(status)) out.push(msg);
    else s.msg = msg;
  }

  private finish(s: StreamState, out: HttpMessage[]): void {
    if (s.blocked.length > 0 || s.done) return;
    s.done = true;
    if (!s.msg) return;
    s.msg.body = s.parts.length === 1 ? s.parts[0]! : Buffer.concat(s.parts);
    s.msg.endTs = this.lastTs;
    out.push(s.msg);
    s.msg = null;
    s.parts = [];
  }

  /** The encoder stream's instructions (RFC 9204 §4.3), as many as are whole; then the sections they unblock. */
  private encoderInstructions(s: StreamState, out: HttpMessage[]): void {
    const side = s.fromClient ? this.client : this.server;
    const t = side.table;
    const r = new Reader(s.buf);
    const before = t.inserted;
    try {
      while (!r.done) {
        const start = r.at;
        const b = s.buf[start]!;
        try {
          if (b & 0x80) {
            // Insert with name reference: T (0x40) static, else relative to the insertion point
            const index = r.int(6);
            const name = b & 0x40 ? staticEntry(index)[0] : t.get(t.inserted - 1 - index)[0];
            t.insert(name, r.str(0x80, 7));
          } else if (b & 0x40) {
            const name = r.str(0x20, 5);
            t.insert(name, r.str(0x80, 7));
          } else if (b & 0x20) {
            t.setCapacity(r.int(5));
          } else {
            const e = t.get(t.inserted - 1 - r.int(5));
            t.insert(e[0], e[1]);
          }
        } catch (e) {
          if (e !== SHORT) throw e;
          r.at = start;
          break;
        }
      }
    } finally {
      s.buf = Buffer.from(s.buf.subarray(r.at));
    }
    if (t.inserted === before || this.blockedCount === 0) return;
    for (const [key, st] of this.streams) {
      if (st.fromClient !== s.fromClient || st.blocked.length === 0) continue;
      const id = Number(key.slice(0, -1));
      while (st.blocked.length > 0) {
        const fields = this.decode(side, s.fromClient ? this.server : this.client, st.blocked[0]!);
        if (fields === null) break;
        st.blocked.shift();
        this.blockedCount--;
        this.apply(st, id, fields, st.msg?.ts ?? 0, out);
      }
      if (st.blocked.length === 0 && st.fin) this.finish(st, out);
    }
  }

  /**
   * A header section's fields (RFC 9204 §4.5) from the encoding side's table; `decoder`: the side decoding it, whose
   * SETTINGS give the table's largest capacity. Null when it refers to inserts still to come (blocked).
   */
  private decode(encoder: Side, decoder: Side, section: Buffer): [string, string][] | null {
    const t = encoder.table;
    const r = new Reader(section);
    const encodedRic = r.int(8);
    const signBit = (section[r.at] ?? 0) & 0x80;
    const delta = r.int(7);
    let ric = 0;
    if (encodedRic !== 0) {
      const maxEntries = Math.floor((decoder.maxCapacity ?? Math.max(t.capacity, 4096)) / 32);
      const full = 2 * maxEntries;
      if (full === 0 || encodedRic > full) throw new Error('QPACK Required Insert Count out of range');
      const maxValue = t.inserted + maxEntries;
      ric = Math.floor(maxValue / full) * full + encodedRic - 1;
      if (ric > maxValue) ric -= full;
    }
    if (ric > t.inserted) return null;
    const base = signBit ? ric - delta - 1 : ric + delta;
    const fields: [string, string][] = [];
    while (!r.done) {
      const b = section[r.at]!;
      if (b & 0x80) {
        // Indexed field line: T (0x40) static, else relative to the base
        const index = r.int(6);
        fields.push(b & 0x40 ? [...staticEntry(index)] : [...t.get(base - 1 - index)]);
      } else if (b & 0x40) {
        // Literal with name reference (N 0x20 only matters to intermediaries)
        const index = r.int(4);
        const name = b & 0x10 ? staticEntry(index)[0] : t.get(base - 1 - index)[0];
        fields.push([name, r.str(0x80, 7)]);
      } else if (b & 0x20) {
        const name = r.str(0x08, 3);
        fields.push([name.toLowerCase(), r.str(0x80, 7)]);
      } else if (b & 0x10) {
        fields.push([...t.get(base + r.int(4))]);
      } else {
        const name = t.get(base + r.int(3))[0];
        fields.push([name, r.str(0x80, 7)]);
      }
    }
    return fields;
  }
}

function staticEntry(index: number): readonly [string, string] {
  const e = STATIC[index];
  if (!e) throw new Error(`QPACK static table has no entry ${index}`);
  return e;
}
