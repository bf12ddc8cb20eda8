// What a flow reaches, in a word, for the tables (the CLI's SNI/HOST column, the app's): the TLS server name, else
// the HTTP host, else the DNS name asked, else the database a login named ("orders as app").
import type { Flow } from './flow.js';

export function flowTarget(f: Flow): string {
  return f.tls?.sni ?? f.http[0]?.host ?? f.dns?.[0]?.query ?? (f.db ? dbText(f.db) : '');
}

/** "orders as app", "as app" (a MySQL login naming no database) or "" (none read). */
export function dbText(db: NonNullable<Flow['db']>): string {
  return [db.database, db.user ? `as ${db.user}` : null].filter(Boolean).join(' ');
}
