// Mail, news, file transfer, directory, chat, messaging and SQL Server protocols told from a connection's first
// messages, and the ones that switch to TLS in place: SMTP (STARTTLS), IMAP (STARTTLS), POP3 (STLS), FTP (AUTH TLS),
// NNTP and ManageSieve (STARTTLS), LDAP (the StartTLS extended operation), XMPP (<starttls/>), NATS (TLS after the
// server's INFO) and SQL Server's TDS (its TLS handshake inside PRELOGIN packets). In the text protocols the server
// speaks first (its greeting names the protocol, with the client's first command telling SMTP from FTP, which both
// greet with 220); the client's upgrade command ends its text, and the server's TLS records begin at the first line
// start that is no text. In LDAP the client's first message is the StartTLS request and the server's first its
// answer, each a BER-encoded LDAPMessage. After the upgrade the connection carries TLS records, whose hellos get a
// verdict like any TLS flow's: without this, such a client's TLS was "unknown" and its library never judged.
import { INCOMPLETE, dbPrelude } from './db-prelude.js';
import { proxyHeader } from './proxy-protocol.js';
import { headEnd } from './http1.js';

export type TextApp = 'smtp' | 'imap' | 'pop3' | 'ftp' | 'nntp' | 'sieve';
export type UpgradeApp = TextApp | 'ldap' | 'xmpp' | 'nats' | 'mssql';

export interface UpgradePrelude {
  app: UpgradeApp;
  /**
   * where TLS records begin in each direction's stream when the connection switched to TLS; null: it went on in
   * plain text (no upgrade, or the server refused it); 'pending': the upgrade is under way, its TLS not seen yet
   */
  tls: { client: number; server: number } | null | 'pending';
}

const CR = 0x0d;
const LF = 0x0a;
const TLS_HANDSHAKE = 0x16;
/** lines read in each direction before the upgrade: a client that has not asked for TLS by then goes on in plain text */
const MAX_LINES = 32;
const MAX_LINE = 2048;

/** The end of the text line at `at` (after its LF); 0: not a whole line of text yet; -1: not text. */
function lineEnd(buf: Buffer, at: number): number {
  const end = Math.min(buf.length, at + MAX_LINE);
  for (let i = at; i < end; i++) {
    const b = buf[i]!;
    if (b === LF) return i + 1;
    // (text: printable ASCII and UTF-8, tabs, the CR before the LF)
    if (b < 0x20 && b !== 0x09 && b !== CR) return -1;
    if (b === 0x7f) return -1;
  }
  return end === at + MAX_LINE ? -1 : 0;
}

/** The line buf[at, end) without its line break, upper case (commands are case-insensitive). */
function upperLine(buf: Buffer, at: number, end: number): string {
  let e = end;
  while (e > at && (buf[e - 1] === LF || buf[e - 1] === CR)) e--;
  return buf.toString('latin1', at, e).toUpperCase();
}

function startsWith(buf: Buffer, text: string): boolean | 'short' {
  const n = Math.min(buf.length, text.length);
  for (let i = 0; i < n; i++) if (buf[i] !== text.charCodeAt(i)) return false;
  return n < text.length ? 'short' : true;
}

const GREETINGS = [['* OK', 'imap'], ['* PREAUTH', 'imap'], ['+OK', 'pop3'], ['220', 'smtp-or-ftp'], ['200', 'nntp'], ['201', 'nntp']] as const;
const QUOTE = 0x22;

/**
 * The protocol a server's greeting names; 'smtp-or-ftp': a 220 greeting; INCOMPLETE: too few bytes to tell. NNTP
 * greets with 200 or 201; ManageSieve with its capabilities, one quoted name per line ("IMPLEMENTATION" "...").
 */
function greeting(sh: Buffer): TextApp | 'smtp-or-ftp' | typeof INCOMPLETE | null {
  const firstLine = lineEnd(sh, 0);
  if (firstLine < 0) return null;
  if (sh[0] === QUOTE) return sieveCapability(sh, firstLine);
  let short = false;
  for (const [text, app] of GREETINGS) {
    const s = startsWith(sh, text);
    if (s === true) {
      // (a reply code is three digits, then a space or a dash)
      if (text.length === 3 && sh.length > 3 && sh[3] !== 0x20 && sh[3] !== 0x2d) return null;
      return firstLine === 0 ? INCOMPLETE : app;
    }
    if (s === 'short') short = true;
  }
  return short ? INCOMPLETE : null;
}

/** A ManageSieve capability line: a quoted name of letters, digits and dashes, then a space or the line's end. */
function sieveCapability(sh: Buffer, firstLine: number): 'sieve' | typeof INCOMPLETE | null {
  const end = firstLine === 0 ? sh.length : firstLine;
  for (let i = 1; i < end; i++) {
    const b = sh[i]!;
    if (b === QUOTE) {
      if (i === 1) return null;
      // (a whole line ends in its LF, so only a line still arriving ends at the quote)
      if (i + 1 === end) return INCOMPLETE;
      const next = sh[i + 1];
      if (next !== 0x20 && next !== CR && next !== LF) return null;
      return firstLine === 0 ? INCOMPLETE : 'sieve';
    }
    const nameChar = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d;
    if (!nameChar) return null;
  }
  return INCOMPLETE;
}

const SMTP_FIRST = new Set(['EHLO', 'HELO', 'LHLO']);
const FTP_FIRST = new Set(['AUTH', 'USER', 'FEAT', 'SYST', 'OPTS', 'HOST', 'CLNT', 'NOOP']);

/** Whether a client's command (its line, upper case) asks for TLS. */
function isUpgrade(app: TextApp, line: string): boolean {
  const words = line.split(' ').filter((w) => w !== '');
  switch (app) {
    case 'smtp': return words[0] === 'STARTTLS';
    // (IMAP's commands follow a tag)
    case 'imap': return words[1] === 'STARTTLS';
    case 'pop3': return words[0] === 'STLS';
    case 'ftp': return words[0] === 'AUTH' && (words[1] === 'TLS' || words[1] === 'SSL' || words[1] === 'TLS-C');
    case 'nntp':
    case 'sieve': return words[0] === 'STARTTLS';
  }
}

/** Where the server's TLS records begin: the first line start that holds a TLS handshake record, past its text. */
function serverTlsStart(sh: Buffer): number | 'pending' | null {
  let at = 0;
  for (let n = 0; n <= MAX_LINES * 4 && at < sh.length; n++) {
    if (sh[at] === TLS_HANDSHAKE) return at;
    const e = lineEnd(sh, at);
    if (e < 0) return null;
    if (e === 0) return 'pending';
    at = e;
  }
  return at >= sh.length ? 'pending' : null;
}

/**
 * A mail or file transfer connection from its first bytes in each direction; INCOMPLETE: more are needed; null:
 * not one of these protocols.
 */
export function textPrelude(ch: Buffer, sh: Buffer | null): UpgradePrelude | typeof INCOMPLETE | null {
  if (!sh || sh.length === 0) return null;
  const greeted = greeting(sh);
  if (greeted === null) return null;
  let app: TextApp | null = greeted === 'smtp-or-ftp' || greeted === INCOMPLETE ? null : greeted;
  let at = 0;
  for (let n = 0; n < MAX_LINES; n++) {
    if (at >= ch.length) return app ? { app, tls: 'pending' } : INCOMPLETE;
    const e = lineEnd(ch, at);
    if (e < 0) return app ? { app, tls: null } : null;
    if (e === 0) return app ? { app, tls: 'pending' } : INCOMPLETE;
    const line = upperLine(ch, at, e);
    if (app === null) {
      if (greeted === INCOMPLETE) return INCOMPLETE;
      const verb = line.split(' ', 1)[0]!;
      if (SMTP_FIRST.has(verb)) app = 'smtp';
      else if (FTP_FIRST.has(verb)) app = 'ftp';
      else return null;
    }
    at = e;
    if (isUpgrade(app, line)) {
      // the client's records follow its command; text there means the server refused and the session went on plain
      if (at >= ch.length) return { app, tls: 'pending' };
      if (ch[at] !== TLS_HANDSHAKE) return { app, tls: null };
      const server = serverTlsStart(sh);
      if (server === null) return { app, tls: null };
      return { app, tls: server === 'pending' ? 'pending' : { client: at, server } };
    }
  }
  return app ? { app, tls: null } : null;
}

// ---- LDAP ----

/** LDAP messages are small; a length beyond this is no LDAP */
const MAX_LDAP_MESSAGE = 1 << 20;
const LDAP_START_TLS = '1.3.6.1.4.1.1466.20037';
const LDAP_EXTENDED_REQUEST = 0x77;
const LDAP_EXTENDED_RESPONSE = 0x78;
/** the protocol operations a client's first message may be (RFC 4511's APPLICATION tags, constructed or primitive) */
const LDAP_CLIENT_OPS = new Set([0x60, 0x42, 0x63, 0x66, 0x68, 0x4a, 0x6c, 0x6e, 0x50, LDAP_EXTENDED_REQUEST]);

interface Ber { tag: number; start: number; end: number }

/** The BER element at `at` (definite length): its tag and content; INCOMPLETE when its header is cut off; null: malformed. */
function berAt(buf: Buffer, at: number): Ber | typeof INCOMPLETE | null {
  if (at + 2 > buf.length) return INCOMPLETE;
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) return null;
    if (start + n > buf.length) return INCOMPLETE;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (len > MAX_LDAP_MESSAGE) return null;
  return { tag: buf[at]!, start, end: start + len };
}

/** The LDAPMessage at `at`: its operation (tag and content) and its end; INCOMPLETE while its header is cut off. */
function ldapMessage(buf: Buffer, at: number): { op: Ber; end: number } | typeof INCOMPLETE | null {
  const seq = berAt(buf, at);
  if (seq === null || seq === INCOMPLETE) return seq;
  if (seq.tag !== 0x30) return null;
  const id = berAt(buf, seq.start);
  if (id === null || id === INCOMPLETE) return id;
  if (id.tag !== 0x02 || id.end - id.start < 1 || id.end - id.start > 4) return null;
  const op = berAt(buf, id.end);
  if (op === null || op === INCOMPLETE) return op;
  if (op.end > seq.end) return null;
  return { op, end: seq.end };
}

/** Whether an ExtendedRequest's content names the StartTLS operation ([0] requestName). */
function isStartTls(buf: Buffer, op: Ber): boolean {
  const name = berAt(buf, op.start);
  return name !== null && name !== INCOMPLETE && name.tag === 0x80 && name.end <= buf.length &&
    buf.toString('latin1', name.start, name.end) === LDAP_START_TLS;
}

/**
 * LDAP from the client's first message: a StartTLS extended request switches to TLS after it (on the server's side,
 * after its answer, when TLS records follow it); any other operation first is plain LDAP.
 */
export function ldapPrelude(ch: Buffer, sh: Buffer | null): UpgradePrelude | typeof INCOMPLETE | null {
  if (ch[0] !== 0x30) return null;
  const m = ldapMessage(ch, 0);
  if (m === null || m === INCOMPLETE) return m;
  if (!LDAP_CLIENT_OPS.has(m.op.tag)) return null;
  if (m.op.tag !== LDAP_EXTENDED_REQUEST) return { app: 'ldap', tls: null };
  if (m.end > ch.length) return INCOMPLETE;
  if (!isStartTls(ch, m.op)) return { app: 'ldap', tls: null };
  // the client's records follow its request; another LDAP message there means the server refused and it went on plain
  if (m.end >= ch.length || !sh || sh.length === 0) return { app: 'ldap', tls: 'pending' };
  if (ch[m.end] !== TLS_HANDSHAKE) return { app: 'ldap', tls: null };
  const r = ldapMessage(sh, 0);
  if (r === INCOMPLETE || (r && r.end > sh.length)) return { app: 'ldap', tls: 'pending' };
  if (!r || r.op.tag !== LDAP_EXTENDED_RESPONSE) return { app: 'ldap', tls: null };
  // (its result code is not read: a refusal shows in what follows, more LDAP instead of TLS records)
  if (r.end >= sh.length) return { app: 'ldap', tls: 'pending' };
  return { app: 'ldap', tls: sh[r.end] === TLS_HANDSHAKE ? { client: m.end, server: r.end } : null };
}

// ---- XMPP ----

const XMPP_STREAMS = 'http://etherx.jabber.org/streams';
/** an XMPP stream's opening tag names its namespace within this many bytes */
const XMPP_HEAD = 1024;

function isXmlSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === CR || b === LF;
}

/** Where the element starting at `at` (`<name .../>` or `<name ...>...</name>`) ends; 0: not whole yet. */
function elementEnd(buf: Buffer, at: number, name: string): number {
  const gt = buf.indexOf('>', at);
  if (gt < 0) return 0;
  if (buf[gt - 1] === 0x2f) return gt + 1;
  const close = buf.indexOf(`</${name}>`, gt);
  return close < 0 ? 0 : close + name.length + 3;
}

/**
 * XMPP (client to server or server to server) from the client's stream header: `<?xml ...?>` and `<stream:stream
 * xmlns:stream='http://etherx.jabber.org/streams' ...>`. When its next element is `<starttls/>`, the client's TLS
 * follows that element, and the server's follows its `<proceed/>` (a `<failure/>` refuses); any other element
 * first is XMPP in plain text.
 */
export function xmppPrelude(ch: Buffer, sh: Buffer | null): UpgradePrelude | typeof INCOMPLETE | null {
  let at = 0;
  while (isXmlSpace(ch[at])) at++;
  if (at === ch.length) return at > 0 ? INCOMPLETE : null;
  const decl = startsWith(ch.subarray(at), '<?xml');
  const open = startsWith(ch.subarray(at), '<stream');
  if (decl === false && open === false) return null;
  const ns = ch.indexOf(XMPP_STREAMS, at);
  if (ns < 0 || ns > XMPP_HEAD) return ch.length < XMPP_HEAD ? INCOMPLETE : null;
  const gt = ch.indexOf('>', ns);
  if (gt < 0) return { app: 'xmpp', tls: 'pending' };
  let next = gt + 1;
  while (isXmlSpace(ch[next])) next++;
  if (next >= ch.length) return { app: 'xmpp', tls: 'pending' };
  const starttls = startsWith(ch.subarray(next), '<starttls');
  if (starttls === 'short') return { app: 'xmpp', tls: 'pending' };
  if (starttls === false) return { app: 'xmpp', tls: null };
  const client = elementEnd(ch, next, 'starttls');
  // the client's records follow its <starttls/>; more XML there means it went on in plain text
  if (client === 0 || client >= ch.length || !sh) return { app: 'xmpp', tls: 'pending' };
  if (ch[client] !== TLS_HANDSHAKE) return { app: 'xmpp', tls: null };
  const proceed = sh.indexOf('<proceed');
  if (proceed < 0) return sh.indexOf('<failure') >= 0 ? { app: 'xmpp', tls: null } : { app: 'xmpp', tls: 'pending' };
  const server = elementEnd(sh, proceed, 'proceed');
  if (server === 0 || server >= sh.length) return { app: 'xmpp', tls: 'pending' };
  return { app: 'xmpp', tls: sh[server] === TLS_HANDSHAKE ? { client, server } : null };
}

// ---- NATS ----

/** a NATS server's INFO line (JSON; a cluster's lists its servers' URLs) ends within this many bytes */
const NATS_INFO_MAX = 64 * 1024;

/**
 * NATS from the server's first line, `INFO {...}`: a client that wants TLS starts its handshake right after it (its
 * first bytes a TLS record, the server's after its INFO line); one that does not sends CONNECT in plain text.
 */
export function natsPrelude(ch: Buffer, sh: Buffer | null): UpgradePrelude | typeof INCOMPLETE | null {
  if (!sh || sh.length === 0) return null;
  const info = startsWith(sh, 'INFO {');
  if (info === false) return null;
  const nl = sh.indexOf(LF);
  if (info === 'short' || nl < 0) return sh.length < NATS_INFO_MAX ? INCOMPLETE : null;
  if (ch.length === 0) return { app: 'nats', tls: 'pending' };
  if (ch[0] !== TLS_HANDSHAKE) return { app: 'nats', tls: null };
  const server = nl + 1;
  if (server >= sh.length) return { app: 'nats', tls: 'pending' };
  return { app: 'nats', tls: sh[server] === TLS_HANDSHAKE ? { client: 0, server } : null };
}

// ---- SQL Server (TDS) ----

const TDS_PRELOGIN = 0x12;
const TDS_RESPONSE = 0x04;
const TDS_HEADER = 8;
/** PRELOGIN's option tokens (VERSION to NONCEOPT) and its terminator */
const TDS_LAST_OPTION = 0x08;
const TDS_TERMINATOR = 0xff;

/** The TDS packet at `at`: its type and end; INCOMPLETE when its header is cut off; null: no TDS packet header. */
function tdsPacket(buf: Buffer, at: number): { type: number; end: number } | typeof INCOMPLETE | null {
  if (at + TDS_HEADER > buf.length) return INCOMPLETE;
  const len = buf.readUInt16BE(at + 2);
  // (status: end of message, ignore, the two resets; a packet is at most 32,767 bytes)
  if (len < TDS_HEADER || len > 32767 || (buf[at + 1]! & 0xe0) !== 0) return null;
  return { type: buf[at]!, end: at + len };
}

/** Whether buf[start, end) is a PRELOGIN message: option tokens from VERSION, each pointing inside it, then 0xFF. */
function preloginOptions(buf: Buffer, start: number, end: number): boolean {
  let at = start;
  for (let n = 0; at < end; n++) {
    const token = buf[at]!;
    if (token === TDS_TERMINATOR) return n > 0;
    if (token > TDS_LAST_OPTION || (n === 0 && token !== 0) || at + 5 > end) return false;
    const off = buf.readUInt16BE(at + 1);
    const len = buf.readUInt16BE(at + 3);
    if (start + off + len > end) return false;
    at += 5;
  }
  return false;
}

/** Where the TLS record carried by the PRELOGIN packet at `at` begins; 'pending': not seen yet; null: none there. */
function tdsTls(buf: Buffer, at: number, types: readonly number[]): number | 'pending' | null {
  const p = tdsPacket(buf, at);
  if (p === INCOMPLETE) return 'pending';
  if (p === null || !types.includes(p.type)) return null;
  const tls = at + TDS_HEADER;
  if (tls + 5 > buf.length) return 'pending';
  // (a hello larger than its packet goes on in the next one, past that one's header: not read, rather than misread)
  return buf[tls] === TLS_HANDSHAKE && tls + 5 + buf.readUInt16BE(tls + 3) <= p.end ? tls : null;
}

/**
 * SQL Server's TDS from the client's PRELOGIN message. Unless the client's next packet is its LOGIN7 in plain text,
 * it and the server (after its PRELOGIN response) run their TLS handshake inside PRELOGIN packets, and then go
 * on in TLS records: the hellos are read from the first such packet of each side. (TDS 8.0 begins with TLS, an
 * ordinary TLS connection.)
 */
export function tdsPrelude(ch: Buffer, sh: Buffer | null): UpgradePrelude | typeof INCOMPLETE | null {
  if (ch[0] !== TDS_PRELOGIN) return null;
  const p = tdsPacket(ch, 0);
  if (p === null || p === INCOMPLETE) return p;
  if (p.end > ch.length) return INCOMPLETE;
  if (!preloginOptions(ch, TDS_HEADER, p.end)) return null;
  const client = tdsTls(ch, p.end, [TDS_PRELOGIN]);
  if (client === null) return { app: 'mssql', tls: null };
  if (client === 'pending' || !sh) return { app: 'mssql', tls: 'pending' };
  const r = tdsPacket(sh, 0);
  if (r === INCOMPLETE) return { app: 'mssql', tls: 'pending' };
  if (r === null || r.type !== TDS_RESPONSE) return { app: 'mssql', tls: null };
  const server = tdsTls(sh, r.end, [TDS_PRELOGIN, TDS_RESPONSE]);
  if (server === 'pending') return { app: 'mssql', tls: 'pending' };
  return { app: 'mssql', tls: server === null ? null : { client, server } };
}

// ---- where TLS began ----

/** An HTTP proxy's CONNECT and its 2xx answer: where each side's head ends (the tunnel's first byte). */
function connectTunnel(ch: Buffer, sh: Buffer): { client: number; server: number } | null {
  if (!ch.subarray(0, 8).equals(Buffer.from('CONNECT ')) || !sh.subarray(0, 7).equals(Buffer.from('HTTP/1.'))) return null;
  const status = sh.toString('latin1', 9, 12);
  // (heads as the analyzer's HTTP/1 parser reads them, a bare LF ending a line too)
  const c = headEnd(ch);
  const s = headEnd(sh);
  return status[0] === '2' && c > 0 && s > 0 ? { client: c, server: s } : null;
}

/**
 * Where TLS began in each direction of a connection that switched to it in place (the length of its plain prelude:
 * a database's request, a mail command's STARTTLS, LDAP's StartTLS, an HTTP proxy's CONNECT, and before any of
 * them or TLS itself a PROXY protocol header), from the first bytes of each direction; null when it did not, or
 * began with TLS.
 */
export function tlsStartInPlace(ch: Buffer, sh: Buffer): { client: number; server: number } | null {
  const proxy = proxyHeader(ch);
  const skip = proxy && proxy !== INCOMPLETE ? proxy.length : 0;
  const c = ch.subarray(skip);
  if (c.length === 0) return null;
  if (c[0] === TLS_HANDSHAKE) {
    // (a NATS server's INFO line comes before its TLS)
    const nats = natsPrelude(c, sh);
    const server = nats && nats !== INCOMPLETE && nats.tls && nats.tls !== 'pending' ? nats.tls.server : 0;
    return skip > 0 || server > 0 ? { client: skip, server } : null;
  }
  const at = preludeTls(c, sh);
  return at && { client: skip + at.client, server: at.server };
}

function preludeTls(ch: Buffer, sh: Buffer): { client: number; server: number } | null {
  for (const p of [textPrelude(ch, sh), ldapPrelude(ch, sh), xmppPrelude(ch, sh), natsPrelude(ch, sh), tdsPrelude(ch, sh), dbPrelude(ch, sh)]) {
    if (p && p !== INCOMPLETE && p.tls && p.tls !== 'pending') return p.tls;
  }
  return connectTunnel(ch, sh);
}
