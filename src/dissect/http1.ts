// Incremental HTTP/1.x parser for one direction of a TCP stream: requests or responses (detected from
// the start line), Content-Length, chunked and keep-alive pipelines. Bodies are kept up to 64 KiB, except
// binary ones: their bytes are never shown (only their size), so only their first BODY_SAMPLE bytes are kept.
// Lines end in CRLF or a bare LF (see lineEnd); start lines are split on any run of whitespace, as servers read them.
// A message that cannot be read whole (a garbled start line, a head past MAX_HEAD, a length that is no length) is still
// returned, saying so (malformed), so that the responses after it answer the right requests.
// After a gap in the stream, or such a message, it skips bytes until something that looks like the next message start.
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
  /**
   * Its end was not seen, and why: the capture ended before it (the analyzer's end of capture), or its connection closed
   * or was reset before its body's end (end()). See HttpExchangeSummary.unfinished.
   */
  unfinished?: string;
  /** HTTP/2 only: the `:path` of a request whose content-type is application/grpc* */
  grpcMethod?: string;
  /**
   * HTTP/1: what of the message could not be read, and so was not (several: joined by "; "): a request line that is none
   * (its method is its first word, its path unknown), a status line that is none (no status), header lines that are none,
   * header lines past MAX_HEAD, a body whose length is unknown (a Content-Length that is no number, or two that differ)
   * or whose chunked framing broke off. Absent: read whole. Such a message still takes its place among the side's
   * requests or responses.
   */
  malformed?: string;
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
// why: no server reads a larger head (nginx, Node and Apache answer 431 well below it): of one, only the start line and
// the header lines before this are read. It also keeps a binary stream taken for HTTP from growing the buffer without bound.
const MAX_HEAD = 64 * 1024;

/** HEAD and CONNECT requests a response side keeps unanswered (see expectResponseTo) */
const MAX_SPECIAL = 1024;
const RESYNC_TAIL = 8 * 1024;
/**
 * The methods known by name (any other token is a method too): a connection's first bytes are told HTTP by them at once
 * (looksLikeHttp1), a resync finds a request of one anywhere in a line (START_SCAN) and at the end of a token glued to it
 * (resyncAt), and a start line that is none is still a request when its first word is one (garbledRequest).
 */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'PURGE'];
const KNOWN_METHODS = new Set(METHODS);
/** Registered methods (IANA's HTTP method registry) that end in a known one: a token that is one is kept whole (resyncAt). */
const ENDING_IN_KNOWN = new Set(['ORDERPATCH']);
/** The characters of a token (RFC 9110 §5.6.2): a method's. */
const TOKEN_CHARS = "!#$%&'*+.^_`|~0-9A-Za-z-";
/** The whitespace that splits a start line's words (RFC 9112 §3: SP, HTAB, VT, FF or a bare CR). */
const SPLIT = '[ \\t\\v\\f\\r]';
// A message start anywhere in a buffer: used to resynchronise after a gap, garbage or a message whose end is not known.
// A known method may begin anywhere; any other token only at a line's start (after a gap, a line's tail would make one
// up: "ST /a HTTP/1.1" of "POST"). (Its line may end in a bare LF, as lineEnd's do.)
const START_SCAN = new RegExp(`(?:${METHODS.join('|')})${SPLIT}+[^\\s]+${SPLIT}+HTTP/1\\.[01]${SPLIT}*\\n|` +
  `(?<=\\n)[${TOKEN_CHARS}]+${SPLIT}+[^\\s]+${SPLIT}+HTTP/1\\.\\d${SPLIT}*\\n|HTTP/1\\.[01]${SPLIT}+\\d{3}(?:${SPLIT}|\\n)`, 'g');

const START_TOKENS = ['HTTP/1.', ...METHODS.map((m) => `${m} `)].map((t) => Buffer.from(t, 'latin1'));
const HTTP_SLASH = Buffer.from('HTTP/', 'latin1');
/** a version's bytes ("HTTP/d.d": its digits are any) */
const HTTP_VERSION = Buffer.from('HTTP/1.1', 'latin1');
/** 1 for the bytes of a token (TOKEN_CHARS) */
const TOKEN = new Uint8Array(256);
const TOKEN_CHAR = new RegExp(`[${TOKEN_CHARS}]`);
for (let c = 0; c < 0x80; c++) if (TOKEN_CHAR.test(String.fromCharCode(c))) TOKEN[c] = 1;
// why this bound on a request line of an unknown method (looksLikeHttp1 waits for its end): nginx's and Apache's default
const MAX_REQUEST_LINE = 8 * 1024;

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

/** Do buf[0, len)'s first bytes agree with all of `token` (or, fewer than it, with its first bytes)? */
function beginsWith(buf: Buffer, len: number, token: Buffer): boolean {
  const n = Math.min(len, token.length);
  let i = 0;
  while (i < n && buf[i] === token[i]) i++;
  return i === n;
}

/** Does buf[0, len) start with a start token ("GET ", "HTTP/1.") or could it still grow into one? */
function startPrefixOk(buf: Buffer, len: number): boolean {
  for (const token of START_TOKENS) if (beginsWith(buf, len, token)) return true;
  return false;
}

/**
 * True when the bytes start like an HTTP/1 request or response line: a known method's or a status line's first bytes, or
 * (any other method: a token) a whole request line whose version is HTTP/1.x.
 */
export function looksLikeHttp1(firstBytes: Buffer): boolean {
  const len = Math.min(firstBytes.length, 16);
  if (len >= 3 && startPrefixOk(firstBytes, len)) return true;
  // why the whole line for other methods (NOTIFY, SUBSCRIBE, MKCALENDAR, QUERY, ...: RFC 9110 §9.1 allows any token): a
  // token and a space begin many protocols' lines, and it takes the version at the line's end to tell HTTP's
  const lf = firstBytes.subarray(0, MAX_REQUEST_LINE).indexOf(0x0a);
  return lf > 0 && walkRequestLine(firstBytes, lineStop(firstBytes, 0, lf), false) === WHOLE && http1Line(firstBytes, lf);
}

/**
 * True when bytes too few for looksLikeHttp1 could still grow into an HTTP/1 start line: one or two of a known method's
 * or a status line's, or a request line of another method whose line has not ended (within `limit` bytes, at most
 * MAX_REQUEST_LINE: a caller that keeps fewer of a connection's first bytes gives its own).
 */
export function mayGrowIntoHttp1(firstBytes: Buffer, limit = MAX_REQUEST_LINE): boolean {
  const n = firstBytes.length;
  if (n > 0 && n < 3 && startPrefixOk(firstBytes, n)) return true;
  return n < Math.min(limit, MAX_REQUEST_LINE) && walkRequestLine(firstBytes, n, true) === BEGUN && http1Line(firstBytes, n);
}

/** Of the request line walkRequestLine read last from buf[0, end): is its target visible and its version (so far) HTTP/1? */
function http1Line(buf: Buffer, end: number): boolean {
  return visible(buf, LINE.targetStart, LINE.targetEnd) && (LINE.version + 5 >= end || buf[LINE.version + 5] === 0x31);
}

/** Are the bytes of buf[start, end) all visible (a target's: no control characters)? */
function visible(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! <= 0x20 || buf[i] === 0x7f) return false;
  return true;
}

// The start lines, read from the bytes (latin1). Their words are split by runs of whitespace, which may also end the line
// (RFC 9112 §3 lets a recipient do so; nginx and Python's http.server read "GET  /a HTTP/1.1" and "GET /a HTTP/1.1 "):
//   request: method (a token), target, HTTP/d.d     status: HTTP/d.d, three digits, then nothing or a reason

/**
 * Of the start line read last (walkRequestLine, statusLine): where its words lie. One record for all, filled by each such
 * call: read it right after the call whose line it is (another call in between, isStartLine's statusLine after its
 * requestLine, say, writes over it).
 */
const LINE = { methodEnd: 0, targetStart: 0, targetEnd: 0, version: 0, reason: 0 };

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** 1 for the whitespace that splits a start line's words (SPLIT) */
const SPLITS = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0b, 0x0c, 0x0d]) SPLITS[c] = 1;

/** Does the byte split a start line's words (SPLIT)? (A table: this runs over every byte of every start line.) */
function isSplit(b: number | undefined): boolean {
  return b !== undefined && SPLITS[b] === 1;
}

/** Does buf[at, at + 8) read "HTTP/d.d"? */
function versionAt(buf: Buffer, at: number): boolean {
  if (at + 8 > buf.length) return false;
  for (let i = 0; i < 8; i++) if (!versionByte(buf[at + i]!, i)) return false;
  return true;
}

/** Where the token run at buf[from] ends (before `end`). */
function tokenEnd(buf: Buffer, from: number, end: number): number {
  let i = from;
  while (i < end && TOKEN[buf[i]!] === 1) i++;
  return i;
}

/** Where the first word of buf[0, end) ends when it is a token followed by whitespace (a method, maybe); -1 otherwise. */
function methodEnd(buf: Buffer, end: number): number {
  const i = tokenEnd(buf, 0, end);
  return i > 0 && i < end && isSplit(buf[i]) ? i : -1;
}

// what walkRequestLine finds
const NONE = 0;
const BEGUN = 1;
const WHOLE = 2;

/**
 * buf[0, end) walked as a request line: a method (a token), whitespace, a target, whitespace, HTTP/d.d, then maybe
 * whitespace; its words' places in LINE. WHOLE: the line (`open` false: all of it) is one. BEGUN: the line has not ended
 * (`open`) and the bytes here begin one. NONE otherwise.
 */
function walkRequestLine(buf: Buffer, end: number, open: boolean): number {
  let i = methodEnd(buf, end);
  if (i < 0) return NONE;
  LINE.methodEnd = i;
  while (i < end && isSplit(buf[i])) i++;
  LINE.targetStart = i;
  while (i < end && !isSplit(buf[i])) i++;
  LINE.targetEnd = i;
  while (i < end && isSplit(buf[i])) i++;
  LINE.version = i;
  const v = Math.min(end, i + 8);
  for (; i < v; i++) if (!versionByte(buf[i]!, i - LINE.version)) return NONE;
  if (!open && (LINE.targetEnd === LINE.targetStart || v - LINE.version < 8)) return NONE;
  while (i < end && isSplit(buf[i])) i++;
  return i < end ? NONE : open ? BEGUN : WHOLE;
}

/** Is `b` what the byte at `at` of a version ("HTTP/d.d") may be? */
function versionByte(b: number, at: number): boolean {
  return at === 5 || at === 7 ? isDigit(b) : b === HTTP_VERSION[at];
}

/** Whether buf[0, end) is a request line (its words' places in LINE). */
function requestLine(buf: Buffer, end: number): boolean {
  return walkRequestLine(buf, end, false) === WHOLE;
}

/** The status code when buf[0, end) is a status line (where its reason begins in LINE); -1 when it is not one. */
function statusLine(buf: Buffer, end: number): number {
  if (end < 12 || !versionAt(buf, 0) || !isSplit(buf[8])) return -1;
  let i = 9;
  while (i < end && isSplit(buf[i])) i++;
  if (end - i < 3 || !isDigit(buf[i]) || !isDigit(buf[i + 1]) || !isDigit(buf[i + 2]) || (end > i + 3 && !isSplit(buf[i + 3]))) return -1;
  const status = (buf[i]! - 0x30) * 100 + (buf[i + 1]! - 0x30) * 10 + (buf[i + 2]! - 0x30);
  for (i += 3; i < end && isSplit(buf[i]);) i++;
  LINE.reason = i;
  return status;
}

/**
 * Where the method ends when buf[0, end), no request line, is still one a client meant as one: a token and whitespace
 * first, and a known method or a last word that begins "HTTP/" ("GET /a b HTTP/1.1", "NOTIFY * HTTP/1.12"); -1 otherwise.
 */
function garbledRequest(buf: Buffer, end: number): number {
  const m = methodEnd(buf, end);
  if (m < 0 || KNOWN_METHODS.has(buf.toString('latin1', 0, m))) return m;
  let last = end;
  while (last > m && isSplit(buf[last - 1])) last--;
  let first = last;
  while (first > m && !isSplit(buf[first - 1])) first--;
  return last - first >= HTTP_SLASH.length && buf.subarray(first, first + HTTP_SLASH.length).equals(HTTP_SLASH) ? m : -1;
}

/** Whether buf[0, end), no status line, is still one a server meant as one: it begins "HTTP/". */
function garbledStatus(buf: Buffer, end: number): boolean {
  return end >= HTTP_SLASH.length && buf.subarray(0, HTTP_SLASH.length).equals(HTTP_SLASH);
}

/** Is buf[0, end) a start line, or one meant as one (garbledRequest, garbledStatus)? */
function isStartLine(buf: Buffer, end: number): boolean {
  return requestLine(buf, end) || statusLine(buf, end) >= 0 || garbledRequest(buf, end) >= 0 || garbledStatus(buf, end);
}

// What mayBeStartLine says (and the parser's headJudged keeps) of a head whose line has not ended, besides a token's length
/** "HTTP/", or a token and whitespace, begin it: only its line's end tells more */
const START_BEGUN = -1;
/** it cannot grow into a start line */
const NO_START = -2;
/** (headJudged only) its line ended, and is a start line */
const START_LINE = -3;

/**
 * Could buf[0, n), no whole line yet, still grow into a start line (isStartLine)? START_BEGUN when "HTTP/" or a token and
 * whitespace begin it; n when it is a token so far (the bytes after it will tell); NO_START when it cannot. `from`: the
 * length of the token it was found to begin with before (0 at first), whose bytes are not looked at again.
 * why laxer than walkRequestLine: a token and whitespace may still end as a start line meant as one (garbledRequest)
 */
function mayBeStartLine(buf: Buffer, from: number, n: number): number {
  if (n >= HTTP_SLASH.length && beginsWith(buf, n, HTTP_SLASH)) return START_BEGUN;
  const i = tokenEnd(buf, from, n);
  if (i === n) return n;
  return i > 0 && isSplit(buf[i]) ? START_BEGUN : NO_START;
}

/**
 * Where a resync in buf may find a message start (resyncAt) now that bytes from `old` on came, the first `old` having held
 * none; -1 when none can have come. A start line holds no LF but its last byte, so one that ends past `old` begins after
 * the last LF before `old` (searched from that LF, which START_SCAN looks behind for). Without a new LF, only a status
 * line's start can have come, at a whitespace after its code.
 */
function resyncFrom(buf: Buffer, old: number): number {
  if (buf.indexOf(0x0a, old) >= 0) return Math.max(buf.lastIndexOf(0x0a, old - 1), 0);
  for (let e = old; e < buf.length; e++) {
    const s = isSplit(buf[e]) ? statusStartBefore(buf, e) : -1;
    if (s >= 0) return s;
  }
  return -1;
}

/** Where the status line's start ("HTTP/1.x", whitespace, three digits) that the whitespace at buf[e] ends begins; -1: none. */
function statusStartBefore(buf: Buffer, e: number): number {
  if (e < 12 || !isDigit(buf[e - 1]) || !isDigit(buf[e - 2]) || !isDigit(buf[e - 3]) || !isSplit(buf[e - 4])) return -1;
  let v = e - 4;
  while (v > 8 && isSplit(buf[v - 1])) v--;
  return versionAt(buf, v - 8) && buf[v - 3] === 0x31 && (buf[v - 1] === 0x30 || buf[v - 1] === 0x31) ? v - 8 : -1;
}

/**
 * Where the first message start (START_SCAN) in buf from `from` is; -1 when there is none. A token that ends in a known
 * method, not a method itself, is a body's tail glued to the next request ("okHEAD /big HTTP/1.1": bodies do not end in a
 * newline): the request starts at its method.
 */
function resyncAt(buf: Buffer, from: number): number {
  START_SCAN.lastIndex = 0;
  const m = START_SCAN.exec(buf.toString('latin1', from));
  if (!m) return -1;
  const at = from + m.index;
  const word = buf.toString('latin1', at, tokenEnd(buf, at, buf.length));
  if (KNOWN_METHODS.has(word) || ENDING_IN_KNOWN.has(word)) return at;
  let glued = 0;
  for (const method of METHODS) if (method.length > glued && method.length < word.length && word.endsWith(method)) glued = method.length;
  return glued === 0 ? at : at + word.length - glued;
}

/**
 * The message a start line buf[0, end) begins; null when it is neither a request nor a status line, nor one meant as one.
 * One meant as one is returned malformed: a request with its method and no path, a response with no status.
 */
function startLine(buf: Buffer, end: number, ts: number): HttpMessage | null {
  if (requestLine(buf, end)) {
    const method = sharedLatin1(buf, 0, LINE.methodEnd);
    const version = sharedLatin1(buf, LINE.version, LINE.version + 8);
    return { kind: 'request', method, path: buf.toString('latin1', LINE.targetStart, LINE.targetEnd), headers: [], body: EMPTY, bodyTruncated: false, ts, version };
  }
  const status = statusLine(buf, end);
  if (status >= 0) {
    const reason = sharedLatin1(buf, LINE.reason, end);
    return { kind: 'response', status, headers: [], body: EMPTY, bodyTruncated: false, ts, version: sharedLatin1(buf, 0, 8), reason };
  }
  const m = garbledRequest(buf, end);
  if (m >= 0) {
    return { kind: 'request', method: sharedLatin1(buf, 0, m), headers: [], body: EMPTY, bodyTruncated: false, ts,
      malformed: 'its request line is none (a method, a target and HTTP/d.d, split by spaces): its target and version were not read' };
  }
  if (!garbledStatus(buf, end)) return null;
  return { kind: 'response', headers: [], body: EMPTY, bodyTruncated: false, ts,
    malformed: 'its status line is none (HTTP/d.d, a three-digit status code and a reason, split by spaces): its status was not read' };
}

// (the byte counts of 'body-length' and 'chunk-data' are the parser's `left`)
// ('connect': a request side after a CONNECT, holding what follows until the answer says tunnel or not)
// ('head-rest': the rest of a head cut at MAX_HEAD, skipped up to its empty line; then `afterHead`)
type State = 'start' | 'resync' | 'body-length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'body-close' | 'tunnel' | 'connect' | 'head-rest';

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
  /** the store buf is a view of when pushes were joined (append), its bytes used up to storeEnd; null: none */
  private store: Buffer | null = null;
  private storeEnd = 0;
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
  /** of the head read last: its length up to the end of its empty line (of one not read whole: of the lines read) */
  private headLength = 0;
  /** of the head read last: it was read whole (not cut at MAX_HEAD), so its framing headers say where its message ends */
  private headWhole = true;
  /** of a head whose end has not arrived: how many of its bytes were searched for the end; 0 otherwise */
  private headSearched = 0;
  /**
   * of a head whose end has not arrived: how far its start line was judged (plausibleStart): START_LINE, START_BEGUN, or
   * the length of the token it begins with; 0 otherwise
   */
  private headJudged = 0;
  /** in 'resync': how many of buf's bytes were searched for a message start, none found (0: none yet) */
  private resyncSearched = 0;
  /** in 'head-rest': the state after the head (its start line decides it: 'tunnel', 'connect' or 'start') */
  private afterHead: State = 'start';
  // (a field's lines combine into one list, their values joined by commas in order: RFC 9110 §5.3)
  /** of the head parsed last: its Content-Length lines' values as one list, null when none */
  private contentLength: string | null = null;
  /** of the head parsed last: its Transfer-Encoding lines' values as one list, null when none */
  private transferEncoding: string | null = null;
  // Of the head being read, for a folded line (obsolete line folding continues the last header's value):
  /** its header lines so far, kept or not */
  private headerLines = 0;
  /** the last header line's kept name and value; null when it was not kept */
  private lastPair: [string, string] | null = null;
  /** whether the last header line was a Content-Length or Transfer-Encoding (or NOT_FRAMING) */
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
    this.buf = this.buf.length === 0 ? chunk : this.append(chunk);
    this.lastTs = ts;
    let progressed = true;
    while (progressed && this.buf.length > 0) progressed = this.step(ts);
    // why: never keep a view into the caller's chunk (it may be a slice of a large reader buffer), nor a few bytes' view
    // into a large store
    const b = this.buf;
    const store = this.store;
    if (store !== null && b.length > 0 && b.buffer === store.buffer) {
      if (b.length * 4 < store.length) {
        this.buf = Buffer.from(b);
        this.store = null;
      }
    } else {
      this.store = null;
      if (b.length > 0 && b.buffer === chunk.buffer) this.buf = Buffer.from(b);
    }
    return this.completed();
  }

  /**
   * buf with `chunk` after it: written into the room after buf in its store when buf ends where the store's bytes do,
   * else into a new store with as much room again.
   * why: a head (or a resync's tail) that grows a few bytes a push was copied whole on each one
   */
  private append(chunk: Buffer): Buffer {
    const buf = this.buf;
    const store = this.store;
    if (store !== null && buf.buffer === store.buffer && buf.byteOffset + buf.length === store.byteOffset + this.storeEnd &&
      this.storeEnd + chunk.length <= store.length) {
      chunk.copy(store, this.storeEnd);
      this.storeEnd += chunk.length;
      return store.subarray(buf.byteOffset - store.byteOffset, this.storeEnd);
    }
    const length = buf.length + chunk.length;
    // (not from the shared pool: a store's buffer is its own, so a view of it is known by its buffer)
    const next = Buffer.allocUnsafeSlow(2 * length);
    buf.copy(next);
    chunk.copy(next, buf.length);
    this.store = next;
    this.storeEnd = length;
    return next.subarray(0, length);
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
    this.headJudged = 0;
    this.resyncSearched = 0;
    this.state = 'resync';
    return this.completed();
  }

  /**
   * The stream ended, by its FIN or (`reset`) by a reset. A response delimited by the connection's close is complete at
   * a FIN; a message whose body's end had not come (a Content-Length or chunked body cut short, or a close-delimited one
   * at a reset: RFC 9112 §8 takes such an end for an error) is returned as far as it came, its body truncated and
   * `unfinished` saying why, as tshark lists it: its head came.
   */
  end(reset = false): HttpMessage[] {
    if (this.msg) {
      if (reset || !this.readsToClose()) {
        this.msg.bodyTruncated = true;
        this.msg.unfinished = `the connection ${reset ? 'was reset' : 'closed'} before its body's end`;
      }
      this.emit(this.finish());
      this.state = 'start';
    }
    return this.completed();
  }

  /** Is the message being read a response whose body runs to the connection's close (it has no length)? */
  readsToClose(): boolean {
    return this.msg !== null && this.state === 'body-close';
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
    // (still skipping the rest of its CONNECT's head: none of those bytes are the tunnel's)
    const b = this.state === 'connect' ? this.buf : EMPTY;
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
    if (this.state === 'head-rest' && this.afterHead === 'connect') this.afterHead = 'start';
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
        // why from where the last search could not go on (resyncFrom), not from the start: bytes that come a few at a
        // time were each searched again on every push
        const from = this.resyncSearched === 0 ? 0 : resyncFrom(this.buf, this.resyncSearched);
        const at = from < 0 ? -1 : resyncAt(this.buf, from);
        if (at < 0) {
          // keep a tail long enough to hold the beginning of a start line split across chunks
          if (this.buf.length > RESYNC_TAIL) this.buf = this.buf.subarray(this.buf.length - RESYNC_TAIL);
          this.resyncSearched = this.buf.length;
          return false;
        }
        this.buf = this.buf.subarray(at);
        this.resyncSearched = 0;
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
        // why: a head that began in an earlier chunk is read once its end is here (or it is past MAX_HEAD); until then
        // only the new bytes are searched for the end (a large head in many segments stays linear)
        const waiting = this.headSearched > 0 && this.buf.length < MAX_HEAD && headEnd(this.buf, this.headSearched) < 0;
        const msg = waiting ? undefined : this.readHead(this.buf, this.headTs);
        if (msg === undefined && this.plausibleStart()) {
          this.headSearched = this.buf.length;
          return false;
        }
        this.headTs = null;
        this.headSearched = 0;
        this.headJudged = 0;
        if (!msg) {
          // (no message starts here: bytes between messages, or none begun yet)
          this.state = 'resync';
          this.buf = this.buf.subarray(1);
          return true;
        }
        this.state = this.bodyState(msg);
        // (a message whose end is not known is followed by a search for the next start from the LF that ends what of it
        // was read: the search takes a line's start for one; so is the rest of a head cut short, for its empty line)
        const next = this.state === 'resync' || this.state === 'head-rest' ? this.headLength - 1 : this.headLength;
        this.buf = next === this.buf.length ? EMPTY : this.buf.subarray(next);
        this.begin(msg, this.state === 'body-length' ? this.left : -1);
        // (a head with no body is the whole message; so is an answer that opens a tunnel, CONNECT's or 101's, and one
        // whose end is not known)
        if (this.state !== 'body-length' && this.state !== 'chunk-size' && this.state !== 'body-close') this.emit(this.finish());
        return true;
      }
      case 'head-rest': {
        // (from the LF before the line the head was cut at: the empty line may come first; two bytes kept between pushes
        // let headEnd see one split across them)
        const e = headEnd(this.buf, 1);
        if (e < 0) {
          if (this.buf.length > 2) this.buf = this.buf.subarray(this.buf.length - 2);
          return false;
        }
        this.buf = e === this.buf.length ? EMPTY : this.buf.subarray(e);
        this.state = this.afterHead;
        if (this.state === 'tunnel') this.tunneled = EMPTY;
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

  /** A chunked body's framing broke off: its message is returned as read so far, and the next one looked for. */
  private toResync(): boolean {
    if (this.msg) {
      this.msg.bodyTruncated = true;
      markMalformed(this.msg, 'a chunk size line, or the CRLF after a chunk, is none: the rest of its body was not read');
      this.emit(this.finish());
    }
    this.state = 'resync';
    return true;
  }

  /**
   * Could the buffered bytes (a head whose end has not come) still begin with a start line? Judged on from where the last
   * push left it (headJudged; headSearched: the bytes it saw), so that a head that comes a few bytes at a time has each
   * byte looked at once.
   */
  private plausibleStart(): boolean {
    const buf = this.buf;
    if (this.headJudged === START_LINE) return true;
    const nl = buf.indexOf(0x0a, this.headSearched);
    if (nl >= 0) {
      this.headJudged = START_LINE;
      return isStartLine(buf, lineStop(buf, 0, nl));
    }
    if (this.headJudged !== START_BEGUN) this.headJudged = mayBeStartLine(buf, this.headJudged, buf.length);
    return this.headJudged !== NO_START;
  }

  /**
   * The head at the start of buf, read line by line from its bytes in one pass that also finds its end (the
   * first empty line; headLength then says where the body starts). null when it is not an HTTP head (its first line
   * is no start line, nor one meant as one), undefined while its end has not arrived within MAX_HEAD; one that runs
   * past MAX_HEAD is its message as read up to there (headWhole false). A path is its own string; header names and
   * short values are shared (sharedLatin1).
   */
  private readHead(buf: Buffer, ts: number): HttpMessage | null | undefined {
    const startLf = lineEnd(buf, 0, buf.length);
    if (startLf >= MAX_HEAD) return null;
    if (startLf === buf.length) return undefined;
    const msg = startLine(buf, lineStop(buf, 0, startLf), ts);
    if (msg === null) return null;
    this.headWhole = true;
    this.contentLength = null;
    this.transferEncoding = null;
    this.headerLines = 0;
    this.lastPair = null;
    this.lastFraming = NOT_FRAMING;
    let skipped = 0;
    for (let at = startLf + 1; ;) {
      const lf = lineEnd(buf, at, buf.length);
      if (lf >= MAX_HEAD) {
        // (a server answers such a head 431 and reads none of it; its start line came first: the message is that)
        markMalformed(msg, `its head runs past ${MAX_HEAD / 1024} KiB: its header lines from there and its body were not read`);
        this.headWhole = false;
        this.headLength = at;
        return msg;
      }
      if (lf === buf.length) return undefined;
      const eol = lineStop(buf, at, lf);
      if (eol === at) {
        this.headLength = lf + 1;
        if (skipped > 0) markMalformed(msg, `${skipped} of its header lines ${skipped === 1 ? 'is' : 'are'} none (no colon, or no name): not read`);
        return msg;
      }
      if (!this.headerLine(msg, buf, at, eol)) skipped++;
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
    this.lastFraming = nameIs(buf, nameStart, nameEnd, 'content-length') ? CONTENT_LENGTH
      : nameIs(buf, nameStart, nameEnd, 'transfer-encoding') ? TRANSFER_ENCODING : NOT_FRAMING;
    const keep = this.keeps(buf, nameStart, nameEnd);
    this.lastPair = null;
    if (!keep && this.lastFraming === NOT_FRAMING) return true;
    const value = sharedTrimmed(buf, colon + 1, end);
    if (this.lastFraming === CONTENT_LENGTH) this.contentLength = listed(this.contentLength, value);
    else if (this.lastFraming === TRANSFER_ENCODING) this.transferEncoding = listed(this.transferEncoding, value);
    if (keep) msg.headers.push(this.lastPair = [sharedLatin1(buf, nameStart, nameEnd), value]);
    return true;
  }

  /** Is the header named buf[start, end) kept? */
  private keeps(buf: Buffer, start: number, end: number): boolean {
    if (this.keepHeaders === null) return true;
    for (let i = 0; i < this.keepHeaders.length; i++) if (nameIs(buf, start, end, this.keepHeaders[i]!)) return true;
    return false;
  }

  /**
   * The state after msg's head; for a Content-Length body, `left` is its length. 'resync' when where the message ends is
   * not known (its head was not read whole and its framing headers may be among the lines not read, its length is no
   * length, or a response with no status has none). A head not read whole whose start line decides what follows (a
   * tunnel, an upgrade, no body) is followed by the rest of the head, skipped ('head-rest'), then that.
   */
  private bodyState(msg: HttpMessage): State {
    const known = this.framedByStartLine(msg);
    if (known !== null) {
      if (!this.headWhole) {
        this.afterHead = known;
        return 'head-rest';
      }
      if (known === 'tunnel') this.tunneled = EMPTY;
      return known;
    }
    if (!this.headWhole) return 'resync';
    // (chunked as the last coding of the list, whatever the lines it came in)
    const te = this.transferEncoding ?? '';
    if (te && /(^|,)\s*chunked\s*$/i.test(te)) return 'chunk-size';
    if (this.contentLength !== null) {
      const n = contentLength(this.contentLength);
      if (n === null) {
        // why not a guess (Number() read "0x10" as 16 and "" as 0, a server refuses these): RFC 9112 §6.3 makes such a
        // message's framing an unrecoverable error, so where it ends is not known; the next message is looked for instead
        const value = this.contentLength.length > 40 ? `${this.contentLength.slice(0, 40)}...` : this.contentLength;
        markMalformed(msg, `its Content-Length "${value}" is not one length (digits, the same in every value): its body was not read`);
        return 'resync';
      }
      this.left = n;
      return n === 0 ? 'start' : 'body-length';
    }
    // a request without length has no body; a response without length runs to connection close (one with no status: it
    // may have been one without a body)
    return msg.kind === 'request' ? 'start' : msg.status === undefined ? 'resync' : 'body-close';
  }

  /**
   * The state after msg's head when its method or status decides it, whatever its headers say; null otherwise. A response
   * that is not interim answers its request here (the next one's method is then known).
   */
  private framedByStartLine(msg: HttpMessage): State | null {
    if (msg.kind === 'request') return msg.method === 'CONNECT' ? 'connect' : null;
    const status = msg.status ?? 0;
    // why: interim responses (100 Continue, 103 Early Hints) do not answer the pending request; after 101 the connection
    // speaks the protocol it switched to, whose bytes are kept for takeTunnel (HTTP/2's, after h2c)
    if (status >= 100 && status < 200) return status === 101 ? 'tunnel' : 'start';
    const method = this.answering();
    if (method === 'HEAD' || status === 204 || status === 304) return 'start';
    return method === 'CONNECT' && status >= 200 && status < 300 ? 'tunnel' : null;
  }
}

/** Says what of msg could not be read (HttpMessage.malformed), after what was said of it before. */
function markMalformed(msg: HttpMessage, what: string): void {
  msg.malformed = msg.malformed === undefined ? what : `${msg.malformed}; ${what}`;
}

/** A field's list so far (null: none) with one more line's value (RFC 9110 §5.3: joined by a comma). */
function listed(list: string | null, value: string): string {
  return list === null ? value : `${list}, ${value}`;
}

/**
 * The length a Content-Length's value (its lines' values as one list) gives: digits only (RFC 9110 §8.6), a value
 * repeated any number of times being one ("5, 5"); null when a member is not digits or two differ.
 */
function contentLength(value: string): number | null {
  let n = -1;
  for (let at = 0; ;) {
    while (value.charCodeAt(at) === 0x20 || value.charCodeAt(at) === 0x09) at++;
    const start = at;
    let k = 0;
    for (let c = value.charCodeAt(at); c >= 0x30 && c <= 0x39; c = value.charCodeAt(++at)) k = k * 10 + c - 0x30;
    // (15 digits: a length past them, petabytes, would not be counted exactly)
    if (at === start || at - start > 15 || (n >= 0 && k !== n)) return null;
    n = k;
    while (value.charCodeAt(at) === 0x20 || value.charCodeAt(at) === 0x09) at++;
    if (at === value.length) return n;
    if (value.charCodeAt(at++) !== 0x2c) return null;
  }
}
