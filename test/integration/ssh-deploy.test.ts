// Deploying the helper over SSH when it goes wrong, against real sshd processes in a lab namespace: Ctrl-C during the
// upload (the CLI cancels and removes the partial helper), a full remote temp dir (the remote error said, nothing left),
// a noexec /tmp (another dir is used), and sudo refusals that no password fixes (not in sudoers, requiretty): said at
// once with what to do, and by preflight.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createSshTarget, type SshTargetOptions } from '../../src/targets/ssh.js';
import { isTapscopeError } from '../../src/errors.js';
import type { NodeStatus, Prompt } from '../../src/targets/target.js';
import { sh, startSshLab, type SshLab, type SshNode } from '../lib/sshd.js';
import { until } from '../lib/until.js';
import { startCli } from './core-cli.js';

const ID = 13;
const USERS = { nosudo: 'tsd-nosudo', tty: 'tsd-tty', secret: 'tsd-Secret-1' };
const SUDOERS = '/etc/sudoers.d/tsd-test';
let lab: SshLab;
let node: SshNode;
let home: string;
let mounts: { tiny: string; noexec: string };
/** the temp dir of the sessions of the sshd on port 2203 (no other test writes there) */
let slowTmp: string;
const extra: ChildProcess[] = [];

async function must(cmd: string, args: string[], input?: string): Promise<void> {
  const r = await sh(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

async function removeUsers(): Promise<void> {
  rmSync(SUDOERS, { force: true });
  for (const u of [USERS.nosudo, USERS.tty]) {
    await sh('pkill', ['-KILL', '-u', u]);
    await sh('userdel', ['-r', '-f', u]);
    rmSync(`/tmp/${u}-home`, { recursive: true, force: true });
  }
}

/** One more sshd in the node, on `port`, with more sshd_config lines (SetEnv TMPDIR=…). */
async function extraSshd(port: number, lines: string[]): Promise<void> {
  const d = join(lab.dir, `sshd-${port}`);
  mkdirSync(d, { recursive: true });
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'hk')]);
  writeFileSync(join(d, 'sshd_config'), [
    `ListenAddress ${node.ip}`, `Port ${port}`, `HostKey ${join(d, 'hk')}`, `PidFile ${join(d, 'pid')}`, `AuthorizedKeysFile ${join(lab.dir, 'authorized_keys')}`,
    'StrictModes no', 'UsePAM no', 'PermitRootLogin yes', 'PasswordAuthentication yes', 'KbdInteractiveAuthentication no', 'LogLevel ERROR', ...lines, '',
  ].join('\n'));
  const p = spawn('ip', ['netns', 'exec', node.ns, '/usr/sbin/sshd', '-D', '-e', '-f', join(d, 'sshd_config')], { stdio: 'ignore' });
  extra.push(p);
  const r = await sh('ip', ['netns', 'exec', node.ns, 'sh', '-c', `for i in $(seq 200); do ss -ltn | grep -q ":${port} " && exit 0; sleep 0.05; done; exit 1`]);
  if (r.code !== 0) throw new Error(`sshd on port ${port} did not start`);
}

beforeAll(async () => {
  lab = await startSshLab({ id: ID, nodes: 1 });
  node = lab.nodes[0] as SshNode;
  home = mkdtempSync(join(tmpdir(), 'tsd-home-'));
  mkdirSync(join(home, '.ssh'), { mode: 0o700 });
  writeFileSync(join(home, '.ssh', 'config'), `Host *\n  User root\n  IdentityFile ${lab.key}\n`);
  writeFileSync(lab.sshConfig, `Host *\n  IdentityFile ${lab.key}\n`);
  // a temp dir with no room for the helper, and one mounted noexec (CIS-hardened /tmp)
  mounts = { tiny: join(lab.dir, 'tiny'), noexec: join(lab.dir, 'noexec') };
  mkdirSync(mounts.tiny);
  mkdirSync(mounts.noexec);
  await must('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=1777', 'tsd-tiny', mounts.tiny]);
  await must('mount', ['-t', 'tmpfs', '-o', 'size=8m,noexec,mode=1777', 'tsd-noexec', mounts.noexec]);
  await extraSshd(2201, [`SetEnv TMPDIR=${mounts.tiny}`]);
  await extraSshd(2202, [`SetEnv TMPDIR=${mounts.noexec}`]);
  slowTmp = join(lab.dir, 'slow-tmp');
  mkdirSync(slowTmp, { mode: 0o1777 });
  await extraSshd(2203, [`SetEnv TMPDIR=${slowTmp}`]);
  // throwaway users: one with no sudo rights at all, one allowed NOPASSWD but only with a tty (requiretty)
  await removeUsers();
  for (const u of [USERS.nosudo, USERS.tty]) {
    await must('useradd', ['-m', '-d', `/tmp/${u}-home`, '-s', '/bin/sh', u]);
    await must('chpasswd', [], `${u}:${USERS.secret}\n`);
  }
  writeFileSync(SUDOERS, `Defaults:${USERS.tty} requiretty\n${USERS.tty} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
  await must('visudo', ['-c', '-f', SUDOERS]);
}, 120_000);

afterAll(async () => {
  for (const p of extra) p.kill('SIGTERM');
  await sh('tc', ['qdisc', 'del', 'dev', `tss${ID}x0h`, 'root']);
  if (mounts) for (const m of Object.values(mounts)) await sh('umount', ['-l', m]);
  await removeUsers();
  await lab?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

function opts(more: SshTargetOptions = {}): SshTargetOptions {
  return { sshConfigPath: lab.sshConfig, knownHostsPath: lab.knownHosts, helperPath: lab.helper, acceptNewHostKey: true, ...more };
}

function handlers(statuses: NodeStatus[] = []) {
  return { onStatus: (s: NodeStatus) => statuses.push(s), onStream: (_n: string, s: Readable) => void s.resume() };
}

function dirsIn(d: string): string[] {
  return existsSync(d) ? readdirSync(d).filter((f) => f.startsWith('tapscope.')).map((f) => join(d, f)) : [];
}

describe('Ctrl-C during the SSH deployment', () => {
  it('cancels the upload, removes the partial helper from the node, says so in one line and exits 130', async () => {
    // (a slow link: the helper's upload takes seconds)
    await must('tc', ['qdisc', 'add', 'dev', `tss${ID}x0h`, 'root', 'tbf', 'rate', '2mbit', 'burst', '32kbit', 'latency', '400ms']);
    try {
      const env = { HOME: home, TAPSCOPE_HOME: join(home, 'data'), TAPSCOPE_HELPER: lab.helper };
      const cap = startCli(['capture', '--target', `ssh://root@${node.ip}:2203`, '--accept-new-host-key', '--mode', 'afpacket', '--duration', '10', '--out', join(home, 'int.pcapng')], env);
      const partial: string = await until('the upload under way', () => dirsIn(slowTmp)
        .find((d) => existsSync(join(d, 'tapscope-helper')) && statSync(join(d, 'tapscope-helper')).size > 0) ?? '', 300);
      expect(statSync(join(partial, 'tapscope-helper')).size).toBeLessThan(statSync(lab.helper).size);
      cap.child.kill('SIGINT');
      expect(await cap.exited, cap.stderr()).toBe(130);
      expect(cap.stderr()).toContain(`tapscope: capture cancelled before it started: removed the helper's temp dir ${partial} on ${node.ip}\n`);
      expect(readdirSync(slowTmp)).toEqual([]);
    } finally {
      await sh('tc', ['qdisc', 'del', 'dev', `tss${ID}x0h`, 'root']);
    }
  }, 120_000);
});

describe('a failed upload', () => {
  it('says the remote error (no space left) and removes the partial helper', async () => {
    const t = createSshTarget(`ssh://root@[${node.ip}]:2201`, opts());
    const err = await t.start({ mode: 'afpacket', ifaces: [], duration: 2 }, handlers()).then(() => null, (e: unknown) => e);
    await t.close();
    expect(isTapscopeError(err, 'E_HELPER_MISSING'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/No space left on device/);
    expect(readdirSync(mounts.tiny)).toEqual([]);
  }, 60_000);
});

describe('a noexec temp dir', () => {
  it('runs the helper from another dir, saying why, and reports capturing only once it streams', async () => {
    const varTmp = new Set(dirsIn('/var/tmp'));
    const statuses: NodeStatus[] = [];
    const t = createSshTarget(`ssh://root@[${node.ip}]:2202`, opts());
    const h = await t.start({ mode: 'afpacket', ifaces: [], duration: 2 }, handlers(statuses));
    await h.done;
    await t.close();
    expect(statuses.filter((s) => s.phase === 'failed'), JSON.stringify(statuses)).toEqual([]);
    expect(statuses.some((s) => s.phase === 'streaming')).toBe(true);
    expect(h.notes.join('\n')).toContain(`${mounts.noexec} is mounted noexec`);
    expect(readdirSync(mounts.noexec)).toEqual([]);
    expect(dirsIn('/var/tmp').filter((d) => !varTmp.has(d))).toEqual([]);
  }, 60_000);
});

describe('sudo refusals no password fixes', () => {
  it('a user not in sudoers: preflight says so, and the capture fails at once (one password asked), naming the cause', async () => {
    const asked: string[] = [];
    const prompt = async (p: Prompt) => (asked.push(p.kind), p.kind === 'password' || p.kind === 'sudo-password' ? USERS.secret : null);
    const pre = createSshTarget(`ssh://${USERS.nosudo}@${node.ip}`, opts({ prompt, sshConfigPath: join(home, 'none') }));
    const [r] = await pre.preflight();
    await pre.close();
    expect(r?.problems.join('\n')).toMatch(new RegExp(`User ${USERS.nosudo} may not use sudo on ${node.ip.replace(/\./g, '\\.')} \\(sudo said: "${USERS.nosudo} is not in the sudoers file`));

    asked.length = 0;
    const t = createSshTarget(`ssh://${USERS.nosudo}@${node.ip}`, opts({ prompt }));
    const err = await t.start({ mode: 'afpacket', ifaces: [], duration: 2 }, handlers()).then(() => null, (e: unknown) => e);
    await t.close();
    expect(isTapscopeError(err, 'E_SUDO_REQUIRED'), String(err)).toBe(true);
    expect((err as Error).message).toContain('is not in the sudoers file');
    expect((err as Error).message).not.toContain('rejected the password');
    expect(asked.filter((k) => k === 'sudo-password')).toHaveLength(1);
  }, 60_000);

  it('a requiretty user: preflight says so, and the capture fails without asking for a password', async () => {
    const asked: string[] = [];
    const prompt = async (p: Prompt) => (asked.push(p.kind), USERS.secret);
    const t = createSshTarget(`ssh://${USERS.tty}@${node.ip}`, opts({ prompt }));
    const [r] = await t.preflight();
    expect(r?.problems.join('\n')).toContain(`Defaults:${USERS.tty} !requiretty`);
    const err = await t.start({ mode: 'afpacket', ifaces: [], duration: 2 }, handlers()).then(() => null, (e: unknown) => e);
    await t.close();
    expect(isTapscopeError(err, 'E_SUDO_REQUIRED'), String(err)).toBe(true);
    expect((err as Error).message).toContain('requiretty');
    expect(asked).toEqual([]);
  }, 60_000);
});
