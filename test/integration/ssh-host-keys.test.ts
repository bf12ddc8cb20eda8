// Host key checking against a real OpenSSH sshd that has both an ed25519 and an ECDSA host key, compared with
// what `ssh` itself does: a revoked key refuses wherever the revocation is, a key pinned only in the global
// known_hosts (GlobalKnownHostsFile) is checked like one in the user's file and never trusted anew, and the
// host key algorithm is chosen by the key types already known for the host (OpenSSH's order_hostkeyalgs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createSshTarget } from '../../src/targets/ssh.js';
import { connectSsh, negotiatedOf } from '../../src/targets/ssh/connect.js';
import { isTapscopeError } from '../../src/errors.js';
import { sh, startSshLab, type SshLab, type SshNode } from '../lib/sshd.js';

const PORT = 2222;
let lab: SshLab;
let node: SshNode;
let sshd: ChildProcess | null = null;
let dir: string;
let ed25519: string;
let ecdsa: string;
let otherEd25519: string;

function pubLine(file: string): string {
  return readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

async function keygen(file: string, type: string): Promise<void> {
  const r = await sh('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file]);
  if (r.code !== 0) throw new Error(r.stderr);
}

beforeAll(async () => {
  lab = await startSshLab({ id: 12, nodes: 1 });
  node = lab.nodes[0] as SshNode;
  dir = join(lab.dir, 'hostkeys');
  mkdirSync(dir, { recursive: true });
  ed25519 = join(dir, 'hk_ed25519');
  ecdsa = join(dir, 'hk_ecdsa');
  otherEd25519 = join(dir, 'other_ed25519');
  await keygen(ed25519, 'ed25519');
  await keygen(ecdsa, 'ecdsa');
  await keygen(otherEd25519, 'ed25519');
  const conf = join(dir, 'sshd_config');
  writeFileSync(conf, [
    `ListenAddress ${node.ip}`, `Port ${PORT}`, `HostKey ${ed25519}`, `HostKey ${ecdsa}`, `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(lab.dir, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no', 'PermitRootLogin yes',
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'LogLevel ERROR', '',
  ].join('\n'));
  sshd = spawn('ip', ['netns', 'exec', node.ns, '/usr/sbin/sshd', '-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  sshd.stderr?.on('data', () => undefined);
  const r = await sh('ip', ['netns', 'exec', node.ns, 'sh', '-c', `for i in $(seq 200); do ss -ltn | grep -q ":${PORT} " && exit 0; sleep 0.05; done; exit 1`]);
  if (r.code !== 0) throw new Error('the second sshd did not start');
});

afterAll(async () => {
  if (sshd && sshd.exitCode === null) {
    const gone = new Promise<void>((res) => sshd?.once('exit', () => res()));
    sshd.kill('SIGTERM');
    await Promise.race([gone, new Promise((res) => setTimeout(res, 3000))]);
  }
  await lab?.close();
});

const name = (): string => `[${node.ip}]:${PORT}`;

/** A config for this sshd, plus extra lines (GlobalKnownHostsFile, StrictHostKeyChecking). */
function config(tag: string, extra: string[]): string {
  const f = join(dir, `config-${tag}`);
  writeFileSync(f, ['Host *', '  User root', `  IdentityFile ${lab.key}`, ...extra.map((l) => `  ${l}`), ''].join('\n'));
  return f;
}

/** What OpenSSH's client says about the same files: exit code and stderr. */
async function openssh(cfg: string, knownHosts: string, extra: string[] = []): Promise<{ code: number | null; stderr: string }> {
  return sh('ssh', ['-F', cfg, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, ...extra, '-p', String(PORT), `root@${node.ip}`, 'true']);
}

async function tapscope(cfg: string, knownHosts: string, extra: { acceptNewHostKey?: boolean } = {}): Promise<unknown> {
  const t = createSshTarget(`ssh://root@${node.ip}:${PORT}`, { sshConfigPath: cfg, knownHostsPath: knownHosts, helperPath: lab.helper, ...extra });
  try {
    return await t.listNodes().then(() => null, (e: unknown) => e);
  } finally {
    await t.close();
  }
}

describe('host keys against OpenSSH', () => {
  it('refuses a key marked @revoked after an ordinary line for it, as ssh does', async () => {
    const kh = join(dir, 'kh-revoked');
    writeFileSync(kh, `${name()} ${pubLine(ed25519)}\n@revoked * ${pubLine(ed25519)}\n`);
    const cfg = config('revoked', ['GlobalKnownHostsFile none']);
    const ssh = await openssh(cfg, kh);
    expect(ssh.code).not.toBe(0);
    expect(ssh.stderr).toMatch(/REVOKED HOST KEY DETECTED/);
    const err = await tapscope(cfg, kh, { acceptNewHostKey: true });
    expect(isTapscopeError(err, 'E_HOST_KEY_CHANGED')).toBe(true);
    expect((err as Error).message).toMatch(/REVOKED HOST KEY DETECTED.*@revoked in .*kh-revoked:2/);
  });

  it('refuses a key that differs from the one in GlobalKnownHostsFile, even with accept-new, and writes nothing', async () => {
    const global = join(dir, 'global-changed');
    writeFileSync(global, `${name()} ${pubLine(otherEd25519)}\n`);
    const kh = join(dir, 'kh-global-changed');
    writeFileSync(kh, '');
    const cfg = config('global-changed', [`GlobalKnownHostsFile ${global}`, 'StrictHostKeyChecking accept-new']);
    const ssh = await openssh(cfg, kh);
    expect(ssh.code).not.toBe(0);
    expect(ssh.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED/);
    const err = await tapscope(cfg, kh, { acceptNewHostKey: true });
    expect(isTapscopeError(err, 'E_HOST_KEY_CHANGED')).toBe(true);
    expect((err as Error).message).toContain(`${global}:1`);
    expect(readFileSync(kh, 'utf8')).toBe('');
    expect(readFileSync(global, 'utf8')).toBe(`${name()} ${pubLine(otherEd25519)}\n`);
  });

  it('trusts a key pinned only in GlobalKnownHostsFile without asking and without copying it', async () => {
    const global = join(dir, 'global-ok');
    writeFileSync(global, `${name()} ${pubLine(ed25519)}\n`);
    const kh = join(dir, 'kh-global-ok');
    writeFileSync(kh, '');
    const cfg = config('global-ok', [`GlobalKnownHostsFile /nonexistent/kh ${global}`, 'StrictHostKeyChecking yes']);
    expect((await openssh(cfg, kh)).code).toBe(0);
    expect(await tapscope(cfg, kh)).toBeNull();
    expect(readFileSync(kh, 'utf8')).toBe('');
    expect(readFileSync(global, 'utf8')).toBe(`${name()} ${pubLine(ed25519)}\n`);
  });

  it('connects to a host known only by its ECDSA key, negotiating that key type as ssh does', async () => {
    const kh = join(dir, 'kh-ecdsa');
    writeFileSync(kh, `${name()} ${pubLine(ecdsa)}\n`);
    const cfg = config('ecdsa', ['GlobalKnownHostsFile none', 'StrictHostKeyChecking yes']);
    expect((await openssh(cfg, kh)).code).toBe(0);
    expect(await tapscope(cfg, kh)).toBeNull();
    const conn = await connectSsh({ host: node.ip, user: 'root', port: PORT }, { sshConfigPath: cfg, knownHostsPath: kh });
    try {
      expect(negotiatedOf(conn.client)?.serverHostKey).toBe('ecdsa-sha2-nistp256');
    } finally {
      conn.end();
    }
    expect(readFileSync(kh, 'utf8')).toBe(`${name()} ${pubLine(ecdsa)}\n`);
  });

  it('says that keys of another type are known when the host presents a key of an unknown type', async () => {
    // The lab's own sshd on port 22 has only an ed25519 key; known_hosts has an ECDSA key for it.
    const kh = join(dir, 'kh-other-type');
    writeFileSync(kh, `${node.ip} ${pubLine(ecdsa)}\n`);
    const cfg = config('other-type', ['GlobalKnownHostsFile none', 'StrictHostKeyChecking yes']);
    const t = createSshTarget(`ssh://root@${node.ip}`, { sshConfigPath: cfg, knownHostsPath: kh, helperPath: lab.helper });
    const err = await t.listNodes().then(() => null, (e: unknown) => e);
    await t.close();
    expect(isTapscopeError(err, 'E_HOST_KEY_UNKNOWN')).toBe(true);
    expect((err as Error).message).toMatch(/ssh-ed25519 key fingerprint is SHA256:.*Keys of another type \(ecdsa-sha2-nistp256\) are already known/);
  });
});
