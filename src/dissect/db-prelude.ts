// Database protocols told from a connection's first bytes, and the ones that switch to TLS in place: Postgres
// (the client's SSLRequest, answered 'S') and MySQL/MariaDB (the server's greeting, then the client's SSL request
// packet). After such a prelude the connection carries TLS records, whose hellos get a verdict like any TLS
// flow's: without this, a database client's TLS was "unknown" and its library never judged. Redis is told apart
// for its name only (Redis over TLS starts with a ClientHello, already TLS).
import type { DbLogin } from '../model/flow.js';


export type DbApp = 'postgres' | 'mysql' | 'redis';

export interface DbPrelude {
  app: DbApp;
  /** where TLS records begin in each direction's stream, when the connection switched to TLS; null: it did not */
  tls: { client: number; server: number } | null;
}

/** the client's first bytes as far as they go: not told yet */
export const INCOMPLETE = 'incomplete';

const PG_SSL_REQUEST = 80877103;
const PG_GSSENC_REQUEST = 80877104;
const PG_CANCEL_REQUEST = 80877102;
const PG_PROTOCOL_3 = 0x00030000;

/** Whether `ch` starts with a Postgres SSLRequest (8 bytes: length 8, code 80877103). */
function isSslRequest(ch: Buffer): boolean {
  return ch.length >= 8 && ch.readUInt32BE(0) === 8 && ch.readUInt32BE(4) === PG_SSL_REQUEST;
}

/**
 * Postgres from the client's first message: SSLRequest (TLS when the server answers 'S'; its one-byte answer and
 * the client's 8 bytes come before the records), GSSENCRequest, CancelRequest or a protocol 3 StartupMessage.
 */
export function postgresPrelude(ch: Buffer, sh: Buffer | null): DbPrelude | typeof INCOMPLETE | null {
  if (ch.length < 8) return ch[0] === 0 && (ch.length < 2 || ch[1] === 0) ? INCOMPLETE : null;
  const len = ch.readUInt32BE(0);
  const code = ch.readUInt32BE(4);
  if (isSslRequest(ch)) {
    if (!sh || sh.length === 0) return INCOMPLETE;
    return { app: 'postgres', tls: sh[0] === 0x53 ? { client: 8, server: 1 } : null };
  }
  if ((len === 8 && code === PG_GSSENC_REQUEST) || (len === 16 && code === PG_CANCEL_REQUEST)) return { app: 'postgres', tls: null };
  if (code === PG_PROTOCOL_3 && len >= 9 && len <= 10_000) return { app: 'postgres', tls: null };
  return null;
}

const CLIENT_SSL = 0x0800;

/** The length of a MySQL/MariaDB server greeting (protocol 10) at the start of `sh`, header included; 0: not one. */
export function mysqlGreeting(sh: Buffer): number {
  if (sh.length < 5) return 0;
  const len = sh[0]! | (sh[1]! << 8) | (sh[2]! << 16);
  if (sh[3] !== 0 || sh[4] !== 10 || len < 20 || len > 1024) return 0;
  // the server version: printable text ended by a NUL, within the packet
  const end = Math.min(sh.length, 4 + len);
  let i = 5;
  for (; i < end && sh[i] !== 0; i++) if (sh[i]! < 0x20 || sh[i]! > 0x7e) return 0;
  return i > 5 && i < end ? 4 + len : 0;
}

/**
 * MySQL/MariaDB: the server's greeting, then the client's first packet (sequence 1): a 32-byte SSL request with the
 * CLIENT_SSL capability switches to TLS (after the greeting on the server's side, after that packet on the client's).
 */
export function mysqlPrelude(ch: Buffer, sh: Buffer | null): DbPrelude | typeof INCOMPLETE | null {
  const greeting = sh ? mysqlGreeting(sh) : 0;
  if (greeting === 0) return null;
  if (ch.length < 8) return INCOMPLETE;
  const len = ch[0]! | (ch[1]! << 8) | (ch[2]! << 16);
  if (ch[3] !== 1) return { app: 'mysql', tls: null };
  const ssl = len === 32 && (ch.readUInt32LE(4) & CLIENT_SSL) !== 0;
  return { app: 'mysql', tls: ssl ? { client: 36, server: greeting } : null };
}

const REDIS_ARRAY_END = [0x0d, 0x0a, 0x24];

/**
 * Redis' protocol (RESP): a command as an array of bulk strings, `*N\r\n$M\r\n`, in its first 8 bytes; INCOMPLETE
 * while fewer bytes could still grow into one.
 */
export function redisCommand(ch: Buffer): boolean | typeof INCOMPLETE {
  if (ch[0] !== 0x2a) return false;
  let i = 1;
  while (i < ch.length && i < 6 && ch[i]! >= 0x30 && ch[i]! <= 0x39) i++;
  if (i === ch.length) return i < 6 ? INCOMPLETE : false;
  if (i === 1) return false;
  for (let k = 0; k < REDIS_ARRAY_END.length; k++) {
    if (i + k >= ch.length) return INCOMPLETE;
    if (ch[i + k] !== REDIS_ARRAY_END[k]) return false;
  }
  return ch.length >= 8 ? true : INCOMPLETE;
}

/** The database protocol of a connection from its first bytes in each direction; INCOMPLETE: more are needed. */
export function dbPrelude(ch: Buffer, sh: Buffer | null): DbPrelude | typeof INCOMPLETE | null {
  const db = mysqlPrelude(ch, sh) ?? postgresPrelude(ch, sh);
  if (db) return db;
  const redis = redisCommand(ch);
  return redis === INCOMPLETE ? INCOMPLETE : redis ? { app: 'redis', tls: null } : null;
}


function cstring(buf: Buffer, i: number, end: number): [string, number] | null {
  const z = buf.indexOf(0, i);
  return z < 0 || z >= end ? null : [buf.toString('utf8', i, z), z + 1];
}

/** A Postgres StartupMessage (protocol 3) at `at`: its user, database and application_name. */
export function postgresLogin(buf: Buffer, at = 0): DbLogin | typeof INCOMPLETE | null {
  if (buf.length - at < 8) return INCOMPLETE;
  const len = buf.readUInt32BE(at);
  if (buf.readUInt32BE(at + 4) !== PG_PROTOCOL_3 || len < 9 || len > 10_000) return null;
  if (buf.length - at < len) return INCOMPLETE;
  const params = new Map<string, string>();
  const end = at + len;
  let i = at + 8;
  while (i < end && buf[i] !== 0) {
    const k = cstring(buf, i, end);
    const v = k && cstring(buf, k[1], end);
    if (!k || !v) return null;
    params.set(k[0], v[0]);
    i = v[1];
  }
  const user = params.get('user') ?? null;
  return { user, database: params.get('database') ?? user, application: params.get('application_name') ?? null };
}

const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC = 0x200000;

/** A MySQL/MariaDB HandshakeResponse41 packet at `at`: its user and the database given at login. */
export function mysqlLogin(buf: Buffer, at = 0): DbLogin | typeof INCOMPLETE | null {
  if (buf.length - at < 4) return INCOMPLETE;
  const len = buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16);
  if (len < 33 || len > 65_536) return null;
  if (buf.length - at < 4 + len) return INCOMPLETE;
  const p = at + 4;
  const end = p + len;
  const caps = buf.readUInt32LE(p);
  if (!(caps & CLIENT_PROTOCOL_41)) return null;
  const u = cstring(buf, p + 32, end);
  if (!u) return null;
  let i = u[1];
  if (caps & CLIENT_PLUGIN_AUTH_LENENC) {
    const b = buf[i]!;
    const [n, w] = b < 0xfb ? [b, 1] : b === 0xfc ? [buf.readUInt16LE(i + 1), 3] : b === 0xfd ? [buf.readUIntLE(i + 1, 3), 4] : [-1, 0];
    if (n < 0) return null;
    i += w + n;
  } else if (caps & CLIENT_SECURE_CONNECTION) {
    i += 1 + buf[i]!;
  } else {
    const z = cstring(buf, i, end);
    if (!z) return null;
    i = z[1];
  }
  // the database, then (CLIENT_PLUGIN_AUTH) the auth plugin's name; a client may flag a database its server's
  // greeting did not offer to take and write none, so with the plugin flag the database is the first of two strings
  const first = caps & CLIENT_CONNECT_WITH_DB && i < end ? cstring(buf, i, end) : null;
  const second = first && first[1] < end ? cstring(buf, first[1], end) : null;
  const db = first && (!(caps & CLIENT_PLUGIN_AUTH) || second) ? first[0] : null;
  return { user: u[0], database: db, application: null };
}

const TDS_PRELOGIN = 0x12;
const TDS_LOGIN7 = 0x10;
/** LOGIN7's fixed part, up to and with the database's offset and length */
const LOGIN7_FIXED = 72;

/**
 * SQL Server's LOGIN7 message in the TDS packet at `at` (after a PRELOGIN packet when there is one, as in plain TDS):
 * its user, database and application name (UTF-16 strings at offsets from the message's start; the password's is
 * never read). A string past the packet (a login longer than one packet) is not read.
 */
export function tdsLogin(buf: Buffer, at = 0): DbLogin | typeof INCOMPLETE | null {
  let p = at;
  if (buf[p] === TDS_PRELOGIN) {
    if (buf.length - p < 8) return INCOMPLETE;
    p += buf.readUInt16BE(p + 2);
  }
  if (buf.length - p < 8) return INCOMPLETE;
  if (buf[p] !== TDS_LOGIN7) return null;
  const end = p + buf.readUInt16BE(p + 2);
  const m = p + 8;
  if (end < m + LOGIN7_FIXED) return null;
  if (buf.length < m + LOGIN7_FIXED) return INCOMPLETE;
  const str = (field: number): string | null | typeof INCOMPLETE => {
    const start = m + buf.readUInt16LE(m + field);
    const stop = start + 2 * buf.readUInt16LE(m + field + 2);
    if (stop === start || stop > end) return null;
    return stop > buf.length ? INCOMPLETE : buf.toString('utf16le', start, stop);
  };
  const user = str(40);
  const application = str(48);
  const database = str(68);
  if (user === INCOMPLETE || application === INCOMPLETE || database === INCOMPLETE) return INCOMPLETE;
  return { user, database, application };
}

/** Who the client logs in as, from its stream's first bytes (after a Postgres SSLRequest answered 'N'). */
export function dbLogin(app: string, ch: Buffer): DbLogin | typeof INCOMPLETE | null {
  switch (app) {
    case 'postgres': return postgresLogin(ch, isSslRequest(ch) ? 8 : 0);
    case 'mysql': return mysqlLogin(ch);
    case 'mssql': return tdsLogin(ch);
    default: return null;
  }
}
