// known_hosts matching against files written by OpenSSH's own tools: plain, hashed (ssh-keygen -H),
// [host]:port, wildcards, @revoked and @cert-authority markers, and the SHA256 fingerprint format.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendKnownHost, checkHostKey, fingerprintSha256, keyTypeOf, knownHostsName, knownKeyTypes, loadKnownHosts } from '../../src/targets/ssh/known-hosts.js';
import { hostKeyAlgorithmOrder } from '../../src/targets/ssh/connect.js';

let dir: string;
let keyA: Buffer;
let keyB: Buffer;
let fpA: string;
let lineA: string;
let ecdsaLine: string;

function genKey(name: string, type = 'ed25519'): { blob: Buffer; pub: string; fp: string } {
  const f = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', f]);
  const pub = readFileSync(`${f}.pub`, 'utf8').trim();
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${f}.pub`]).toString().split(/\s+/)[1] as string;
  return { blob: Buffer.from(pub.split(' ')[1] as string, 'base64'), pub, fp };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tss-kh-'));
  const a = genKey('a');
  const b = genKey('b');
  keyA = a.blob;
  keyB = b.blob;
  fpA = a.fp;
  lineA = a.pub.split(' ').slice(0, 2).join(' ');
  ecdsaLine = genKey('e', 'ecdsa').pub.split(' ').slice(0, 2).join(' ');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('known_hosts', () => {
  it('prints fingerprints exactly as ssh-keygen does', () => {
    expect(fingerprintSha256(keyA)).toBe(fpA);
    expect(keyTypeOf(keyA)).toBe('ssh-ed25519');
  });

  it('matches hashed entries written by ssh-keygen -H, including [host]:port', () => {
    const f = join(dir, 'hashed');
    writeFileSync(f, `node1.example ${lineA}\n[10.1.2.3]:2222 ${lineA}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
    const text = readFileSync(f, 'utf8');
    expect(text).not.toContain('node1.example');
    expect(text).toMatch(/^\|1\|/m);
    expect(checkHostKey(loadKnownHosts([f]), ['node1.example'], keyA)).toEqual({ status: 'known' });
    expect(checkHostKey(loadKnownHosts([f]), [knownHostsName('10.1.2.3', 2222)], keyA)).toEqual({ status: 'known' });
    // Same address on port 22 is another entry.
    expect(checkHostKey(loadKnownHosts([f]), [knownHostsName('10.1.2.3', 22)], keyA).status).toBe('unknown');
    // Hashed entry, other key of the same type: changed.
    expect(checkHostKey(loadKnownHosts([f]), ['node1.example'], keyB)).toMatchObject({ status: 'changed', line: 1 });
  });

  it('matches plain pattern lists with wildcards and negation', () => {
    const f = join(dir, 'plain');
    writeFileSync(f, `# comment\n*.lab,!bad.lab ${lineA}\n`);
    expect(checkHostKey(loadKnownHosts([f]), ['x.lab'], keyA).status).toBe('known');
    expect(checkHostKey(loadKnownHosts([f]), ['bad.lab'], keyA).status).toBe('unknown');
    expect(checkHostKey(loadKnownHosts([f]), ['x.lab'], keyB).status).toBe('changed');
  });

  it('refuses @revoked keys and ignores @cert-authority lines', () => {
    const f = join(dir, 'markers');
    writeFileSync(f, `@cert-authority *.lab ${lineA}\n@revoked * ${lineA.replace(/ .*/, '')} ${keyB.toString('base64')}\n`);
    expect(checkHostKey(loadKnownHosts([f]), ['x.lab'], keyA).status).toBe('unknown');
    expect(checkHostKey(loadKnownHosts([f]), ['x.lab'], keyB).status).toBe('revoked');
  });

  it('refuses a @revoked key even when an ordinary line for the host comes first (as OpenSSH does)', () => {
    const f = join(dir, 'revoked-after');
    // The usual way to revoke: append to a known_hosts that already trusts the key.
    writeFileSync(f, `[10.1.2.3]:2202 ${lineA}\n@revoked * ${lineA}\n`);
    expect(checkHostKey(loadKnownHosts([f]), ['[10.1.2.3]:2202'], keyA)).toEqual({ status: 'revoked', file: f, line: 2 });
    // The same with the ordinary line hashed, as OpenSSH writes it with HashKnownHosts.
    const h = join(dir, 'revoked-after-hashed');
    writeFileSync(h, `[10.1.2.3]:2202 ${lineA}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', h], { stdio: 'ignore' });
    writeFileSync(h, `${readFileSync(h, 'utf8')}@revoked * ${lineA}\n`);
    expect(checkHostKey(loadKnownHosts([h]), ['[10.1.2.3]:2202'], keyA).status).toBe('revoked');
    // Not revoked for other keys.
    writeFileSync(f, `[10.1.2.3]:2202 ${lineA}\n@revoked * ssh-ed25519 ${keyB.toString('base64')}\n`);
    expect(checkHostKey(loadKnownHosts([f]), ['[10.1.2.3]:2202'], keyA)).toEqual({ status: 'known' });
  });

  it('refuses a key revoked in a later file (known_hosts2, a global file) though an earlier one trusts it', () => {
    const user = join(dir, 'user-trusts');
    const global = join(dir, 'global-revokes');
    writeFileSync(user, `node1.example ${lineA}\n`);
    writeFileSync(global, `@revoked node1.example ${lineA}\n`);
    expect(checkHostKey(loadKnownHosts([user, join(dir, 'missing'), global]), ['node1.example'], keyA)).toEqual({ status: 'revoked', file: global, line: 1 });
  });

  it('finds a changed key recorded only in a global file, and accepts a key any file holds', () => {
    const user = join(dir, 'user-empty');
    const global = join(dir, 'ssh_known_hosts');
    writeFileSync(user, '');
    writeFileSync(global, `[10.1.2.3]:2202 ${lineA}\n`);
    expect(checkHostKey(loadKnownHosts([user, global]), ['[10.1.2.3]:2202'], keyB)).toEqual({ status: 'changed', keyType: 'ssh-ed25519', file: global, line: 1 });
    expect(checkHostKey(loadKnownHosts([user, global]), ['[10.1.2.3]:2202'], keyA)).toEqual({ status: 'known' });
    // A stale key in the global file does not override the user's own up-to-date line (OpenSSH: any match is OK).
    writeFileSync(user, `[10.1.2.3]:2202 ssh-ed25519 ${keyB.toString('base64')}\n`);
    expect(checkHostKey(loadKnownHosts([user, global]), ['[10.1.2.3]:2202'], keyB)).toEqual({ status: 'known' });
  });

  it('lists the key types known for a host and orders host key algorithms by them, as order_hostkeyalgs does', () => {
    const f = join(dir, 'types');
    writeFileSync(f, [
      `[10.1.2.3]:2202 ${ecdsaLine}`,
      `other.host ${lineA}`,
      `@cert-authority * ${lineA}`,
      `[10.1.2.3]:2202 ssh-rsa ${keyB.toString('base64')}`,
      `@revoked * ssh-rsa ${keyB.toString('base64')}`,
      '',
    ].join('\n'));
    expect(knownKeyTypes(loadKnownHosts([f, join(dir, 'missing')]), ['[10.1.2.3]:2202'])).toEqual(['ecdsa-sha2-nistp256']);
    expect(knownKeyTypes(loadKnownHosts([f]), ['unknown.host'])).toEqual([]);
    expect(checkHostKey(loadKnownHosts([f]), ['[10.1.2.3]:2202'], keyA)).toEqual({ status: 'unknown', otherTypes: ['ecdsa-sha2-nistp256'] });
    expect(hostKeyAlgorithmOrder([])).toBeNull();
    expect(hostKeyAlgorithmOrder(['ecdsa-sha2-nistp256'])).toEqual([
      'ecdsa-sha2-nistp256', 'ssh-ed25519', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa',
    ]);
    expect(hostKeyAlgorithmOrder(['ssh-rsa', 'ecdsa-sha2-nistp384'])?.slice(0, 4)).toEqual(['ecdsa-sha2-nistp384', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });

  it('appends new keys in plain form that OpenSSH then finds', () => {
    const f = join(dir, 'new');
    writeFileSync(f, '# no newline at end');
    appendKnownHost(f, knownHostsName('10.9.9.9', 2200), keyA);
    expect(checkHostKey(loadKnownHosts([f]), ['[10.9.9.9]:2200'], keyA).status).toBe('known');
    const found = execFileSync('ssh-keygen', ['-F', '[10.9.9.9]:2200', '-f', f]).toString();
    expect(found).toContain('ssh-ed25519');
  });
});
