// Secret redaction for exports. Header values of Authorization, Proxy-Authorization, Cookie and Set-Cookie are
// secrets. In packet bytes (plain HTTP/1 payloads and decrypted HTTP/1 records) each value byte becomes 'x',
// keeping every length and TCP sequence number intact so Wireshark still dissects the stream; in HAR the value
// becomes "[redacted]". HTTP/1 is scanned as a stream per direction (Http1State carries an unfinished header
// line into the next packet; redact-stream.ts orders packets by TCP sequence number or record offset), so a
// name or value split across packets is still found; where the position in the stream is unknown
// (out-of-order or retransmitted data without a checkpoint, bytes missing from the capture) the scan starts
// conservatively, see resyncState. HTTP/2 header blocks, in decrypted records and in cleartext h2c on the wire,
// are handled by redact-h2.ts. Header values in recorded process command lines are masked too.
// Known limits: TCP in IP fragments after the first is not scanned; an h2c connection is recognised only by a
// segment that begins with the whole client preface; bodies are not redacted (only header values).

export const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];
export const REDACTED = '[redacted]';
/** The byte a redacted HTTP/1 value byte becomes. */
export const MASK = 0x78; // 'x'

const LONGEST_SECRET = Math.max(...SECRET_HEADERS.map((n) => n.length));
// why: whitespace between a name and its colon is tolerated (as the old per-packet scan did); a longer
// run of name bytes cannot be a secret name, and stopping there keeps the carried state small.
const NAME_CAP = LONGEST_SECRET + 8;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

export function isSecretHeader(name: string): boolean {
  return SECRET_HEADERS.includes(name.toLowerCase());
}

export function redactHeaders(headers: [string, string][]): [string, string][] {
  return headers.map(([k, v]) => [k, isSecretHeader(k) ? REDACTED : v]);
}

export const enum LineMode {
  /** At the first byte of a line. */
  Start,
  /** Reading what may be a header name (`name` holds it so far). */
  Name,
  /** In the value of a secret header: mask up to the end of the line. */
  Secret,
  /** In any other line: skip to its end. */
  Other,
  /** Position in the line unknown: mask header-value bytes up to the end of the line (see resyncState). */
  Unknown,
}

/** Where one direction's HTTP/1 scan stands between two packets. Small and copyable (checkpoints keep copies). */
export interface Http1State {
  mode: LineMode;
  /** Lowercased name bytes so far (mode Name). */
  name: string;
  /** Mode Secret: still skipping the optional whitespace after the colon (not masked, as before). */
  leadingWs: boolean;
  /** The last header line was a secret one: an obs-fold continuation line (leading SP/HT) belongs to it. */
  foldSecret: boolean;
}

export function lineStartState(): Http1State {
  return { mode: LineMode.Start, name: '', leadingWs: false, foldSecret: false };
}

export function copyState(s: Http1State): Http1State {
  return { ...s };
}

// why: an HTTP message start is the one thing recognisable at an unknown position; anything else may be
// the tail of a secret header whose beginning we did not see.
const START_LINE = /^(?:[A-Z][A-Z-]* [^ \r\n]+ HTTP\/\d(?:\.\d)?\r?\n|HTTP\/\d(?:\.\d)? \d{3}[ \r\n])/;
// why: a first packet may end inside its request line (a client writing the line in pieces); a request line
// begun with a known method is taken as one too.
const REQUEST_LINE_PREFIX = /^[A-Z]+ [^ \r\n]*(?: [A-Z/\d.]*\r?)?$/;
const STATUS_LINE_PREFIX = /^H(?:T(?:T(?:P(?:\/[\d.]*(?: [^\r\n]*\r?)?)?)?)?)?$/;
const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PRI'];

/**
 * The state to scan `buf` with when its position in the stream is unknown (first bytes of a direction seen
 * mid-connection, out-of-order or retransmitted data without a checkpoint, after bytes missing from the
 * capture). It starts at a line start only when `buf` begins with a request or status line; otherwise the
 * bytes up to the first line end may be the rest of a secret header, so they are masked while they could be
 * header-value bytes (a control byte other than HT ends that, so binary and TLS bytes are left alone), and a
 * folded line right after is treated as part of a secret header too.
 */
export function resyncState(buf: Buffer): Http1State {
  const head = buf.toString('latin1', 0, Math.min(buf.length, 256));
  if (START_LINE.test(head) || (buf.length === head.length && isStartLinePrefix(head))) return lineStartState();
  return { mode: LineMode.Unknown, name: '', leadingWs: false, foldSecret: true };
}

function isStartLinePrefix(text: string): boolean {
  if (STATUS_LINE_PREFIX.test(text)) return true;
  const method = text.split(' ', 1)[0]!;
  return text.includes(' ') ? METHODS.includes(method) && REQUEST_LINE_PREFIX.test(text) : METHODS.some((m) => m.startsWith(text));
}

function isValueByte(b: number): boolean {
  return b === HT || (b >= SP && b !== 0x7f);
}

/**
 * Scans the next bytes of a direction from `st` (updated in place) and masks secret header value bytes.
 * Returns a masked copy of `buf`, or null when nothing was masked.
 */
export function scanHttp1(st: Http1State, buf: Buffer): Buffer | null {
  let out: Buffer | null = null;
  const mask = (i: number): void => {
    out ??= Buffer.from(buf);
    out[i] = MASK;
  };
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    switch (st.mode) {
      case LineMode.Start:
        if (b === SP || b === HT) {
          st.mode = st.foldSecret ? LineMode.Secret : LineMode.Other;
          st.leadingWs = true;
        } else if (b === LF) {
          st.foldSecret = false;
        } else {
          st.mode = LineMode.Name;
          st.name = String.fromCharCode(b).toLowerCase();
        }
        i++;
        break;
      case LineMode.Name:
        if (b === COLON) {
          const secret = isSecretHeader(st.name.replace(/[ \t]+$/, ''));
          st.mode = secret ? LineMode.Secret : LineMode.Other;
          st.leadingWs = true;
          st.foldSecret = secret;
        } else if (b === LF) {
          st.mode = LineMode.Start;
          st.foldSecret = false;
        } else if (st.name.length >= NAME_CAP) {
          st.mode = LineMode.Other;
          st.foldSecret = false;
        } else {
          st.name += String.fromCharCode(b).toLowerCase();
        }
        if (st.mode !== LineMode.Name) st.name = '';
        i++;
        break;
      case LineMode.Secret:
        if (b === LF) st.mode = LineMode.Start;
        else if (st.leadingWs && (b === SP || b === HT)) { /* optional whitespace stays */ }
        else if (b !== CR) {
          st.leadingWs = false;
          mask(i);
        }
        i++;
        break;
      case LineMode.Unknown:
        if (b === LF) st.mode = LineMode.Start;
        else if (b === CR) { /* a line end follows */ }
        else if (isValueByte(b)) mask(i);
        else {
          st.mode = LineMode.Other;
          st.foldSecret = false;
        }
        i++;
        break;
      case LineMode.Other: {
        const lf = buf.indexOf(LF, i);
        if (lf < 0) return out;
        st.mode = LineMode.Start;
        i = lf + 1;
        break;
      }
    }
  }
  return out;
}

// why: a command line like `curl -H 'Authorization: Bearer ...'` carries a header value too; in a JSON string
// its end is not known (arguments are joined by spaces), so the rest of the string is masked, escapes included.
const JSON_HEADER = /(authorization|proxy-authorization|cookie|set-cookie)([ \t]*:[ \t]*)((?:\\u[0-9a-fA-F]{4}|\\.|[^"\\])*)/gi;

/** Masks secret header values inside the JSON text of a Tapscope record (process command lines); null when none. */
export function redactRecordText(data: Buffer): Buffer | null {
  const text = data.toString('utf8');
  JSON_HEADER.lastIndex = 0;
  if (!JSON_HEADER.test(text)) return null;
  return Buffer.from(text.replace(JSON_HEADER, (_m, name: string, sep: string, value: string) => `${name}${sep}${value.replace(/\\u[0-9a-fA-F]{4}|\\.|[^]/g, 'x')}`));
}

/** Masks the secret header values in a buffer that belongs to no stream we can follow. */
export function resyncRedact(buf: Buffer): Buffer | null {
  return scanHttp1(resyncState(buf), buf);
}
