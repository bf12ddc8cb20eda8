// Incremental HTTP/1.x parser for one direction of a TCP stream: requests or responses (detected from
// the start line), Content-Length, chunked and keep-alive pipelines. Bodies are kept up to 64 KiB.
// After a gap in the stream it skips bytes until something that looks like the next message start.

export interface HttpMessage {
  kind: 'request' | 'response';
  method?: string;
  path?: string;
  status?: number;
  headers: [string, string][];
  /** capped at BODY_CAP bytes */
  body: Buffer;
  bodyTruncated: boolean;
  /** timestamp of the chunk that carried the start line */
  ts: number;
  /** HTTP/2 only */
  streamId?: number;
  /** HTTP/2 only: the `:path` of a request whose content-type is application/grpc* */
  grpcMethod?: string;
}

export const BODY_CAP = 64 * 1024;
// why: shared, never written to: a parser between messages holds no bytes and needs no allocation
const EMPTY = Buffer.alloc(0);
// why: a header section larger than this is not HTTP we can use; treating it as garbage keeps a
// mis-detected binary stream from growing the buffer without bound.
const MAX_HEAD = 64 * 1024;

const RESYNC_TAIL = 8 * 1024;
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'PURGE'];
const REQUEST_LINE = /^([A-Z][A-Z-]{0,19}) (\S+) HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: .*)?$/;
// A message start anywhere in a buffer: used to resynchronise after a gap or garbage.
const START_SCAN = new RegExp(`(?:${METHODS.join('|')}) [^\\s]+ HTTP/1\\.[01]\\r\\n|HTTP/1\\.[01] \\d{3}[ \\r]`, 'g');

const START_TOKENS = ['HTTP/1.', ...METHODS.map((m) => `${m} `)];

/** Is `head` a start token ("GET ", "HTTP/1.") or could it still grow into one? */
function startPrefixOk(head: string): boolean {
  return START_TOKENS.some((p) => head.startsWith(p) || (head.length < p.length && p.startsWith(head)));
}

/** True when the bytes start like an HTTP/1 request or response line. */
export function looksLikeHttp1(firstBytes: Buffer): boolean {
  const head = firstBytes.subarray(0, 16).toString('latin1');
  return head.length >= 3 && startPrefixOk(head);
}

type State =
  | { t: 'start' }
  | { t: 'resync' }
  | { t: 'body-length'; left: number }
  | { t: 'chunk-size' }
  | { t: 'chunk-data'; left: number }
  | { t: 'chunk-crlf' }
  | { t: 'trailers' }
  | { t: 'body-close' }
  | { t: 'tunnel' };

interface Building {
  msg: HttpMessage;
  parts: Buffer[];
  kept: number;
  /** For a Content-Length body within the cap: one buffer of its size, filled in place (one copy, no joins). */
  into: Buffer | null;
}

export class Http1Parser {
  private buf: Buffer = EMPTY;
  private state: State = { t: 'start' };
  private cur: Building | null = null;
  /** ts of the chunk that carried the first byte of the message being started */
  private headTs: number | null = null;
  /** request methods this (response) side is answering, oldest first; see expectResponseTo */
  private readonly pendingMethods: string[] = [];

  /**
   * Tell a response-side parser the method of the next request on the connection, in order. Needed
   * only for HEAD and CONNECT, whose responses carry no body; without it a HEAD response with a
   * Content-Length would swallow the next response.
   */
  expectResponseTo(method: string): void {
    this.pendingMethods.push(method.toUpperCase());
  }

  push(chunk: Buffer, ts: number): HttpMessage[] {
    const out: HttpMessage[] = [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let progressed = true;
    while (progressed && this.buf.length > 0) progressed = this.step(ts, out);
    // why: never keep a view into the caller's chunk (it may be a slice of a large reader buffer)
    if (this.buf.length > 0 && this.buf.buffer === chunk.buffer) this.buf = Buffer.from(this.buf);
    return out;
  }

  /**
   * Bytes were lost. The message in progress (if its head was complete) is returned with
   * bodyTruncated set; parsing resumes at the next message start.
   */
  gap(): HttpMessage[] {
    const out: HttpMessage[] = [];
    if (this.cur) {
      this.cur.msg.bodyTruncated = true;
      out.push(this.finish());
    }
    this.buf = Buffer.alloc(0);
    this.headTs = null;
    this.state = { t: 'resync' };
    return out;
  }

  /** The stream ended: a response delimited by connection close is complete now. */
  end(): HttpMessage[] {
    if (this.cur && this.state.t === 'body-close') {
      const m = this.finish();
      this.state = { t: 'start' };
      return [m];
    }
    return [];
  }

  private appendBody(b: Buffer): void {
    const cur = this.cur!;
    if (b.length === 0) return;
    const room = BODY_CAP - cur.kept;
    if (room <= 0) {
      cur.msg.bodyTruncated = true;
      return;
    }
    const n = Math.min(b.length, room);
    // why: copy, because `b` is a view into the caller's chunk, which the caller may reuse
    if (cur.into) b.copy(cur.into, cur.kept, 0, n);
    else cur.parts.push(Buffer.from(n < b.length ? b.subarray(0, n) : b));
    cur.kept += n;
    if (n < b.length) cur.msg.bodyTruncated = true;
  }

  private finish(): HttpMessage {
    const cur = this.cur!;
    if (cur.into) cur.msg.body = cur.kept === cur.into.length ? cur.into : cur.into.subarray(0, cur.kept);
    else cur.msg.body = cur.parts.length === 1 ? cur.parts[0]! : Buffer.concat(cur.parts);
    this.cur = null;
    return cur.msg;
  }

  /** One state transition; false when it needs more bytes. */
  private step(ts: number, out: HttpMessage[]): boolean {
    const st = this.state;
    switch (st.t) {
      case 'resync': {
        START_SCAN.lastIndex = 0;
        const text = this.buf.toString('latin1');
        const m = START_SCAN.exec(text);
        if (!m) {
          // keep a tail long enough to hold the beginning of a start line split across chunks
          if (this.buf.length > RESYNC_TAIL) this.buf = this.buf.subarray(this.buf.length - RESYNC_TAIL);
          return false;
        }
        this.buf = this.buf.subarray(m.index);
        this.state = { t: 'start' };
        return true;
      }
      case 'start': {
        // tolerate stray CRLFs between messages (RFC 9112 §2.2)
        let skip = 0;
        while (skip < this.buf.length && (this.buf[skip] === 0x0d || this.buf[skip] === 0x0a)) skip++;
        if (skip > 0) this.buf = this.buf.subarray(skip);
        if (this.buf.length === 0) return false;
        if (this.headTs === null) this.headTs = ts;
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.buf.length > MAX_HEAD || !this.plausibleStart()) {
            this.headTs = null;
            this.state = { t: 'resync' };
            this.buf = this.buf.subarray(1);
            return true;
          }
          return false;
        }
        const head = this.buf.subarray(0, end).toString('latin1');
        const rest = this.buf.subarray(end + 4);
        const msg = this.parseHead(head, this.headTs);
        this.headTs = null;
        if (!msg) {
          this.state = { t: 'resync' };
          this.buf = this.buf.subarray(1);
          return true;
        }
        this.buf = rest;
        this.cur = { msg, parts: [], kept: 0, into: null };
        this.state = this.bodyState(msg);
        // why: only bodies that fit the cap: a large Content-Length must not reserve the cap for bytes never seen
        if (this.state.t === 'body-length' && this.state.left <= BODY_CAP) this.cur.into = Buffer.allocUnsafe(this.state.left);
        if (this.state.t === 'start') out.push(this.finish());
        return true;
      }
      case 'body-length': {
        const buf = this.buf;
        const take = Math.min(st.left, buf.length);
        // why: a body packet is usually consumed whole; no views for that case (this runs per packet)
        const whole = take === buf.length;
        this.appendBody(whole ? buf : buf.subarray(0, take));
        this.buf = whole ? EMPTY : buf.subarray(take);
        st.left -= take;
        if (st.left === 0) {
          out.push(this.finish());
          this.state = { t: 'start' };
        }
        return take > 0 || st.left === 0;
      }
      case 'chunk-size': {
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) {
          if (this.buf.length > 1024) return this.toResync();
          return false;
        }
        const line = this.buf.subarray(0, nl).toString('latin1');
        const m = /^([0-9a-fA-F]{1,8})[ \t]*(?:;.*)?$/.exec(line);
        if (!m) return this.toResync();
        const size = parseInt(m[1]!, 16);
        this.buf = this.buf.subarray(nl + 2);
        this.state = size === 0 ? { t: 'trailers' } : { t: 'chunk-data', left: size };
        return true;
      }
      case 'chunk-data': {
        const take = Math.min(st.left, this.buf.length);
        this.appendBody(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        st.left -= take;
        if (st.left === 0) this.state = { t: 'chunk-crlf' };
        return true;
      }
      case 'chunk-crlf': {
        if (this.buf.length < 2) return false;
        if (this.buf[0] !== 0x0d || this.buf[1] !== 0x0a) return this.toResync();
        this.buf = this.buf.subarray(2);
        this.state = { t: 'chunk-size' };
        return true;
      }
      case 'trailers': {
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) return false;
        const line = this.buf.subarray(0, nl).toString('latin1');
        this.buf = this.buf.subarray(nl + 2);
        if (line === '') {
          out.push(this.finish());
          this.state = { t: 'start' };
        } else {
          const c = line.indexOf(':');
          if (c > 0) this.cur!.msg.headers.push([line.slice(0, c).trim(), line.slice(c + 1).trim()]);
        }
        return true;
      }
      case 'body-close':
        this.appendBody(this.buf);
        this.buf = Buffer.alloc(0);
        return false;
      case 'tunnel':
        this.buf = Buffer.alloc(0);
        return false;
    }
  }

  private toResync(): boolean {
    if (this.cur) {
      this.cur.msg.bodyTruncated = true;
      this.finish();
    }
    this.state = { t: 'resync' };
    return true;
  }

  /** Could the buffered bytes still become a start line? */
  private plausibleStart(): boolean {
    const nl = this.buf.indexOf('\r\n');
    const first = (nl < 0 ? this.buf.subarray(0, 32) : this.buf.subarray(0, nl)).toString('latin1');
    if (nl >= 0) return REQUEST_LINE.test(first) || STATUS_LINE.test(first);
    return startPrefixOk(first);
  }

  private parseHead(head: string, ts: number): HttpMessage | null {
    const lines = head.split('\r\n');
    const start = lines[0]!;
    let msg: HttpMessage;
    const req = REQUEST_LINE.exec(start);
    if (req) {
      msg = { kind: 'request', method: req[1]!, path: req[2]!, headers: [], body: Buffer.alloc(0), bodyTruncated: false, ts };
    } else {
      const res = STATUS_LINE.exec(start);
      if (!res) return null;
      msg = { kind: 'response', status: Number(res[3]), headers: [], body: Buffer.alloc(0), bodyTruncated: false, ts };
    }
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if ((line.startsWith(' ') || line.startsWith('\t')) && msg.headers.length > 0) {
        // obsolete line folding: continuation of the previous header value
        const last = msg.headers[msg.headers.length - 1]!;
        last[1] = `${last[1]} ${line.trim()}`;
        continue;
      }
      const c = line.indexOf(':');
      if (c <= 0) return null;
      msg.headers.push([line.slice(0, c).trim(), line.slice(c + 1).trim()]);
    }
    return msg;
  }

  private bodyState(msg: HttpMessage): State {
    const header = (name: string): string | undefined => msg.headers.find(([k]) => k.toLowerCase() === name)?.[1];
    if (msg.kind === 'response') {
      const status = msg.status!;
      if (status >= 100 && status < 200) {
        // why: interim responses (100 Continue, 103 Early Hints) do not answer the pending request
        return status === 101 ? { t: 'tunnel' } : { t: 'start' };
      }
      const method = this.pendingMethods.shift();
      if (method === 'HEAD' || status === 204 || status === 304) return { t: 'start' };
      if (method === 'CONNECT' && status >= 200 && status < 300) return { t: 'tunnel' };
    }
    const te = header('transfer-encoding');
    if (te && /(^|,)\s*chunked\s*$/i.test(te)) return { t: 'chunk-size' };
    const cl = header('content-length');
    if (cl !== undefined) {
      const n = Number(cl.split(',')[0]!.trim());
      if (Number.isInteger(n) && n >= 0) return n === 0 ? { t: 'start' } : { t: 'body-length', left: n };
    }
    // a request without length has no body; a response without length runs to connection close
    return msg.kind === 'request' ? { t: 'start' } : { t: 'body-close' };
  }
}
