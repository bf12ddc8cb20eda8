// known_hosts checking as OpenSSH does it: plain and hashed (`|1|salt|hash`) host fields, `[host]:port`
// for non-22 ports, wildcard/negated patterns, `@revoked` honoured, `@cert-authority` lines skipped
// (Tapscope does not verify host certificates). New keys are appended in plain form (`host keytype key`).
import { createHash, createHmac } from 'node:crypto';
import { readFileSync, existsSync, appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostMatches } from './config.js';

export interface KnownHostLine {
  marker: '@revoked' | '@cert-authority' | null;
  hosts: string;
  keyType: string;
  key: Buffer;
}

export type HostKeyCheck =
  | { status: 'known' }
  | { status: 'unknown'; otherTypes: string[] }
  | { status: 'changed'; keyType: string; file: string; line: number }
  | { status: 'revoked'; file: string; line: number };

/** SHA256 fingerprint as `ssh-keygen -lf` and the OpenSSH client print it: `SHA256:` + unpadded base64. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const n = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + n).toString('latin1');
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): Array<KnownHostLine & { lineNo: number }> {
  const out: Array<KnownHostLine & { lineNo: number }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    let marker: KnownHostLine['marker'] = null;
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') marker = parts.shift() as KnownHostLine['marker'];
    const [hosts, keyType, b64] = parts;
    if (!hosts || !keyType || !b64) return;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) return;
    out.push({ marker, hosts, keyType, key, lineNo: i + 1 });
  });
  return out;
}

/** Does a known_hosts host field (plain pattern list or one hashed entry) name this host? */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  return hostMatches(field.split(','), name);
}

/**
 * Checks a presented host key. OpenSSH's rules: a matching line accepts; a revoked key refuses;
 * a line for this host with the same key type but another key means the key changed. The host is
 * looked up under its name and, like CheckHostIP, under its address too when they differ.
 */
export function checkHostKey(files: string[], names: string[], keyBlob: Buffer): HostKeyCheck {
  const type = keyTypeOf(keyBlob);
  let changed: HostKeyCheck | null = null;
  const otherTypes = new Set<string>();
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const l of parseKnownHosts(readFileSync(file, 'utf8'))) {
      if (l.marker === '@revoked') {
        if (l.key.equals(keyBlob)) return { status: 'revoked', file, line: l.lineNo };
        continue;
      }
      if (l.marker === '@cert-authority') continue;
      if (!names.some((n) => hostFieldMatches(l.hosts, n))) continue;
      if (l.key.equals(keyBlob)) return { status: 'known' };
      if (l.keyType === type) changed ??= { status: 'changed', keyType: type, file, line: l.lineNo };
      else otherTypes.add(l.keyType);
    }
  }
  return changed ?? { status: 'unknown', otherTypes: [...otherTypes] };
}

export function appendKnownHost(file: string, name: string, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const prefix = existsSync(file) && !/\n$|^$/.test(readFileSync(file, 'utf8')) ? '\n' : '';
  appendFileSync(file, `${prefix}${name} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
}
