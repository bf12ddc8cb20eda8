// Database protocols told from a connection's first bytes, and the ones that switch to TLS in place: Postgres
// (the client's SSLRequest, answered 'S') and MySQL/MariaDB (the server's greeting, then the client's SSL request
// packet). After such a prelude the connection carries TLS records, whose hellos get a verdict like any TLS
// flow's: without this, a database client's TLS was "unknown" and its library never judged. Redis is told apart
// for its name only (Redis over TLS starts with a ClientHello, already TLS).

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

/**
 * Postgres from the client's first message: SSLRequest (TLS when the server answers 'S'; its one-byte answer and
 * the client's 8 bytes come before the records), GSSENCRequest, CancelRequest or a protocol 3 StartupMessage.
 */
export function postgresPrelude(ch: Buffer, sh: Buffer | null): DbPrelude | typeof INCOMPLETE | null {
  if (ch.length < 8) return ch[0] === 0 && (ch.length < 2 || ch[1] === 0) ? INCOMPLETE : null;
  const len = ch.readUInt32BE(0);
  const code = ch.readUInt32BE(4);
  if (len === 8 && code === PG_SSL_REQUEST) {
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

/** Redis' protocol (RESP): a command as an array of bulk strings, `*N\r\n$M\r\n`. */
export function isRedisCommand(ch: Buffer): boolean {
  if (ch.length < 8 || ch[0] !== 0x2a) return false;
  let i = 1;
  while (i < ch.length && i < 6 && ch[i]! >= 0x30 && ch[i]! <= 0x39) i++;
  return i > 1 && ch[i] === 0x0d && ch[i + 1] === 0x0a && ch[i + 2] === 0x24;
}

/** The database protocol of a connection from its first bytes in each direction; INCOMPLETE: more are needed. */
export function dbPrelude(ch: Buffer, sh: Buffer | null): DbPrelude | typeof INCOMPLETE | null {
  return mysqlPrelude(ch, sh) ?? postgresPrelude(ch, sh) ?? (isRedisCommand(ch) ? { app: 'redis', tls: null } : null);
}
