// SSH lab for integration tests: real OpenSSH sshd processes, each in its own network namespace (a
// "node" with its own address, reached from the test over a veth pair), an optional jump host with a
// node behind it that only the jump host can reach, client keys (plain and passphrase-protected),
// throwaway users for the sudo cases, and the capture helper (the real one when built, else a stand-in).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Run { code: number | null; stdout: string; stderr: string }

export function sh(cmd: string, args: string[], input?: string | Buffer): Promise<Run> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.stdin.on('error', () => undefined);
    c.stdin.end(input);
    c.on('error', rej);
    c.on('close', (code) => res({ code, stdout, stderr }));
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await sh(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export interface SshNode {
  name: string;
  ns: string;
  ip: string;
  dir: string;
  hostKey: string;
  sshd: ChildProcess | null;
  /** the machine its sessions report (`uname -m`) when not this one's (SshLab.setArch) */
  arch?: string | null;
}

export interface SshLab {
  dir: string;
  nodes: SshNode[];
  /** Present with `jump: true`: `jump` is reachable from the test, `hidden` only from `jump`. */
  jump: SshNode | null;
  hidden: SshNode | null;
  key: string;
  encryptedKey: string;
  passphrase: string;
  users: { nopasswd: string; password: string; secret: string };
  sshConfig: string;
  knownHosts: string;
  helper: string;
  /** SHA256 fingerprint of a node's host key, as `ssh-keygen -lf` prints it. */
  fingerprint(node: SshNode): Promise<string>;
  /** Regenerates a node's host key and restarts its sshd (a "reinstalled" host). */
  rekey(node: SshNode): Promise<void>;
  /** Kills every sshd session process of a node (not the listener): the client sees its connection die. */
  cutSessions(node: SshNode): Promise<number>;
  /**
   * Makes a node's SSH sessions report another machine (`uname -m`), restarting its sshd; null: its own again. The
   * helper deployed for aarch64 runs here through qemu-user (binfmt_misc).
   */
  setArch(node: SshNode, arch: string | null): Promise<void>;
  /** Known-hosts lines for every node (plain), as `ssh-keyscan` would print them. */
  knownHostsLines(nodes?: SshNode[]): string;
  close(): Promise<void>;
}

const HERE = dirname(fileURLToPath(import.meta.url));
export const REAL_HELPER = resolve(HERE, '..', '..', 'resources', 'helper', 'linux-x64', 'tapscope-helper');
export const STANDIN_HELPER = join(HERE, 'helper-standin.sh');

/** The helper the tests deploy: the real build when present, else the dumpcap-based stand-in. */
export function testHelper(): string {
  return existsSync(REAL_HELPER) ? REAL_HELPER : STANDIN_HELPER;
}

/**
 * `id` (0-15) separates labs of different test files: namespaces are `tss-<id>-<n>`, node n gets
 * 10.204.<id*16+n>.2, the root side .1.
 */
export async function startSshLab(opts: { id: number; nodes: number; jump?: boolean; users?: boolean }): Promise<SshLab> {
  const { id } = opts;
  const prefix = `tss-${id}-`;
  await cleanupLeftovers(id);
  const dir = mkdtempSync('/tmp/tss-lab-');
  chmodSync(dir, 0o755);
  mkdirSync('/run/sshd', { recursive: true });
  const passphrase = 'tss-passphrase';
  const key = join(dir, 'id_ed25519');
  const encryptedKey = join(dir, 'id_enc');
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-f', encryptedKey]);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${key}.pub`, 'utf8') + readFileSync(`${encryptedKey}.pub`, 'utf8'));
  chmodSync(authorized, 0o644);
  const users = { nopasswd: 'tss-nopw', password: 'tss-pw', secret: 'tss-Secret-1' };
  const nodes: SshNode[] = [];
  const lab: SshLab = {
    dir, nodes, jump: null, hidden: null, key, encryptedKey, passphrase, users,
    sshConfig: join(dir, 'ssh_config'), knownHosts: join(dir, 'known_hosts'), helper: testHelper(),
    async fingerprint(node) {
      return (await must('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${node.hostKey}.pub`])).split(/\s+/)[1] as string;
    },
    async setArch(node, arch) {
      await stopSshd(node);
      node.arch = arch;
      await startSshd(node, authorized);
    },
    async rekey(node) {
      await stopSshd(node);
      rmSync(node.hostKey, { force: true });
      rmSync(`${node.hostKey}.pub`, { force: true });
      await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', node.hostKey]);
      await startSshd(node, authorized);
    },
    async cutSessions(node) {
      const pids = (await must('ip', ['netns', 'pids', node.ns])).split('\n').filter(Boolean).map(Number);
      let n = 0;
      for (const pid of pids) {
        if (pid === node.sshd?.pid) continue;
        let comm = '';
        try {
          comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          continue;
        }
        if (comm.startsWith('sshd')) {
          try {
            process.kill(pid, 'SIGKILL');
            n++;
          } catch {
            // already gone
          }
        }
      }
      return n;
    },
    knownHostsLines(list) {
      return (list ?? nodes).map((n) => {
        const [type, b64] = readFileSync(`${n.hostKey}.pub`, 'utf8').trim().split(/\s+/);
        return `${n.ip} ${type} ${b64}\n`;
      }).join('');
    },
    async close() {
      for (const n of nodes) await stopSshd(n);
      await cleanupLeftovers(id);
      if (opts.users) await removeUsers(users);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const mkNode = async (name: string, n: number): Promise<SshNode> => {
      const ns = `${prefix}${n}`;
      const subnet = `10.204.${id * 16 + n}`;
      await must('ip', ['netns', 'add', ns]);
      await must('ip', ['link', 'add', `tss${id}x${n}h`, 'type', 'veth', 'peer', 'name', `tss${id}x${n}n`]);
      await must('ip', ['link', 'set', `tss${id}x${n}n`, 'netns', ns]);
      await must('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', `tss${id}x${n}h`]);
      await must('ip', ['link', 'set', `tss${id}x${n}h`, 'up']);
      await must('ip', ['-n', ns, 'addr', 'add', `${subnet}.2/24`, 'dev', `tss${id}x${n}n`]);
      await must('ip', ['-n', ns, 'link', 'set', `tss${id}x${n}n`, 'up']);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      return makeNodeFiles(dir, name, ns, `${subnet}.2`);
    };
    for (let i = 0; i < opts.nodes; i++) nodes.push(await mkNode(`node${i}`, i));
    if (opts.jump) {
      const jump = await mkNode('jump', 13);
      // why: the hidden node has no link to the test's namespace, only one to the jump host.
      const ns = `${prefix}14`;
      const subnet = `10.204.${id * 16 + 14}`;
      await must('ip', ['netns', 'add', ns]);
      await must('ip', ['link', 'add', `tss${id}x14h`, 'type', 'veth', 'peer', 'name', `tss${id}x14n`]);
      await must('ip', ['link', 'set', `tss${id}x14h`, 'netns', jump.ns]);
      await must('ip', ['link', 'set', `tss${id}x14n`, 'netns', ns]);
      await must('ip', ['-n', jump.ns, 'addr', 'add', `${subnet}.1/24`, 'dev', `tss${id}x14h`]);
      await must('ip', ['-n', jump.ns, 'link', 'set', `tss${id}x14h`, 'up']);
      await must('ip', ['-n', ns, 'addr', 'add', `${subnet}.2/24`, 'dev', `tss${id}x14n`]);
      await must('ip', ['-n', ns, 'link', 'set', `tss${id}x14n`, 'up']);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      lab.jump = jump;
      lab.hidden = makeNodeFiles(dir, 'hidden', ns, `${subnet}.2`);
      nodes.push(jump, lab.hidden);
    }
    for (const n of await Promise.all(nodes.map((n) => makeHostKey(n)))) void n;
    for (const n of nodes) await startSshd(n, authorized);
    if (opts.users) await addUsers(users);
    writeFileSync(lab.knownHosts, '');
    return lab;
  } catch (e) {
    await lab.close().catch(() => undefined);
    throw e;
  }
}

function makeNodeFiles(dir: string, name: string, ns: string, ip: string): SshNode {
  const nd = join(dir, name);
  mkdirSync(nd, { recursive: true });
  // why: `ip netns exec` bind-mounts these over /etc: name lookups in the node answer locally and fast
  // instead of waiting for a DNS server the namespace cannot reach.
  mkdirSync(`/etc/netns/${ns}`, { recursive: true });
  writeFileSync(`/etc/netns/${ns}/hosts`, `127.0.0.1 localhost\n${ip} ${name}\n`);
  writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  return { name, ns, ip, dir: nd, hostKey: join(nd, 'ssh_host_ed25519_key'), sshd: null };
}

async function makeHostKey(n: SshNode): Promise<void> {
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', n.hostKey]);
}

/** A directory whose `uname` answers `-m` with the node's stand-in architecture (see SshLab.setArch). */
function fakeArch(n: SshNode): string {
  const bin = join(n.dir, 'fake-arch');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'uname'), `#!/bin/sh\n[ "$1" = "-m" ] && { echo ${n.arch}; exit 0; }\nexec /usr/bin/uname "$@"\n`, { mode: 0o755 });
  return bin;
}

async function startSshd(n: SshNode, authorized: string): Promise<void> {
  const conf = join(n.dir, 'sshd_config');
  writeFileSync(conf, [
    `ListenAddress ${n.ip}`,
    'Port 22',
    `HostKey ${n.hostKey}`,
    `PidFile ${join(n.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorized}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    'MaxStartups 100',
    'MaxSessions 50',
    'Subsystem sftp internal-sftp',
    'LogLevel ERROR',
    ...(n.arch ? [`SetEnv PATH=${fakeArch(n)}:/usr/sbin:/usr/bin:/sbin:/bin`] : []),
    '',
  ].join('\n'));
  n.sshd = spawn('ip', ['netns', 'exec', n.ns, '/usr/sbin/sshd', '-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  n.sshd.stderr?.on('data', () => undefined);
  // why: checked from inside the namespace, because the hidden node has no route from the test.
  const r = await sh('ip', ['netns', 'exec', n.ns, 'sh', '-c', 'for i in $(seq 200); do ss -ltn | grep -q ":22 " && exit 0; sleep 0.05; done; exit 1']);
  if (r.code !== 0) throw new Error(`sshd in ${n.ns} did not start`);
}

async function stopSshd(n: SshNode): Promise<void> {
  const p = n.sshd;
  n.sshd = null;
  if (!p || p.exitCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
}

async function addUsers(u: SshLab['users']): Promise<void> {
  await removeUsers(u);
  for (const name of [u.nopasswd, u.password]) {
    await must('useradd', ['-m', '-d', `/tmp/${name}-home`, '-s', '/bin/sh', name]);
    await must('chpasswd', [], `${name}:${u.secret}\n`);
  }
  const f = '/etc/sudoers.d/tss-test';
  writeFileSync(f, `${u.nopasswd} ALL=(ALL) NOPASSWD: ALL\n${u.password} ALL=(ALL) ALL\n`, { mode: 0o440 });
  await must('visudo', ['-c', '-f', f]);
}

async function removeUsers(u: SshLab['users']): Promise<void> {
  rmSync('/etc/sudoers.d/tss-test', { force: true });
  for (const name of [u.nopasswd, u.password]) {
    await sh('pkill', ['-KILL', '-u', name]);
    await sh('userdel', ['-r', '-f', name]);
    rmSync(`/tmp/${name}-home`, { recursive: true, force: true });
  }
}

/** Removes namespaces and veths of this lab id left by a crashed run. */
export async function cleanupLeftovers(id: number): Promise<void> {
  const list = (await sh('ip', ['netns', 'list'])).stdout;
  for (const line of list.split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    if (!ns.startsWith(`tss-${id}-`)) continue;
    const pids = (await sh('ip', ['netns', 'pids', ns])).stdout.split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sh('ip', ['netns', 'del', ns]);
  }
  for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) {
    if (d.startsWith(`tss-${id}-`)) rmSync(`/etc/netns/${d}`, { recursive: true, force: true });
  }
  const links = (await sh('ip', ['-o', 'link', 'show'])).stdout;
  for (const m of links.matchAll(new RegExp(`\\d+: (tss${id}x\\d+h)[@:]`, 'g'))) await sh('ip', ['link', 'del', m[1] as string]);
}
