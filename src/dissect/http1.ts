// Incremental HTTP/1.x parser for one direction of a TCP stream: requests or responses (detected from
// the start line), Content-Length, chunked and keep-alive pipelines. Bodies are kept up to 64 KiB, except
// binary ones: their bytes are never shown (only their size), so only their first BODY_SAMPLE bytes are kept.
// Lines end in CRLF or a bare LF (see lineEnd).
// After a gap in the stream it skips bytes until something that looks like the next message start.
import { sharedLatin1 } from './latin1.js';

export interface HttpMessage {
  kind: 'request' | 'response';
  method?: string;
  path?: string;
  status?: number;
  headers: [string, string][];
  /**
   * capped at BODY_CAP bytes; of a binary body (looksBinary) only the first BODY_SAMPLE bytes, see bodySize;
   * empty from a parser that keeps no bodies (Http1Options)
   */
  body: Buffer;
  /** The body's size (capped at BODY_CAP) when `body` holds only its first bytes or none; absent: body.length. */
  bodySize?: number;
  bodyTruncated: boolean;
  /** timestamp of the chunk that carried the start line */
  ts: number;
  /** timestamp of the last bytes of it that were read: its end, or as far as it came (the parser's last push) */
  endTs?: number;
  /** its HTTP version: "HTTP/1.0" or "HTTP/1.1" as its start line says, "HTTP/2" or "HTTP/3" from those parsers */
  version?: string;
  /** HTTP/1 responses: the status line's reason phrase, "" when it has none (HTTP/2 and HTTP/3 have none at all) */
  reason?: string;
  /** HTTP/2 only */
  streamId?: number;
  /** HTTP/2 and HTTP/3: how many headers (and trailers) past HEADER_BYTES_CAP were not kept */
  headersDropped?: number;
  /** returned by the analyzer's end of capture: its end was not seen (see HttpExchangeSummary.unfinished) */
  unfinished?: true;
  /** HTTP/2 only: the `:path` of a request whose content-type is application/grpc* */
  grpcMethod?: string;
}

export const BODY_CAP = 64 * 1024;
/** A header's value by its name in any case (the first of that name), or null. */
export function headerValue(headers: readonly [string, string][], name: string): string | null {
  const n = name.toLowerCase();
  for (const [k, v] of headers) if (k.toLowerCase() === n) return v;
  return null;
}

/** The content-codings of a message's body (its Content-Encoding), lower case, in the order applied; identity left out. */
export function contentCodings(headers: readonly [string, string][]): string[] {
  const value = headerValue(headers, 'content-encoding');
  return value === null ? [] : value.toLowerCase().split(',').map((c) => c.trim()).filter((c) => c !== '' && c !== 'identity');
}

/** A body's first bytes that decide whether it is text (looksBinary). */
export const BODY_SAMPLE = 512;

/** 1 for the bytes looksBinary counts: control characters other than tab, newline and carriage return. */
const CONTROL = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) if (c < 0x09 || c > 0x0d) CONTROL[c] = 1;

/**
 * True when a body is binary, judged by its first BODY_SAMPLE bytes: more than one in 20 is a control
 * character other than tab, newline and carriage return. A sample, because scanning whole bodies dominated
 * large captures.
 */
export function looksBinary(body: Buffer): boolean {
  const sample = Math.min(body.length, BODY_SAMPLE);
  const most = sample / 20;
  let ctl = 0;
  let i = 0;
  // why eight at a time, by table: no branch per byte (random bytes made the old per-byte test mispredict),
  // and still decided soon after the count passes the limit (random bytes pass it about halfway)
  for (; i + 8 <= sample; i += 8) {
    ctl += CONTROL[body[i]!]! + CONTROL[body[i + 1]!]! + CONTROL[body[i + 2]!]! + CONTROL[body[i + 3]!]! +
      CONTROL[body[i + 4]!]! + CONTROL[body[i + 5]!]! + CONTROL[body[i + 6]!]! + CONTROL[body[i + 7]!]!;
    if (ctl > most) return true;
  }
  for (; i < sample; i++) ctl += CONTROL[body[i]!]!;
  return ctl > most;
}
// why: shared, never written to: a parser between messages holds no bytes and needs no allocation
const EMPTY = Buffer.alloc(0);
// why: a header section larger than this is not HTTP we can use; treating it as garbage keeps a
// mis-detected binary stream from growing the buffer without bound.
const MAX_HEAD = 64 * 1024;

/** HEAD and CONNECT requests a response side keeps unanswered (see expectResponseTo) */
const MAX_SPECIAL = 1024;
const RESYNC_TAIL = 8 * 1024;
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'PURGE'];
// A message start anywhere in a buffer: used to resynchronise after a gap or garbage. (Its line may end in a bare LF,
// as lineEnd's do.)
const START_SCAN = new RegExp(`(?:${METHODS.join('|')}) [^\\s]+ HTTP/1\\.[01]\\r?\\n|HTTP/1\\.[01] \\d{3}[ \\r\\n]`, 'g');

const START_TOKENS = ['HTTP/1.', ...METHODS.map((m) => `${m} `)].map((t) => Buffer.from(t, 'latin1'));

/** The whitespace String.prototype.trim removes, as latin1 bytes. */
function isTrimmed(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0xa0;
}

/** buf[start, end) without leading and trailing whitespace, shared (the bytes' `.trim()`). */
function sharedTrimmed(buf: Buffer, start: number, end: number): string {
  while (start < end && isTrimmed(buf[start]!)) start++;
  while (end > start && isTrimmed(buf[end - 1]!)) end--;
  return sharedLatin1(buf, start, end);
}

/** Does buf[start, end) equal `lower` (lower case ASCII) ignoring case? */
function nameIs(buf: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const b = buf[start + i]!;
    const l = lower.charCodeAt(i);
    if (b !== l && !(l >= 0x61 && l <= 0x7a && b === l - 0x20)) return false;
  }
  return true;
}

// Lines (start line, header and trailer fields, chunk sizes) end in an LF, the CR before it not counted: RFC 9112
// §2.2 lets a recipient take a bare LF for CRLF ("ignore any preceding CR"). A CR alone ends no line.

/** Where the first LF in buf[from, end) is; `end` when there is none. Its line's text stops at lineStop. */
function lineEnd(buf: Buffer, from: number, end: number): number {
  // why the LF alone is searched for (natively) and the CR looked at once per line (lineStop): this runs over every
  // byte of every head, and CRLF heads parse faster this way than with the byte loop that looked for CRLF (timed)
  const lf = buf.indexOf(0x0a, from);
  return lf < 0 || lf >= end ? end : lf;
}

/** Where the text of the line from `from` to its LF at `lf` ends: at a CR right before the LF, else at the LF. */
function lineStop(buf: Buffer, from: number, lf: number): number {
  return lf > from && buf[lf - 1] === 0x0d ? lf - 1 : lf;
}

/**
 * Where a head ends in buf (the byte after its empty line's LF, which ends at or after `from`), or -1: an empty line is
 * an LF right after a line's LF, or after its CR (RFC 9112 §2.2: a bare LF ends a line).
 */
export function headEnd(buf: Buffer, from = 0): number {
  for (let lf = buf.indexOf(0x0a, Math.max(from, 1)); lf >= 0; lf = buf.indexOf(0x0a, lf + 1)) {
    if (buf[lf - 1] === 0x0a || (buf[lf - 1] === 0x0d && buf[lf - 2] === 0x0a)) return lf + 1;
  }
  return -1;
}

/** Does buf[0, len) start with a start token ("GET ", "HTTP/1.") or could it still grow into one? */
function startPrefixOk(buf: Buffer, len: number): boolean {
  for (const token of START_TOKENS) {
    const n = Math.min(len, token.length);
    let i = 0;
    while (i < n && buf[i] === token[i]) i++;
    if (i === n) return true;
  }
  return false;
}

/** True when the bytes start like an HTTP/1 request or response line. */
export function looksLikeHttp1(firstBytes: Buffer): boolean {
  const len = Math.min(firstBytes.length, 16);
  return len >= 3 && startPrefixOk(firstBytes, len);
}

/** True when bytes too few for looksLikeHttp1 (one or two) could still grow into an HTTP/1 start line. */
export function mayGrowIntoHttp1(firstBytes: Buffer): boolean {
  return firstBytes.length > 0 && firstBytes.length < 3 && startPrefixOk(firstBytes, firstBytes.length);
}

// The start lines, read from the bytes (latin1) exactly as these would match them:
//   request /^([A-Z][A-Z-]{0,19}) (\S+) HTTP\/(\d)\.(\d)$/   status /^HTTP\/(\d)\.(\d) (\d{3})(?: .*)?$/
const SP = 0x20;

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** Does buf[at, at + 8) read "HTTP/d.d"? */
function versionAt(buf: Buffer, at: number): boolean {
  return buf[at] === 0x48 && buf[at + 1] === 0x54 && buf[at + 2] === 0x54 && buf[at + 3] === 0x50 && buf[at + 4] === 0x2f &&
    isDigit(buf[at + 5]) && buf[at + 6] === 0x2e && isDigit(buf[at + 7]);
}

/** Where the method ends (its space) when buf[0, end) is a request line; -1 when it is not one. */
function requestLine(buf: Buffer, end: number): number {
  let sp = 0;
  while (sp < end && sp <= 20 && ((buf[sp]! >= 0x41 && buf[sp]! <= 0x5a) || (sp > 0 && buf[sp] === 0x2d))) sp++;
  if (sp === 0 || sp > 20 || sp >= end || buf[sp] !== SP) return -1;
  // the path runs to the first whitespace, which must be the space before the version, at the line's end
  const pathEnd = end - 9;
  if (pathEnd <= sp + 1 || buf[pathEnd] !== SP || !versionAt(buf, pathEnd + 1)) return -1;
  for (let i = sp + 1; i < pathEnd; i++) if (isTrimmed(buf[i]!)) return -1;
  return sp;
}

/** The status code when buf[0, end) is a status line; -1 when it is not one. */
function statusLine(buf: Buffer, end: number): number {
  if (end < 12 || !versionAt(buf, 0) || buf[8] !== SP || !isDigit(buf[9]) || !isDigit(buf[10]) || !isDigit(buf[11])) return -1;
  if (end > 12) {
    if (buf[12] !== SP) return -1;
    for (let i = 13; i < end; i++) if (buf[i] === 0x0d || buf[i] === 0x0a) return -1;
  }
  return (buf[9]! - 0x30) * 100 + (buf[10]! - 0x30) * 10 + (buf[11]! - 0x30);
}

/** The message a start line buf[0, end) begins; null when it is neither a request nor a status line. */
function startLine(buf: Buffer, end: number, ts: number): HttpMessage | null {
  const methodEnd = requestLine(buf, end);
  if (methodEnd >= 0) {
    const method = sharedLatin1(buf, 0, methodEnd);
    const version = sharedLatin1(buf, end - 8, end);
    return { kind: 'request', method, path: buf.toString('latin1', methodEnd + 1, end - 9), headers: [], body: EMPTY, bodyTruncated: false, ts, version };
  }
  const status = statusLine(buf, end);
  if (status < 0) return null;
  const reason = end > 13 ? sharedLatin1(buf, 13, end) : '';
  return { kind: 'response', status, headers: [], body: EMPTY, bodyTruncated: false, ts, version: sharedLatin1(buf, 0, 8), reason };
}

// (the byte counts of 'body-length' and 'chunk-data' are the parser's `left`)
// ('connect': a request side after a CONNECT, holding what follows until the answer says tunnel or not)
type State = 'start' | 'resync' | 'body-length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'body-close' | 'tunnel' | 'connect';

// why: most pushes (body segments) complete no message; they all return this, not a new empty list
const NO_MESSAGES: HttpMessage[] = Object.freeze([]) as unknown as HttpMessage[];

export interface Http1Options {
  /**
   * false: bodies are only counted, never kept (each message's body is empty and bodySize its size): for
   * callers that show no body, it saves a copy of every body's first bytes (of a text body, all of it).
   */
  bodies?: boolean;
  /**
   * Only the headers (and trailers) with these names are kept in `headers`; absent: all. For callers that
   * need a few (the analyzer without details needs Host): the others are never turned into strings.
   * Content-Length and Transfer-Encoding still frame the body either way.
   */
  headers?: readonly string[];
}

// which framing header a header line was (the parser's lastFraming)
const NOT_FRAMING = 0;
const CONTENT_LENGTH = 1;
const TRANSFER_ENCODING = 2;

export class Http1Parser {
  private readonly keepBodies: boolean;
  /** the names of the headers kept, lower case; null: all */
  private readonly keepHeaders: readonly string[] | null;
  private buf: Buffer = EMPTY;
  private state: State = 'start';
  /** bytes left of the Content-Length body or of the chunk being read */
  private left = 0;
  /** messages completed by the current push, gap or end (null: none yet) */
  private out: HttpMessage[] | null = null;
  // The message being read (its head is complete) and its body so far: fields of the parser, not an
  // object per message.
  private msg: HttpMessage | null = null;
  /** body bytes seen, up to BODY_CAP */
  private kept = 0;
  /** the Content-Length, -1 when the body has none (chunked, or delimited by close) */
  private expect = -1;
  /** the body's first BODY_SAMPLE bytes (all of a shorter Content-Length body), filled in place */
  private sample: Buffer | null = null;
  /** the sample was binary: later bytes are only counted */
  private binary = false;
  /** the message's body is content-encoded (gzip, br, ...): binary bytes that decode to its content, kept as text is */
  private encoded = false;
  /** a text body within the cap with a Content-Length: one buffer of its size, filled in place (one copy, no joins) */
  private into: Buffer | null = null;
  /** a text body otherwise: the sample, then copies of the later pieces (null until the sample is complete) */
  private parts: Buffer[] | null = null;
  /** ts of the chunk that carried the first byte of the message being started */
  private headTs: number | null = null;
  /** ts of the last push: a message finished is read up to there (its endTs) */
  private lastTs = 0;
  /** requests this (response) side was told of (see expectResponseTo), and those its responses answered */
  private told = 0;
  private answered = 0;
  /**
   * Of them, the HEAD and CONNECT requests (the only methods a response's framing depends on) not answered yet, oldest
   * first from `specialAt`: a queue, not a list shifted per response (100,000 pipelined requests took 3.5 s that way)
   */
  private special: { at: number; method: string }[] | null = null;
  private specialAt = 0;
  /** of the head read last: its length up to the end of its empty line */
  private headLength = 0;
  /** of a head whose end has not arrived: how many of its bytes were searched for the end; 0 otherwise */
  private headSearched = 0;
  /** of the head parsed last: its first Content-Length value, null when none */
  private contentLength: string | null = null;
  /** of the head parsed last: its first Transfer-Encoding value, null when none */
  private transferEncoding: string | null = null;
  // Of the head being read, for a folded line (obsolete line folding continues the last header's value):
  /** its header lines so far, kept or not */
  private headerLines = 0;
  /** the last header line's kept name and value; null when it was not kept */
  private lastPair: [string, string] | null = null;
  /** whether the last header line was the first Content-Length or Transfer-Encoding (or NOT_FRAMING) */
  private lastFraming = NOT_FRAMING;
  /** the size line of the chunk being read ended in a bare LF (its data may then end in one too, see 'chunk-crlf') */
  private lfChunk = false;
  /** a response side after a CONNECT's 2xx answer: the tunnel's bytes since, until taken (takeTunnel) */
  private tunneled: Buffer | null = null;

  constructor(opts: Http1Options = {}) {
    this.keepBodies = opts.bodies ?? true;
    this.keepHeaders = opts.headers?.map((h) => h.toLowerCase()) ?? null;
  }

  /**
   * Tell a response-side parser the method of the next request on the connection, in order. Needed
   * only for HEAD and CONNECT, whose responses carry no body; without it a HEAD response with a
   * Content-Length would swallow the next response.
   */
  expectResponseTo(method: string): void {
    const m = method.toUpperCase();
    // (memory bounded by MAX_SPECIAL unanswered ones: a response to one beyond is framed as any other's)
    if ((m === 'HEAD' || m === 'CONNECT') && (this.special?.length ?? 0) - this.specialAt < MAX_SPECIAL) {
      (this.special ??= []).push({ at: this.told, method: m });
    }
    this.told++;
  }

  /** The method of the request the next response answers: HEAD, CONNECT, or undefined (another, or none told). */
  private answering(): string | undefined {
    if (this.answered >= this.told) return undefined;
    const n = this.answered++;
    const q = this.special;
    if (q === null) return undefined;
    // (entries are taken in order, each by the response of its number: the next one's number is never below n)
    const next = q[this.specialAt];
    if (next === undefined || next.at !== n) return undefined;
    this.specialAt++;
    if (this.specialAt === q.length) {
      q.length = 0;
      this.specialAt = 0;
    } else if (this.specialAt >= 64 && this.specialAt * 2 >= q.length) {
      q.splice(0, this.specialAt);
      this.specialAt = 0;
    }
    return next.method;
  }

  /** The messages the bytes complete (a shared, frozen empty list when none). */
  push(chunk: Buffer, ts: number): HttpMessage[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.lastTs = ts;
    let progressed = true;
    while (progressed && this.buf.length > 0) progressed = this.step(ts);
    // why: never keep a view into the caller's chunk (it may be a slice of a large reader buffer)
    if (this.buf.length > 0 && this.buf.buffer === chunk.buffer) this.buf = Buffer.from(this.buf);
    return this.completed();
  }

  private emit(m: HttpMessage): void {
    // (a list of one, the usual case, sized to one)
    if (this.out === null) this.out = [m];
    else this.out.push(m);
  }

  /** The messages emitted since the last call. */
  private completed(): HttpMessage[] {
    const out = this.out ?? NO_MESSAGES;
    this.out = null;
    return out;
  }

  /**
   * Bytes were lost. The message in progress (if its head was complete) is returned with
   * bodyTruncated set; parsing resumes at the next message start.
   */
  gap(): HttpMessage[] {
    if (this.msg) {
      this.msg.bodyTruncated = true;
      this.emit(this.finish());
    }
    this.buf = EMPTY;
    this.headTs = null;
    this.headSearched = 0;
    this.state = 'resync';
    return this.completed();
  }

  /** The stream ended: a response delimited by connection close is complete now. */
  end(): HttpMessage[] {
    if (this.msg && this.state === 'body-close') {
      this.emit(this.finish());
      this.state = 'start';
    }
    return this.completed();
  }

  /**
   * How many body bytes would next be taken only to be counted (with bodies not kept, a binary body past its
   * sample, or any body past the cap; inside a Content-Length and short of its end): countBody may take up to
   * that many without their bytes. 0 when the next bytes are kept or may end the message.
   */
  countableBody(): number {
    if (this.state !== 'body-length' || this.buf.length > 0) return 0;
    if (this.keepBodies && this.kept < BODY_CAP && !(this.binary && this.kept >= BODY_SAMPLE)) return 0;
    return this.left - 1;
  }

  /**
   * After a proxy's 2xx answer to CONNECT, or a 101 Switching Protocols: the bytes of the tunnel (or of the protocol
   * switched to) that followed the answer's head since the last call (empty when none yet); null while none opened.
   * What goes through a tunnel (TLS, mostly) is not HTTP of this connection.
   */
  takeTunnel(): Buffer | null {
    const t = this.tunneled;
    if (t !== null) this.tunneled = EMPTY;
    return t;
  }

  /**
   * A request side after a CONNECT whose answer opened a tunnel: the bytes the client sent after its request (its
   * hello, when it did not wait for the answer), taken; the parser reads no more.
   */
  takeBuffered(): Buffer {
    const b = this.buf;
    this.buf = EMPTY;
    this.state = 'tunnel';
    return b;
  }

  /**
   * A request side whose request was answered 101 Switching Protocols (a WebSocket's, say): its bytes from now on are
   * the new protocol's, not read (an HTTP/1 parser looking for requests in them could take a line of them for one).
   */
  upgraded(): void {
    this.buf = EMPTY;
    this.state = 'tunnel';
  }

  /** A request side after a CONNECT that was refused: the bytes held since are requests again (the messages they complete). */
  resume(ts: number): HttpMessage[] {
    if (this.state !== 'connect') return NO_MESSAGES;
    this.state = 'start';
    let progressed = true;
    while (progressed && this.buf.length > 0) progressed = this.step(ts);
    return this.completed();
  }

  /** Takes `n` body bytes (at most countableBody()) as push() would, without the bytes themselves. */
  countBody(n: number, ts: number): void {
    this.lastTs = ts;
    this.left -= n;
    this.kept += this.fitting(n);
  }

  /** How many of `n` new body bytes fit under BODY_CAP; marks the body truncated when not all do. */
  private fitting(n: number): number {
    const room = BODY_CAP - this.kept;
    if (n > room) this.msg!.bodyTruncated = true;
    return room <= 0 ? 0 : Math.min(n, room);
  }

  private appendBody(b: Buffer): void {
    if (b.length === 0) return;
    const n = this.fitting(b.length);
    if (n === 0) return;
    if (!this.keepBodies) {
      this.kept += n;
      return;
    }
    // why: copies, because `b` is a view into the caller's chunk, which the caller may reuse
    let from = 0;
    if (this.kept < BODY_SAMPLE) {
      const sample = this.sample ?? (this.sample = Buffer.allocUnsafe(this.expect >= 0 ? Math.min(this.expect, BODY_SAMPLE) : BODY_SAMPLE));
      from = b.copy(sample, this.kept, 0, n);
      this.kept += from;
      if (this.kept < BODY_SAMPLE) return;
      this.sampled(sample);
    }
    if (from === n) return;
    if (this.into) b.copy(this.into, this.kept, from, n);
    else if (!this.binary) this.parts!.push(Buffer.from(b.subarray(from, n)));
    this.kept += n - from;
  }

  /** The sample is complete: a binary body keeps no more bytes, a text body gets its store. */
  private sampled(sample: Buffer): void {
    // (a compressed body is kept as a text one is, to the cap: an export decodes it to the text it is)
    this.binary = looksBinary(sample) && !this.encoded;
    if (this.binary) return;
    // why: only bodies that fit the cap: a large Content-Length must not reserve the cap for bytes never seen
    if (this.expect > BODY_SAMPLE && this.expect <= BODY_CAP) {
      this.into = Buffer.allocUnsafe(this.expect);
      sample.copy(this.into);
    } else this.parts = [sample];
  }

  /** Starts reading msg's body (expect: its Content-Length, or -1). */
  private begin(msg: HttpMessage, expect: number): void {
    this.msg = msg;
    this.kept = 0;
    this.expect = expect;
    this.sample = null;
    this.binary = false;
    this.encoded = contentCodings(msg.headers).length > 0;
    this.into = null;
    this.parts = null;
  }

  /** The message being read, its body in place; the parser holds none of it after. */
  private finish(): HttpMessage {
    const m = this.msg!;
    if (this.into) m.body = this.kept === this.into.length ? this.into : this.into.subarray(0, this.kept);
    else if (this.parts && this.parts.length > 1) m.body = Buffer.concat(this.parts);
    // (a binary body's count runs past its sample: the whole sample, no view of it)
    else if (this.sample) m.body = this.kept >= this.sample.length ? this.sample : this.sample.subarray(0, this.kept);
    if (this.binary || !this.keepBodies) m.bodySize = this.kept;
    m.endTs = this.lastTs;
    this.msg = null;
    this.sample = null;
    this.into = null;
    this.parts = null;
    return m;
  }

  /** One state transition; false when it needs more bytes. */
  private step(ts: number): boolean {
    switch (this.state) {
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
        this.state = 'start';
        return true;
      }
      case 'start': {
        // tolerate stray CRLFs between messages (RFC 9112 §2.2)
        let skip = 0;
        while (skip < this.buf.length && (this.buf[skip] === 0x0d || this.buf[skip] === 0x0a)) skip++;
        if (skip > 0) this.buf = this.buf.subarray(skip);
        if (this.buf.length === 0) return false;
        if (this.headTs === null) this.headTs = ts;
        // why: a head that began in an earlier chunk is read once its end is here; until then only the new
        // bytes are searched for the end (a large head in many segments stays linear)
        const waiting = this.headSearched > 0 && headEnd(this.buf, this.headSearched) < 0;
        const msg = waiting ? undefined : this.readHead(this.buf, this.headTs);
        if (msg === undefined) {
          if (this.buf.length > MAX_HEAD || !this.plausibleStart()) {
            this.headTs = null;
            this.headSearched = 0;
            this.state = 'resync';
            this.buf = this.buf.subarray(1);
            return true;
          }
          this.headSearched = this.buf.length;
          return false;
        }
        this.headTs = null;
        this.headSearched = 0;
        if (!msg) {
          this.state = 'resync';
          this.buf = this.buf.subarray(1);
          return true;
        }
        this.buf = this.headLength === this.buf.length ? EMPTY : this.buf.subarray(this.headLength);
        this.state = this.bodyState(msg);
        this.begin(msg, this.state === 'body-length' ? this.left : -1);
        // (a head with no body is the whole message; so is an answer that opens a tunnel, CONNECT's or 101's)
        if (this.state === 'start' || this.state === 'tunnel' || this.state === 'connect') this.emit(this.finish());
        return true;
      }
      case 'body-length': {
        const buf = this.buf;
        const take = Math.min(this.left, buf.length);
        // why: a body packet is usually consumed whole; no views for that case (this runs per packet)
        const whole = take === buf.length;
        this.appendBody(whole ? buf : buf.subarray(0, take));
        this.buf = whole ? EMPTY : buf.subarray(take);
        this.left -= take;
        if (this.left === 0) {
          this.emit(this.finish());
          this.state = 'start';
        }
        return take > 0 || this.left === 0;
      }
      case 'chunk-size': {
        const nl = this.buf.indexOf(0x0a);
        if (nl < 0) {
          if (this.buf.length > 1024) return this.toResync();
          return false;
        }
        const stop = lineStop(this.buf, 0, nl);
        const line = this.buf.toString('latin1', 0, stop);
        const m = /^([0-9a-fA-F]{1,8})[ \t]*(?:;.*)?$/.exec(line);
        if (!m) return this.toResync();
        const size = parseInt(m[1]!, 16);
        this.lfChunk = stop === nl;
        this.buf = this.buf.subarray(nl + 1);
        this.left = size;
        this.state = size === 0 ? 'trailers' : 'chunk-data';
        return true;
      }
      case 'chunk-data': {
        const take = Math.min(this.left, this.buf.length);
        this.appendBody(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.left -= take;
        if (this.left === 0) this.state = 'chunk-crlf';
        return true;
      }
      case 'chunk-crlf': {
        // why a bare LF ends a chunk's data only after a size line that ended in one: a sender that ends its lines so
        // ends this one so too, and after a CRLF size line an LF here is a wrong size whose data ended in CR (CRLF
        // framing stays as strict as it was; RFC 9112 §2.2 speaks of the start line and fields, not of this CRLF)
        const n = this.buf[0] === 0x0a && this.lfChunk ? 1 : 2;
        if (this.buf.length < n) return false;
        if (n === 2 && (this.buf[0] !== 0x0d || this.buf[1] !== 0x0a)) return this.toResync();
        this.buf = this.buf.subarray(n);
        this.state = 'chunk-size';
        return true;
      }
      case 'trailers': {
        const nl = this.buf.indexOf(0x0a);
        if (nl < 0) return false;
        const line = this.buf.toString('latin1', 0, lineStop(this.buf, 0, nl));
        this.buf = this.buf.subarray(nl + 1);
        if (line === '') {
          this.emit(this.finish());
          this.state = 'start';
        } else {
          const c = line.indexOf(':');
          const name = line.slice(0, c).trim();
          if (c > 0 && (this.keepHeaders === null || this.keepHeaders.includes(name.toLowerCase()))) this.msg!.headers.push([name, line.slice(c + 1).trim()]);
        }
        return true;
      }
      case 'body-close':
        this.appendBody(this.buf);
        this.buf = EMPTY;
        return false;
      case 'connect':
        // (held as they are, up to a head's worth: a client that sends more before the answer is tunnelling)
        if (this.buf.length > MAX_HEAD) {
          this.state = 'tunnel';
          this.buf = EMPTY;
        }
        return false;
      case 'tunnel':
        // (a CONNECT tunnel's bytes, or an upgraded protocol's after 101, are kept for takeTunnel; a request side's are not)
        if (this.tunneled !== null) this.tunneled = this.tunneled.length === 0 ? Buffer.from(this.buf) : Buffer.concat([this.tunneled, this.buf]);
        this.buf = EMPTY;
        return false;
    }
  }

  private toResync(): boolean {
    if (this.msg) {
      this.msg.bodyTruncated = true;
      this.finish();
    }
    this.state = 'resync';
    return true;
  }

  /** Could the buffered bytes still become a start line? */
  private plausibleStart(): boolean {
    const nl = this.buf.indexOf(0x0a);
    if (nl >= 0) {
      const end = lineStop(this.buf, 0, nl);
      return requestLine(this.buf, end) >= 0 || statusLine(this.buf, end) >= 0;
    }
    return startPrefixOk(this.buf, Math.min(this.buf.length, 32));
  }

  /**
   * The head at the start of buf, read line by line from its bytes in one pass that also finds its end (the
   * first empty line; headLength then says where the body starts). null when it is not an HTTP head,
   * undefined while its end has not arrived. A path is its own string; header names and short values are
   * shared (sharedLatin1).
   */
  private readHead(buf: Buffer, ts: number): HttpMessage | null | undefined {
    const startLf = lineEnd(buf, 0, buf.length);
    if (startLf === buf.length) return undefined;
    let msg = startLine(buf, lineStop(buf, 0, startLf), ts);
    this.contentLength = null;
    this.transferEncoding = null;
    this.headerLines = 0;
    this.lastPair = null;
    this.lastFraming = NOT_FRAMING;
    for (let at = startLf + 1; ;) {
      const lf = lineEnd(buf, at, buf.length);
      if (lf === buf.length) return undefined;
      const eol = lineStop(buf, at, lf);
      if (eol === at) {
        this.headLength = lf + 1;
        return msg;
      }
      // why: after a line that is not HTTP only the end is looked for (whether to wait or resynchronise)
      if (msg && !this.headerLine(msg, buf, at, eol)) msg = null;
      at = lf + 1;
    }
  }

  /** Reads the header line buf[start, end) into msg (when kept) and the framing values; false when it is not one. */
  private headerLine(msg: HttpMessage, buf: Buffer, start: number, end: number): boolean {
    if ((buf[start] === 0x20 || buf[start] === 0x09) && this.headerLines > 0) {
      // obsolete line folding: continuation of the previous header value
      const more = buf.toString('latin1', start, end).trim();
      if (this.lastPair) this.lastPair[1] = `${this.lastPair[1]} ${more}`;
      if (this.lastFraming === CONTENT_LENGTH) this.contentLength = `${this.contentLength!} ${more}`;
      else if (this.lastFraming === TRANSFER_ENCODING) this.transferEncoding = `${this.transferEncoding!} ${more}`;
      return true;
    }
    let colon = start;
    while (colon < end && buf[colon] !== 0x3a) colon++;
    if (colon === start || colon === end) return false;
    let nameStart = start;
    let nameEnd = colon;
    while (nameStart < nameEnd && isTrimmed(buf[nameStart]!)) nameStart++;
    while (nameEnd > nameStart && isTrimmed(buf[nameEnd - 1]!)) nameEnd--;
    this.headerLines++;
    // why: the framing headers are found here, on the bytes, instead of lower-casing every name afterwards
    this.lastFraming = this.contentLength === null && nameIs(buf, nameStart, nameEnd, 'content-length') ? CONTENT_LENGTH
      : this.transferEncoding === null && nameIs(buf, nameStart, nameEnd, 'transfer-encoding') ? TRANSFER_ENCODING : NOT_FRAMING;
    const keep = this.keeps(buf, nameStart, nameEnd);
    this.lastPair = null;
    if (!keep && this.lastFraming === NOT_FRAMING) return true;
    const value = sharedTrimmed(buf, colon + 1, end);
    if (this.lastFraming === CONTENT_LENGTH) this.contentLength = value;
    else if (this.lastFraming === TRANSFER_ENCODING) this.transferEncoding = value;
    if (keep) msg.headers.push(this.lastPair = [sharedLatin1(buf, nameStart, nameEnd), value]);
    return true;
  }

  /** Is the header named buf[start, end) kept? */
  private keeps(buf: Buffer, start: number, end: number): boolean {
    if (this.keepHeaders === null) return true;
    for (let i = 0; i < this.keepHeaders.length; i++) if (nameIs(buf, start, end, this.keepHeaders[i]!)) return true;
    return false;
  }

  /** The state after msg's head; for a Content-Length body, `left` is its length. */
  private bodyState(msg: HttpMessage): State {
    if (msg.kind === 'request' && msg.method === 'CONNECT') return 'connect';
    if (msg.kind === 'response') {
      const status = msg.status!;
      if (status >= 100 && status < 200) {
        // why: interim responses (100 Continue, 103 Early Hints) do not answer the pending request; after 101 the
        // connection speaks the protocol it switched to, whose bytes are kept for takeTunnel (HTTP/2's, after h2c)
        if (status !== 101) return 'start';
        this.tunneled = EMPTY;
        return 'tunnel';
      }
      const method = this.answering();
      if (method === 'HEAD' || status === 204 || status === 304) return 'start';
      if (method === 'CONNECT' && status >= 200 && status < 300) {
        this.tunneled = EMPTY;
        return 'tunnel';
      }
    }
    const te = this.transferEncoding ?? '';
    if (te && /(^|,)\s*chunked\s*$/i.test(te)) return 'chunk-size';
    if (this.contentLength !== null) {
      // the first of a repeated value ("5, 5"); Number() ignores the whitespace around it
      const cl = this.contentLength;
      const comma = cl.indexOf(',');
      const n = Number(comma < 0 ? cl : cl.slice(0, comma));
      if (Number.isInteger(n) && n >= 0) {
        this.left = n;
        return n === 0 ? 'start' : 'body-length';
      }
    }
    // a request without length has no body; a response without length runs to connection close
    return msg.kind === 'request' ? 'start' : 'body-close';
  }
}
