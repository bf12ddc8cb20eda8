// Real OpenSSL TLS connections made in memory by Python's ssl (tls-memory-pair.py): both directions' bytes as they
// would cross the wire, the flights in order, and the client's key log, for the key log tests (unit and UI).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'tls-memory-pair.py');

export interface TlsPair {
  c2s: Buffer;
  s2c: Buffer;
  /** in the order they crossed: 'c' the client's bytes, 's' the server's */
  flights: ['c' | 's', Buffer][];
  /** the client's SSLKEYLOGFILE lines */
  keylog: string;
  version: string;
  cipher: string;
  /** the two answers the client read (to GET /first and GET /second) */
  answers: string[];
}

export type TlsPairVersion = '1.0' | '1.1' | '1.2' | '1.3';

/** A self-signed certificate for keylog.test in `dir` (cert.pem, key.pem), made once per test file. */
export function makePairCert(dir: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=keylog.test'], { stdio: 'ignore' });
}

/**
 * One connection of TLS `version` with `cipher` (TLS 1.0 to 1.2: OpenSSL's name; TLS 1.3: the suite's, chosen through an
 * OpenSSL configuration, as Python has no call for it; '-': the default) asking GET /first and GET /second.
 * `noEncryptThenMac`: a CBC suite's records MAC-then-encrypt (OpenSSL negotiates RFC 7366's encrypt-then-MAC otherwise).
 * `closeDelimited`: the last answer has no Content-Length; its body runs to the close.
 */
export function tlsPair(dir: string, version: TlsPairVersion, cipher = '-', opts: { noEncryptThenMac?: boolean; closeDelimited?: boolean } = {}): TlsPair {
  const env: NodeJS.ProcessEnv = { ...process.env, PAIR_NO_ETM: opts.noEncryptThenMac ? '1' : '0', PAIR_CLOSE_DELIMITED: opts.closeDelimited ? '1' : '0' };
  if (version === '1.3' && cipher !== '-') {
    const conf = join(dir, `${cipher}.cnf`);
    writeFileSync(conf, `openssl_conf = c\n[c]\nssl_conf = s\n[s]\nsystem_default = d\n[d]\nCiphersuites = ${cipher}\n`);
    env.OPENSSL_CONF = conf;
  }
  // (OpenSSL 3 allows TLS 1.0 and 1.1 at security level 0 only)
  const list = version === '1.3' ? '-' : version === '1.2' ? cipher : `${cipher === '-' ? 'DEFAULT' : cipher}:@SECLEVEL=0`;
  const out = JSON.parse(execFileSync('python3', [SCRIPT, join(dir, 'cert.pem'), join(dir, 'key.pem'), version, list], { env, encoding: 'utf8' })) as
    Omit<TlsPair, 'c2s' | 's2c' | 'flights'> & { c2s: string; s2c: string; flights: ['c' | 's', string][] };
  return {
    ...out, c2s: Buffer.from(out.c2s, 'hex'), s2c: Buffer.from(out.s2c, 'hex'),
    flights: out.flights.map(([who, hex]) => [who, Buffer.from(hex, 'hex')]),
  };
}
