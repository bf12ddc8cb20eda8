// known_hosts checking as OpenSSH does it: plain and hashed (`|1|salt|hash`) host fields, `[host]:port`
// for non-22 ports, wildcard/negated patterns, `@revoked` honoured in every file whatever the line order,
// `@cert-authority` lines skipped
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

/** A host's known_hosts files as read once: their lines, and every key marked `@revoked` in any of them. */
export interface KnownHosts {
  files: Array<{ file: string; lines: Array<KnownHostLine & { lineNo: number }> }>;
  revoked: Array<{ key: Buffer; file: string; line: number }>;
}

/** Reads and parses the files, in order; a missing or unreadable one is skipped, as OpenSSH does. */
export function loadKnownHosts(files: string[]): KnownHosts {
  const out: KnownHosts = { files: [], revoked: [] };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const lines = parseKnownHosts(text);
    out.files.push({ file, lines });
    for (const l of lines) if (l.marker === '@revoked') out.revoked.push({ key: l.key, file, line: l.lineNo });
  }
  return out;
}

function isRevoked(known: KnownHosts, key: Buffer): boolean {
  return known.revoked.some((r) => r.key.equals(key));
}

/**
 * Checks a presented host key. OpenSSH's rules: a key marked `@revoked` in any of the files refuses,
 * whatever the order of lines and files (sshconnect.c checks revocation before anything else, so a
 * revocation appended after an ordinary line for the same key still counts); otherwise a matching
 * line accepts; a line for this host with the same key type but another key means the key changed.
 * `known` holds all the files to consult, user and global (ssh_known_hosts) alike. The host is looked
 * up under its name and, like CheckHostIP, under its address too when they differ. A `@revoked` line
 * refuses the key for any host (stricter than OpenSSH, which needs the host pattern to match too).
 */
export function checkHostKey(known: KnownHosts, names: string[], keyBlob: Buffer): HostKeyCheck {
  const type = keyTypeOf(keyBlob);
  const revocation = known.revoked.find((r) => r.key.equals(keyBlob));
  if (revocation) return { status: 'revoked', file: revocation.file, line: revocation.line };
  let changed: HostKeyCheck | null = null;
  for (const { file, lines } of known.files) {
    for (const l of lines) {
      if (l.marker !== null) continue;
      if (!names.some((n) => hostFieldMatches(l.hosts, n))) continue;
      if (l.key.equals(keyBlob)) return { status: 'known' };
      if (l.keyType === type) changed ??= { status: 'changed', keyType: type, file, line: l.lineNo };
    }
  }
  // (none of the known types is the presented key's: a line of that type would have made it `changed`)
  return changed ?? { status: 'unknown', otherTypes: knownKeyTypes(known, names) };
}

/**
 * The key types recorded for this host (ordinary lines only, in file order, each once), for ordering the
 * host key algorithms offered as OpenSSH's order_hostkeyalgs does. Keys marked `@revoked` do not count.
 */
export function knownKeyTypes(known: KnownHosts, names: string[]): string[] {
  const types: string[] = [];
  for (const { lines } of known.files) {
    for (const l of lines) {
      if (l.marker !== null || types.includes(l.keyType)) continue;
      if (!names.some((n) => hostFieldMatches(l.hosts, n))) continue;
      if (isRevoked(known, l.key)) continue;
      types.push(l.keyType);
    }
  }
  return types;
}

/**
 * The host key algorithms (ssh2 names) that can present a key of a known_hosts key type: an RSA key is
 * offered with its SHA-2 signatures first, as OpenSSH does. Types ssh2 cannot verify map to nothing.
 */
export function hostKeyAlgorithmsFor(keyType: string): string[] {
  switch (keyType) {
    case 'ssh-ed25519':
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521':
      return [keyType];
    case 'ssh-rsa':
      return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
    default:
      return [];
  }
}

export function appendKnownHost(file: string, name: string, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const prefix = existsSync(file) && !/\n$|^$/.test(readFileSync(file, 'utf8')) ? '\n' : '';
  appendFileSync(file, `${prefix}${name} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
}
