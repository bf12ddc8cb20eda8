// Secret redaction for exports. Header values of Authorization, Proxy-Authorization, Cookie and Set-Cookie are
// secrets. In packet bytes (plain HTTP/1 payloads and decrypted HTTP/1 records) each value byte becomes 'x',
// keeping every length and TCP sequence number intact so Wireshark still dissects the stream; in HAR the value
// becomes "[redacted]". HTTP/1 is scanned as a stream per direction (Http1State carries an unfinished header
// line into the next packet; redact-stream.ts orders packets by TCP sequence number or record offset), so a
// name or value split across packets is still found; where the position in the stream is unknown
// (out-of-order or retransmitted data without a checkpoint, bytes missing from the capture) the scan starts
// conservatively, see resyncState. HTTP/2 header blocks, in decrypted records and in cleartext h2c on the wire,
// are handled by redact-h2.ts. Header values in recorded process command lines are masked too.
// Known limits: TCP in IP fragments after the first is not scanned; an h2c connection is recognised by a segment
// that begins with the whole client preface, by the server's 101 to h2c, or (taken up in the middle) by segments
// that read as whole frames; bodies are not redacted (only header values).

export const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];
export const REDACTED = '[redacted]';
/** The byte a redacted HTTP/1 value byte becomes. */
export const MASK = 0x78; // 'x'

/** The secret names as lowercase byte codes, matched byte by byte while a name streams in. */
const SECRET_CODES = SECRET_HEADERS.map((n) => [...Buffer.from(n, 'latin1')]);
const ALL_CANDIDATES = (1 << SECRET_HEADERS.length) - 1;

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
  /** Reading what may be a header name (`nameLen` bytes so far, still matching the secret names in `candidates`). */
  Name,
  /** In the value of a secret header: mask up to the end of the line. */
  Secret,
  /** In any other line: skip to its end. */
  Other,
  /** Position in the line unknown: mask header-value bytes up to the end of the line (see resyncState). */
  Unknown,
}

/** Where one direction's HTTP/1 scan stands between two packets. Small; a stored state is never changed (scans work on copies). */
export interface Http1State {
  mode: LineMode;
  /** Mode Name: bytes of the name so far, and a bit per secret name it still matches. */
  nameLen: number;
  candidates: number;
  /** Mode Name: whitespace followed the name; only more whitespace or the colon may come. */
  nameWs: boolean;
  /** Mode Secret: still skipping the optional whitespace after the colon (not masked, as before). */
  leadingWs: boolean;
  /** The last header line was a secret one: an obs-fold continuation line (leading SP/HT) belongs to it. */
  foldSecret: boolean;
}

export function lineStartState(): Http1State {
  return { mode: LineMode.Start, nameLen: 0, candidates: 0, nameWs: false, leadingWs: false, foldSecret: false };
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
  return { ...lineStartState(), mode: LineMode.Unknown, foldSecret: true };
}

function isStartLinePrefix(text: string): boolean {
  if (STATUS_LINE_PREFIX.test(text)) return true;
  const method = text.split(' ', 1)[0]!;
  return text.includes(' ') ? METHODS.includes(method) && REQUEST_LINE_PREFIX.test(text) : METHODS.some((m) => m.startsWith(text));
}

/** One byte of a possible header name (whitespace before the colon is tolerated, as the old per-packet scan did). */
function nameByte(st: Http1State, b: number): void {
  if (b === COLON) {
    const secret = SECRET_CODES.some((code, k) => (st.candidates >> k) & 1 && code.length === st.nameLen);
    st.mode = secret ? LineMode.Secret : LineMode.Other;
    st.leadingWs = true;
    st.foldSecret = secret;
    return;
  }
  if (b === LF) {
    st.mode = LineMode.Start;
    st.foldSecret = false;
    return;
  }
  if (b === SP || b === HT) {
    st.nameWs = true;
    return;
  }
  const lower = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
  let left = st.nameWs ? 0 : st.candidates;
  for (let k = 0; k < SECRET_CODES.length; k++) if ((left >> k) & 1 && SECRET_CODES[k]![st.nameLen] !== lower) left &= ~(1 << k);
  st.nameLen++;
  st.candidates = left;
  if (left === 0) {
    st.mode = LineMode.Other;
    st.foldSecret = false;
  }
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
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    switch (st.mode) {
      case LineMode.Start:
        if (b === SP || b === HT) {
          st.mode = st.foldSecret ? LineMode.Secret : LineMode.Other;
          st.leadingWs = true;
          i++;
        } else if (b === LF) {
          st.foldSecret = false;
          i++;
        } else {
          st.mode = LineMode.Name;
          st.nameLen = 0;
          st.candidates = ALL_CANDIDATES;
          st.nameWs = false;
        }
        break;
      case LineMode.Name:
        nameByte(st, b);
        i++;
        break;
      case LineMode.Secret:
        if (b === LF) st.mode = LineMode.Start;
        else if (st.leadingWs && (b === SP || b === HT)) { /* optional whitespace stays */ }
        else if (b !== CR) {
          st.leadingWs = false;
          out ??= Buffer.from(buf);
          out[i] = MASK;
        }
        i++;
        break;
      case LineMode.Unknown:
        if (b === LF) st.mode = LineMode.Start;
        else if (b === CR) { /* a line end follows */ }
        else if (isValueByte(b)) {
          out ??= Buffer.from(buf);
          out[i] = MASK;
        } else {
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

/**
 * Masks secrets inside the JSON text of a Tapscope record: header values anywhere, and a process record's command line's
 * credentials (see redactCommandLine); null when there are none.
 */
export function redactRecordText(data: Buffer): Buffer | null {
  let text = data.toString('utf8');
  let changed = false;
  // (header values first: an option rule must not take a header's name for an option's value, `-HAuthorization: ...`)
  JSON_HEADER.lastIndex = 0;
  if (JSON_HEADER.test(text)) {
    text = text.replace(JSON_HEADER, (_m, name: string, sep: string, value: string) => `${name}${sep}${value.replace(/\\u[0-9a-fA-F]{4}|\\.|[^]/g, 'x')}`);
    changed = true;
  }
  // (a process record's command line, read as the JSON it is: its arguments' ends are its spaces)
  if (text.includes('"t":"proc"') && text.includes('"cmdline"')) {
    try {
      // (a custom block's data may end in the zeros that pad it to 4 bytes)
      const rec = JSON.parse(text.replace(/\0+$/, '')) as { t?: unknown; cmdline?: unknown };
      const masked = rec.t === 'proc' && typeof rec.cmdline === 'string' ? redactCommandLine(rec.cmdline) : null;
      if (masked !== null) {
        rec.cmdline = masked;
        text = JSON.stringify(rec);
        changed = true;
      }
    } catch {
      // (not JSON: the header values above are masked)
    }
  }
  return changed ? Buffer.from(text) : null;
}

// why: credentials are given on command lines as options as often as as headers: curl's `-b/--cookie`, `-u/--user`,
// `--oauth2-bearer`, wget's `--password=`, mysql's `-pSECRET`, redis-cli's `-a`, sshpass's `-p`, Java's
// `-Dx.password=`, and a URL's `user:password@` or `token@`. The packets' copies are masked; the process record next to
// them must not hand them over. Long options are taken from any program; short ones from the program they belong to.
// (a value is not the next option: curl blanks a password it was given with spaces, leaving `-u      -b ...`)
const LONG_SECRET = /(^|\s)(--(?:cookie|user|proxy-user|oauth2-bearer|pass|[a-z-]*(?:password|passwd|token|secret|api-?key)))(=|\s+)(?!-[a-zA-Z])(\S+)/gi;
const JAVA_SECRET = /(^|\s)(-D[\w.-]*(?:password|passwd|secret|token)[\w.-]*=)(\S+)/gi;
/** Short options that take a credential, by program; `attached`: only written joined to its value (mysql's -pSECRET) */
const SHORT_SECRETS: Record<string, { letters: string; flags: string; attached?: boolean }> = {
  // (curl: a cluster of its flags without a value may come first, as in -sb; a flag that takes one ends the cluster)
  curl: { letters: 'buU', flags: 'sSvkLiIfgGNOjJnqZ0123456' },
  mysql: { letters: 'p', flags: '', attached: true },
  mysqldump: { letters: 'p', flags: '', attached: true },
  mariadb: { letters: 'p', flags: '', attached: true },
  'redis-cli': { letters: 'a', flags: '' },
  sshpass: { letters: 'p', flags: '' },
};
/** The regex of each program's short options above, made once */
const SHORT_SECRET = new Map(Object.entries(SHORT_SECRETS).map(([program, o]) => [
  program, new RegExp(`(^|\\s)(-[${o.flags}]*[${o.letters}])(${o.attached ? '' : '\\s+|'}(?=\\S))(?!-[a-zA-Z])(\\S+)`, 'g'),
]));
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*:)?([^\s/@]+)@/gi;

/** The command line with the credentials it gives as options or in URLs masked ("x" for each character); null when none. */
export function redactCommandLine(cmd: string): string | null {
  const mask = (v: string): string => 'x'.repeat(v.length);
  // (user:password@: the password; token@, no colon: the token)
  let out = cmd.replace(URL_USERINFO, (_m, scheme: string, user: string | undefined, secret: string) => `${scheme}${user ?? ''}${mask(secret)}@`);
  out = out.replace(LONG_SECRET, (_m, pre: string, opt: string, sep: string, value: string) => `${pre}${opt}${sep}${mask(value)}`);
  out = out.replace(JAVA_SECRET, (_m, pre: string, opt: string, value: string) => `${pre}${opt}${mask(value)}`);
  const program = /^\S*/.exec(out)![0].split('/').pop() ?? '';
  const short = SHORT_SECRET.get(program);
  if (short) out = out.replace(short, (_m, pre: string, opt: string, sep: string, value: string) => `${pre}${opt}${sep}${mask(value)}`);
  return out === cmd ? null : out;
}

/** Masks the secret header values in a buffer that belongs to no stream we can follow. */
export function resyncRedact(buf: Buffer): Buffer | null {
  return scanHttp1(resyncState(buf), buf);
}

/** A run of text at the end of bytes read by redactUnplaced is masked from this long (shorter ones end binary bytes). */
const TAIL_MIN = 8;

/**
 * Masks the secret header values in bytes that may carry HTTP somewhere after headers not read (what a tunnel carries
 * that is not decoded here: where its HTTP begins is not known). Secret header lines are masked wherever a line starts.
 * why the rest: the HTTP bytes may begin with the rest of a secret header whose start was in an earlier packet, which
 * is text that no line end comes before: text after a byte of the headers, up to a CRLF, or to the end when at least
 * TAIL_MIN long (a value running on into the next packet). Text that follows a line end is the scan's.
 */
export function redactUnplaced(buf: Buffer): Buffer | null {
  let out = scanHttp1(lineStartState(), buf);
  // (where the run of header-value bytes being read began)
  let run = 0;
  for (let i = 0; i <= buf.length; i++) {
    if (i < buf.length && isValueByte(buf[i]!)) continue;
    const unplaced = run === 0 || buf[run - 1] !== LF;
    const ends = i === buf.length ? i - run >= TAIL_MIN : buf[i] === CR && buf[i + 1] === LF;
    if (unplaced && ends && i > run) {
      out ??= Buffer.from(buf);
      out.fill(MASK, run, i);
    }
    run = i + 1;
  }
  return out;
}
