// known_hosts matching against files written by OpenSSH's own tools: plain, hashed (ssh-keygen -H),
// [host]:port, wildcards, @revoked and @cert-authority markers, and the SHA256 fingerprint format.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendKnownHost, checkHostKey, fingerprintSha256, keyTypeOf, knownHostsName } from '../../src/targets/ssh/known-hosts.js';

let dir: string;
let keyA: Buffer;
let keyB: Buffer;
let fpA: string;
let lineA: string;

function genKey(name: string): { blob: Buffer; pub: string; fp: string } {
  const f = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', f]);
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
    expect(checkHostKey([f], ['node1.example'], keyA)).toEqual({ status: 'known' });
    expect(checkHostKey([f], [knownHostsName('10.1.2.3', 2222)], keyA)).toEqual({ status: 'known' });
    // Same address on port 22 is another entry.
    expect(checkHostKey([f], [knownHostsName('10.1.2.3', 22)], keyA).status).toBe('unknown');
    // Hashed entry, other key of the same type: changed.
    expect(checkHostKey([f], ['node1.example'], keyB)).toMatchObject({ status: 'changed', line: 1 });
  });

  it('matches plain pattern lists with wildcards and negation', () => {
    const f = join(dir, 'plain');
    writeFileSync(f, `# comment\n*.lab,!bad.lab ${lineA}\n`);
    expect(checkHostKey([f], ['x.lab'], keyA).status).toBe('known');
    expect(checkHostKey([f], ['bad.lab'], keyA).status).toBe('unknown');
    expect(checkHostKey([f], ['x.lab'], keyB).status).toBe('changed');
  });

  it('refuses @revoked keys and ignores @cert-authority lines', () => {
    const f = join(dir, 'markers');
    writeFileSync(f, `@cert-authority *.lab ${lineA}\n@revoked * ${lineA.replace(/ .*/, '')} ${keyB.toString('base64')}\n`);
    expect(checkHostKey([f], ['x.lab'], keyA).status).toBe('unknown');
    expect(checkHostKey([f], ['x.lab'], keyB).status).toBe('revoked');
  });

  it('appends new keys in plain form that OpenSSH then finds', () => {
    const f = join(dir, 'new');
    writeFileSync(f, '# no newline at end');
    appendKnownHost(f, knownHostsName('10.9.9.9', 2200), keyA);
    expect(checkHostKey([f], ['[10.9.9.9]:2200'], keyA).status).toBe('known');
    const found = execFileSync('ssh-keygen', ['-F', '[10.9.9.9]:2200', '-f', f]).toString();
    expect(found).toContain('ssh-ed25519');
  });
});
