// `tapscope capture --target ssh://…` end to end: the CLI connects to a real sshd in a lab namespace (trusting
// its new host key on request), deploys and runs the real helper there, and the capture lists the node's
// traffic under the node's name — as a user would run it, with ~/.ssh taken from $HOME.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { sh, startSshLab, type SshLab } from '../lib/sshd.js';
import { runCli, startCli } from './core-cli.js';
import type { Flow } from '../../src/model/flow.js';

let lab: SshLab;
let home: string;

beforeAll(async () => {
  lab = await startSshLab({ id: 9, nodes: 1 });
  home = mkdtempSync(join(tmpdir(), 'tsc-ssh-home-'));
  mkdirSync(join(home, '.ssh'), { mode: 0o700 });
  writeFileSync(join(home, '.ssh', 'config'), `Host *\n  User root\n  IdentityFile ${lab.key}\n`);
});

afterAll(async () => {
  await lab?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('tapscope capture over SSH', () => {
  it('refuses an unknown host key unless told to accept it, then captures the node\'s traffic', async () => {
    const node = lab.nodes[0]!;
    const env = { HOME: home, TAPSCOPE_HOME: join(home, 'data') };
    const out = join(home, 'ssh.pcapng');
    const refused = await runCli(['capture', '--target', `ssh://root@${node.ip}`, '--duration', '2', '--out', out], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/\(E_HOST_KEY_UNKNOWN\)\n$/);

    // (a key log too: read on this machine, which the capture says; with no TLS captured, nothing is written into the file)
    const keys = join(home, 'sslkeys.log');
    writeFileSync(keys, '');
    const cap = startCli(['capture', '--target', `ssh://root@${node.ip}`, '--accept-new-host-key', '--duration', '4', '--keylog', keys, '--out', out], env);
    await cap.waitFor(': capturing', 90_000);
    // traffic inside the node: refused TCP connections on its own address, for the whole capture (a target
    // may report streaming before the remote helper's sockets are open; on a loaded machine that gap has
    // outlasted a fixed handful of attempts)
    let ended = false;
    const exited = cap.exited.finally(() => { ended = true; });
    while (!ended) {
      await sh('ip', ['netns', 'exec', node.ns, 'curl', '-s', '--max-time', '2', `http://${node.ip}:9/`]);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(await exited, cap.stderr()).toBe(0);
    expect(cap.stderr()).toContain(`the key log is read on this machine; clients on ssh://root@${node.ip} write theirs on their node`);
    expect(cap.stderr()).toContain(`key log: 0 of 0 TLS connections decrypted; it has no secrets for this capture's connections, so none were written into ${out}`);
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toContain(node.ip);
    const f = await runCli(['flows', out, '--json', '--filter', 'dst.port == 9'], env);
    expect(f.code, f.stderr).toBe(0);
    const flows = f.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow);
    expect(flows.length, cap.stderr()).toBeGreaterThanOrEqual(1);
    for (const x of flows) {
      expect(x.dst).toEqual({ ip: node.ip, port: 9 });
      expect(x.packets).toBeGreaterThan(0);
      expect(x.node).not.toBe('local');
    }
    // the SSH connection carrying the capture is not in it
    const ssh = await runCli(['flows', out, '--json', '--filter', 'port == 22'], env);
    expect(ssh.stdout.trim()).toBe('');
  });

  it('follows a key log on the node (--node-keylog): the helper there streams its lines, and the node\'s TLS connections are decrypted', async () => {
    const node = lab.nodes[0]!;
    const env = { HOME: home, TAPSCOPE_HOME: join(home, 'data') };
    const dir = mkdtempSync(join(tmpdir(), 'tsc-ssh-nodekl-'));
    const server = { kill: (): void => undefined };
    try {
      await sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=node.tapscope.test',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
      const s = spawn('ip', ['netns', 'exec', node.ns, 'openssl', 's_server', '-accept', '8443', '-www', '-quiet', '-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem')], { stdio: 'ignore' });
      server.kill = () => s.kill();
      // (the key log on the node: the same file system here; a client creates it at its first connection, so it is made first)
      const keys = join(dir, 'node-sslkeys.log');
      writeFileSync(keys, '');
      const out = join(dir, 'nodekl.pcapng');
      const cap = startCli(['capture', '--target', `ssh://root@${node.ip}`, '--duration', '5', '--node-keylog', keys, '--out', out], env);
      await cap.waitFor(': capturing', 90_000);
      let ended = false;
      const exited = cap.exited.finally(() => { ended = true; });
      for (let i = 0; !ended; i++) {
        await sh('ip', ['netns', 'exec', node.ns, 'env', `SSLKEYLOGFILE=${keys}`, 'curl', '-sk', '--http1.1', '--max-time', '2', '--resolve', `node.tapscope.test:8443:${node.ip}`,
          `https://node.tapscope.test:8443/nk${i}`]);
        await new Promise((r) => setTimeout(r, 400));
      }
      expect(await exited, cap.stderr()).toBe(0);
      const said = /key log: (\d+) of (\d+) TLS connections decrypted; the secrets of \d+ connections? (are|is) written into/.exec(cap.stderr());
      expect(said, cap.stderr()).not.toBeNull();
      expect(Number(said![1])).toBeGreaterThanOrEqual(1);
      const f = await runCli(['flows', out, '--json', '--filter', 'dst.port == 8443'], env);
      const flows = f.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow);
      const decrypted = flows.filter((x) => x.tls?.keylog?.status === 'decrypted');
      expect(decrypted.length, f.stdout).toBe(Number(said![1]));
      // (the capture's end can cut the last connection after its answer's head: only a connection not seen closed may be
      // unfinished, and at most one is)
      expect(decrypted.filter((x) => x.tcp?.state !== 'closed').length, f.stdout).toBeLessThanOrEqual(1);
      for (const x of decrypted) {
        expect(x.node).toBe(node.ip);
        const cut = x.tcp?.state !== 'closed' && x.http[0]?.unfinished ? { unfinished: true } : {};
        expect(x.http, JSON.stringify(x.tcp)).toEqual([{ method: 'GET', host: 'node.tapscope.test:8443', path: expect.stringMatching(/^\/nk\d+$/), status: 200, ...cut }]);
      }
      // a key log the node does not have: its helper refuses it before it captures, and the capture fails saying so
      const missing = await runCli(['capture', '--target', `ssh://root@${node.ip}`, '--duration', '2', '--node-keylog', join(dir, 'missing.log'), '--out', join(dir, 'never.pcapng')], env);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain(`cannot read key log ${join(dir, 'missing.log')}: No such file or directory`);
    } finally {
      server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('check: reports the node as a capture would find it (root, BTF, the helper it would deploy), over SSH', async () => {
    const node = lab.nodes[0]!;
    const env = { HOME: home, TAPSCOPE_HOME: join(home, 'data') };
    // (the host key is known since the capture above accepted it)
    const r = await runCli(['check', '--target', `ssh://root@${node.ip}`, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([{
      node: node.ip, arch: 'x86_64', kernel: expect.any(String), btf: true, privileged: 'root', helperVersion: expect.stringMatching(/^tapscope-helper /), problems: [],
    }]);
    // an unknown host is refused as a capture would be, and says how to go on
    const stranger = mkdtempSync(join(tmpdir(), 'tsc-ssh-nohome-'));
    try {
      const unknown = await runCli(['check', '--target', `ssh://root@${node.ip}`], { ...env, HOME: stranger });
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/rerun with --accept-new-host-key to trust it\n[^]*\(E_HOST_KEY_UNKNOWN\)\n$/);
    } finally {
      rmSync(stranger, { recursive: true, force: true });
    }
  });
});
