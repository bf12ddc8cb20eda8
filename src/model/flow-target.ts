// What a flow reaches, in a word, for the tables (the CLI's SNI/HOST column, the app's): the TLS server name, else
// the HTTP host, else the DNS name asked, else the database a login named ("orders as app"); and how its TLS began
// when it did not begin with it (the flow detail's protocol line).
import type { Flow, KeyLogStatus, ProxiedFor } from './flow.js';

export function flowTarget(f: Flow): string {
  return f.tls?.sni ?? f.http[0]?.host ?? f.dns?.[0]?.query ?? (f.db ? dbText(f.db) : '');
}

/** "orders as app", "as app" (a MySQL login naming no database) or "" (none read). */
export function dbText(db: NonNullable<Flow['db']>): string {
  return [db.database, db.user ? `as ${db.user}` : null].filter(Boolean).join(' ');
}

/**
 * How a flow's TLS began when the connection did not begin with it: the upgrade its protocol made in place, or an
 * HTTP proxy's tunnel ("after STARTTLS", "through a proxy's CONNECT"); null for any other flow.
 */
export function tlsStartText(f: Pick<Flow, 'app' | 'tls' | 'http'>): string | null {
  if (!f.tls) return null;
  switch (f.app) {
    case 'smtp':
    case 'imap':
    case 'nntp':
    case 'sieve':
    case 'xmpp': return 'after STARTTLS';
    case 'nats': return "after the server's INFO";
    case 'mssql': return 'inside TDS PRELOGIN packets';
    case 'pop3': return 'after STLS';
    case 'ftp': return 'after AUTH TLS';
    case 'ldap': return 'after StartTLS';
    case 'postgres': return 'after its SSLRequest';
    case 'mysql': return 'after its SSL request';
    case 'http': return f.http.some((h) => h.method === 'CONNECT') ? "through a proxy's CONNECT" : null;
    default: return null;
  }
}

/**
 * What a PROXY v2 header's TLVs tell of the relayed client, for the flow detail: the TLS the proxy ended, the host and
 * protocol it asked for ("its client's TLS (TLSv1.3, TLS_AES_256_GCM_SHA384) ended at the proxy; it asked for
 * shop.example"); null when they tell none of it.
 */
export function proxiedText(p: ProxiedFor): string | null {
  const parts: string[] = [];
  if (p.tls) {
    const how = [p.tls.version, p.tls.cipher].filter(Boolean).join(', ');
    const cert = p.tls.clientCertCn ? `, with a client certificate for ${p.tls.clientCertCn}` : '';
    parts.push(`its client's TLS${p.tls.version ? ` (${how})` : ''} ended at the proxy${cert}`);
  }
  if (p.authority) parts.push(`it asked for ${p.authority}`);
  if (p.alpn) parts.push(`over ${p.alpn}`);
  return parts.length > 0 ? parts.join('; ') : null;
}

/** A TLS connection's decryption with a key log, for the flow detail: "decrypted with its secrets (4 records)", or why not. */
export function keyLogText(k: KeyLogStatus): string {
  const records = `${k.records} ${k.records === 1 ? 'record' : 'records'}`;
  const e = k.earlyData;
  const early = e?.status === 'decrypted' ? `, ${e.records} of them early data (0-RTT)` : '';
  // (early data not read makes the connection failed, and its reason says so)
  const declined = e?.status === 'rejected' ? '; the early data (0-RTT) it sent was declined by the server' : '';
  if (k.status === 'decrypted') return `decrypted with its secrets (${records} of application data${early})${declined}`;
  const why = k.reason ?? 'no reason given';
  return k.status === 'no-secrets' ? `no secrets for it: ${why}` : `not decrypted: ${why}${k.records > 0 ? ` (${records} read before${early})` : ''}${declined}`;
}
