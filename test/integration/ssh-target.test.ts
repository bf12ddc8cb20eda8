// The SSH target against real OpenSSH sshd processes in private network namespaces: host-key policy,
// every authentication path, sudo, ProxyJump, capture of traffic made inside the node, a connection
// cut in the middle of a capture, and a clean remote /tmp afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { createSshTarget, type SshTargetOptions } from '../../src/targets/ssh.js';
import { isTapscopeError } from '../../src/errors.js';
import type { CaptureHandle, CaptureMode, NodeStatus, Prompt, StreamGap } from '../../src/targets/target.js';
import { sh, startSshLab, type SshLab, type SshNode } from '../lib/sshd.js';
import { until } from '../lib/until.js';

let lab: SshLab;
const servers: ChildProcess[] = [];

beforeAll(async () => {
  lab = await startSshLab({ id: 1, nodes: 2, jump: true, users: true });
  const n0 = lab.nodes[0] as SshNode;
  const hidden = lab.hidden as SshNode;
  writeFileSync(lab.sshConfig, [
    'Host jumpbox',
    `  HostName ${(lab.jump as SshNode).ip}`,
    '  User root',
    `  IdentityFile ${lab.key}`,
    'Host hidden',
    `  HostName ${hidden.ip}`,
    '  ProxyJump jumpbox',
    '  User root',
    `  IdentityFile ${lab.key}`,
    'Host pw-only',
    `  HostName ${n0.ip}`,
    '  IdentityFile none',
    'Host enc',
    `  HostName ${n0.ip}`,
    '  User root',
    `  IdentityFile ${lab.encryptedKey}`,
    'Host agent-only',
    `  HostName ${n0.ip}`,
    '  User root',
    '  IdentityFile none',
    'Host * !pw-only !agent-only',
    `  IdentityFile ${lab.key}`,
    '',
  ].join('\n'));
  for (const n of [n0, hidden]) {
    // A small HTTP server inside the node: traffic the capture must see.
    const p = spawn('ip', ['netns', 'exec', n.ns, 'python3', '-m', 'http.server', '18080', '--bind', n.ip], { stdio: 'ignore' });
    servers.push(p);
  }
});

afterAll(async () => {
  for (const s of servers) s.kill('SIGKILL');
  await lab?.close();
});

function opts(extra: SshTargetOptions = {}): SshTargetOptions {
  return { sshConfigPath: lab.sshConfig, knownHostsPath: lab.knownHosts, helperPath: lab.helper, ...extra };
}

function trustAll(): void {
  writeFileSync(lab.knownHosts, lab.knownHostsLines());
}

function tapscopeDirs(): string[] {
  return readdirSync('/tmp').filter((f) => f.startsWith('tapscope.')).sort();
}

interface Recorder {
  sections: Buffer[][];
  statuses: NodeStatus[];
  gaps: StreamGap[];
  nodes: string[];
  all(): Buffer;
  ended: boolean[];
}

function recorder(): Recorder & { handlers: Parameters<ReturnType<typeof createSshTarget>['start']>[1] } {
  const r: Recorder = {
    sections: [], statuses: [], gaps: [], nodes: [], ended: [],
    all: () => Buffer.concat(r.sections.flat()),
  };
  return {
    ...r,
    handlers: {
      onStatus: (s) => r.statuses.push(s),
      onGap: (g) => r.gaps.push(g),
      onStream: (node: string, s: Readable) => {
        const chunks: Buffer[] = [];
        const idx = r.sections.push(chunks) - 1;
        r.nodes.push(node);
        r.ended[idx] = false;
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('end', () => (r.ended[idx] = true));
      },
    },
  };
}

/**
 * Makes HTTP requests inside the node until a request line with the marker shows up in the captured bytes (the
 * stream passes whole blocks only, so that is a whole packet). Not the bare marker: the helper's process records
 * carry curl's command line, which holds it too, and can arrive before the packets (or without them, when the
 * connection is cut next).
 */
async function trafficSeen(node: SshNode, rec: Recorder, marker: string, section?: number): Promise<void> {
  await until(`${marker} in the capture`, async () => {
    await sh('ip', ['netns', 'exec', node.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '2', `http://${node.ip}:18080/${marker}`]);
    const bytes = section === undefined ? rec.all() : Buffer.concat(rec.sections[section] ?? []);
    return bytes.includes(`GET /${marker} HTTP/1.1`);
  }, 60).catch((e: unknown) => {
    writeFileSync(`/tmp/tss-fail-${marker}.pcapng`, rec.all());
    throw new Error(`${String(e)}; captured ${rec.all().length} bytes; statuses ${JSON.stringify(rec.statuses)}`);
  });
}

async function tsharkUris(bytes: Buffer): Promise<string[]> {
  const f = `${lab.dir}/capture-${Date.now()}.pcapng`;
  writeFileSync(f, bytes);
  const r = await sh('tshark', ['-r', f, '-Y', 'http.request', '-T', 'fields', '-e', 'http.request.uri']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('host keys', () => {
  it('refuses an unknown host key with its SHA256 fingerprint, then records it when accepted', async () => {
    writeFileSync(lab.knownHosts, '');
    const n = lab.nodes[1] as SshNode;
    const fp = await lab.fingerprint(n);
    const t = createSshTarget(`ssh://root@${n.ip}`, opts());
    const err = await t.listNodes().then(() => null, (e: unknown) => e);
    expect(isTapscopeError(err, 'E_HOST_KEY_UNKNOWN')).toBe(true);
    expect((err as Error).message).toContain(fp);

    const asked: Prompt[] = [];
    const t2 = createSshTarget(`ssh://root@${n.ip}`, opts({ prompt: async (p) => (asked.push(p), p.kind === 'host-key') }));
    const nodes = await t2.listNodes();
    await t2.close();
    expect(asked.map((p) => [p.kind, p.fingerprint])).toEqual([['host-key', fp]]);
    expect(nodes[0]).toMatchObject({ name: n.ip, ready: true, arch: 'x86_64' });
    expect(readFileSync(lab.knownHosts, 'utf8')).toMatch(new RegExp(`^${n.ip.replace(/\./g, '\\.')} ssh-ed25519 `, 'm'));

    // Now known: no prompt, no flag needed.
    const t3 = createSshTarget(`ssh://root@${n.ip}`, opts());
    expect((await t3.listNodes())[0]?.kernel).toBeTruthy();
    await t3.close();
  });

  it('refuses a changed host key even when new keys would be accepted', async () => {
    const n = lab.nodes[1] as SshNode;
    trustAll();
    await lab.rekey(n);
    const fp = await lab.fingerprint(n);
    const t = createSshTarget(`ssh://root@${n.ip}`, opts({ acceptNewHostKey: true, prompt: async () => true }));
    const err = await t.listNodes().then(() => null, (e: unknown) => e);
    expect(isTapscopeError(err, 'E_HOST_KEY_CHANGED')).toBe(true);
    expect((err as Error).message).toContain(fp);
    trustAll();
  });
});

describe('authentication', () => {
  it('asks for the passphrase of an encrypted key', async () => {
    trustAll();
    const asked: string[] = [];
    const t = createSshTarget('ssh://enc', opts({ prompt: async (p) => (asked.push(p.kind), p.kind === 'passphrase' ? lab.passphrase : null) }));
    const [node] = await t.listNodes();
    await t.close();
    expect(asked).toEqual(['passphrase']);
    expect(node?.address).toBe((lab.nodes[0] as SshNode).ip);
  });

  it('logs in with a password, and fails with E_AUTH_FAILED on a wrong one', async () => {
    trustAll();
    const asked: string[] = [];
    const good = createSshTarget(`ssh://${lab.users.password}@pw-only`, opts({ prompt: async (p) => (asked.push(p.kind), p.kind === 'password' ? lab.users.secret : null) }));
    const [pre] = await good.preflight();
    await good.close();
    expect(asked).toEqual(['password']);
    expect(pre?.privileged).toBe('sudo-password');
    expect(pre?.helperVersion).toMatch(/^tapscope-helper \d+\.\d+\.\d+/);
    const bad = createSshTarget(`ssh://${lab.users.password}@pw-only`, opts({ prompt: async (p) => (p.kind === 'password' ? 'wrong' : null) }));
    const err = await bad.listNodes().then(() => null, (e: unknown) => e);
    expect(isTapscopeError(err, 'E_AUTH_FAILED'), String(err)).toBe(true);
  });
});

// why: afpacket except where stated: eBPF TLS hooks are host-wide, and every "node" here shares one
// kernel with the other tests; one capture runs in auto mode to cover the eBPF path through SSH.
describe('ssh-agent', () => {
  it('authenticates with a key held by ssh-agent (SSH_AUTH_SOCK) and fails without it', async () => {
    trustAll();
    const sock = `${lab.dir}/agent.sock`;
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    const saved = process.env.SSH_AUTH_SOCK;
    try {
      await until('ssh-agent socket', () => existsSync(sock));
      const add = spawnSync('ssh-add', [lab.key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
      expect(add.status, add.stderr.toString()).toBe(0);
      delete process.env.SSH_AUTH_SOCK;
      const without = await createSshTarget('ssh://agent-only', opts()).listNodes().then(() => null, (e: unknown) => e);
      expect(isTapscopeError(without, 'E_AUTH_FAILED'), String(without)).toBe(true);
      process.env.SSH_AUTH_SOCK = sock;
      const t = createSshTarget('ssh://agent-only', opts());
      expect((await t.listNodes())[0]?.name).toBe('agent-only');
      await t.close();
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
      agent.kill();
    }
  });
});

async function captureOnce(uri: string, node: SshNode, o: SshTargetOptions, marker: string, mode: CaptureMode = 'afpacket'): Promise<{ rec: Recorder; handle: CaptureHandle; uris: string[] }> {
  const before = tapscopeDirs();
  const t = createSshTarget(uri, o);
  const rec = recorder();
  const handle = await t.start({ mode, ifaces: [] }, rec.handlers);
  await trafficSeen(node, rec, marker);
  await handle.stop();
  await handle.done;
  await t.close();
  expect(tapscopeDirs()).toEqual(before);
  return { rec, handle, uris: await tsharkUris(rec.all()) };
}

describe('capture', () => {
  it('captures traffic made inside the node as root, tagged with the node, excluding its own SSH connection', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    const { rec, handle, uris } = await captureOnce(`ssh://root@${n.ip}`, n, opts(), 'tss-root-marker', 'auto');
    expect(rec.nodes).toEqual([n.ip]);
    expect(uris).toContain('/tss-root-marker');
    expect(handle.notes.join(' ')).toMatch(/SSH connection .* excluded/);
    expect(rec.statuses.map((s) => s.phase)).toContain('streaming');
    expect(rec.statuses.at(-1)?.phase).toBe('stopped');
    // The capture must not contain its own transport: no SSH packets to port 22 of the node.
    const f = `${lab.dir}/own.pcapng`;
    writeFileSync(f, rec.all());
    const ssh = await sh('tshark', ['-r', f, '-Y', `tcp.port == 22`, '-T', 'fields', '-e', 'frame.number']);
    expect(ssh.stdout.trim()).toBe('');
  });

  it('deploys the aarch64 helper to an aarch64 host (here under qemu-user: AF_PACKET, saying why) and refuses a host of an architecture without one', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    await lab.setArch(n, 'aarch64');
    try {
      const t = createSshTarget(`ssh://root@${n.ip}`, opts());
      try {
        const [pre] = await t.preflight();
        expect(pre!.arch).toBe('aarch64');
        // (the aarch64 helper has eBPF too: nothing to warn about)
        expect(pre!.problems.filter((p) => /aarch64|AF_PACKET/.test(p))).toEqual([]);
      } finally {
        await t.close();
      }
      const { rec, uris } = await captureOnce(`ssh://root@${n.ip}`, n, opts(), 'tss-arm-marker', 'auto');
      expect(uris).toContain('/tss-arm-marker');
      expect(rec.all().toString('latin1')).toMatch(/"t":"capture","v":1,"helper":"[^"]*","mode":"afpacket","requestedMode":"auto","reason":"auto: the kernel is x86_64 but this helper is aarch64 \(run under emulation/);
      await lab.setArch(n, 's390x');
      const s390 = createSshTarget(`ssh://root@${n.ip}`, opts());
      try {
        const e = await s390.start({ mode: 'auto', ifaces: [] }, recorder().handlers).then(() => null, (x: unknown) => x);
        expect(isTapscopeError(e, 'E_KERNEL_UNSUPPORTED'), String(e)).toBe(true);
        expect((e as Error).message).toBe(`${n.ip} is s390x; this build has no helper for it (x86_64 and aarch64 only).`);
      } finally {
        await s390.close();
      }
    } finally {
      await lab.setArch(n, null);
    }
  });

  it('captures as a non-root user through sudo -n (NOPASSWD)', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    const { uris } = await captureOnce(`ssh://${lab.users.nopasswd}@${n.ip}`, n, opts(), 'tss-sudo-n');
    expect(uris).toContain('/tss-sudo-n');
  });

  it('captures through sudo with a password asked once', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    const asked: string[] = [];
    const prompt = async (p: Prompt) => {
      asked.push(p.kind);
      return p.kind === 'password' || p.kind === 'sudo-password' ? lab.users.secret : null;
    };
    const { uris } = await captureOnce(`ssh://${lab.users.password}@pw-only`, n, opts({ prompt }), 'tss-sudo-pw');
    expect(uris).toContain('/tss-sudo-pw');
    expect(asked.filter((k) => k === 'sudo-password')).toHaveLength(1);
  });

  it('captures on a node reachable only through a ProxyJump host', async () => {
    trustAll();
    const hidden = lab.hidden as SshNode;
    // The hidden node is not reachable directly.
    const direct = createSshTarget(`ssh://root@${hidden.ip}`, opts());
    const err = await direct.listNodes().then(() => null, (e: unknown) => e);
    expect(isTapscopeError(err, 'E_TARGET_UNREACHABLE')).toBe(true);
    const { rec, uris } = await captureOnce('ssh://hidden', hidden, opts(), 'tss-behind-jump');
    expect(rec.nodes).toEqual(['hidden']);
    expect(uris).toContain('/tss-behind-jump');
  });

  it('reports a gap when the connection is cut mid-capture, reconnects, resumes and keeps the data', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    const before = tapscopeDirs();
    const t = createSshTarget(`ssh://root@${n.ip}`, opts({ backoffMs: { first: 200, max: 1000 } }));
    const rec = recorder();
    const handle = await t.start({ mode: 'afpacket', ifaces: [] }, rec.handlers);
    await trafficSeen(n, rec, 'tss-before-cut', 0);
    expect(await lab.cutSessions(n)).toBeGreaterThan(0);
    await until('a second stream', () => rec.sections.length >= 2);
    expect(rec.ended[0]).toBe(true);
    await trafficSeen(n, rec, 'tss-after-cut', 1);
    await handle.stop();
    await handle.done;
    await t.close();
    expect(rec.gaps[0]).toMatchObject({ node: n.ip, toMs: null });
    const resumed = rec.gaps.find((g) => g.toMs !== null);
    expect(resumed && resumed.toMs! >= resumed.fromMs).toBe(true);
    expect(rec.statuses.map((s) => s.phase)).toContain('reconnecting');
    const uris = await tsharkUris(rec.all());
    expect(uris).toEqual(expect.arrayContaining(['/tss-before-cut', '/tss-after-cut']));
    await until('temp dirs removed', () => tapscopeDirs().join() === before.join(), 50);
  });
});

describe('stop', () => {
  it('kills a helper that ignores SIGTERM and says its last packets and statistics are missing, not a clean stop', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    // (answers --version as the real helper, writes a capture, then ignores the stop's signals: `exec` keeps them ignored
    // in the sleep, and -a keeps the helper's argv[0], by which the stop knows its process)
    const stub = `${lab.dir}/stubborn-helper`;
    const capture = resolve('test/fixtures/pcapng/lo-udp.pcapng');
    writeFileSync(stub, `#!/bin/bash\nif [ "$1" = --version ]; then exec ${lab.helper} --version; fi\ntrap '' TERM INT\ncat ${capture}\nexec -a "$0" sleep 61.25\n`, { mode: 0o755 });
    const before = tapscopeDirs();
    const t = createSshTarget(`ssh://root@${n.ip}`, opts({ helperPath: stub }));
    const rec = recorder();
    const handle = await t.start({ mode: 'afpacket', ifaces: [] }, rec.handlers);
    await until('the stub says it is capturing', () => rec.statuses.some((s) => s.phase === 'streaming'), 30);
    await handle.stop();
    await handle.done;
    await t.close();
    expect(handle.notes.join('\n')).toMatch(/did not stop within 5 s of its input closing and was killed \(it ignored SIGTERM\): the packets it had not yet sent and its final statistics are missing/);
    expect(spawnSync('pgrep', ['-f', 'sleep 61.25']).status).toBe(1);
    expect(tapscopeDirs()).toEqual(before);
  }, 60_000);
});

describe('link loss', () => {
  it('notices a dead link by keepalive, resumes when it is back, and kills the orphaned helper', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    const hostSide = `tss1x0h`;
    const before = tapscopeDirs();
    const t = createSshTarget(`ssh://root@${n.ip}`, opts({ keepaliveMs: 300, backoffMs: { first: 200, max: 500 } }));
    const rec = recorder();
    const handle = await t.start({ mode: 'afpacket', ifaces: [] }, rec.handlers);
    try {
      await trafficSeen(n, rec, 'tss-before-link-down', 0);
      await sh('ip', ['link', 'set', hostSide, 'down']);
      await until('the gap to be reported', () => rec.gaps.length > 0);
      expect(rec.gaps[0]).toMatchObject({ node: n.ip, toMs: null });
      // The old session is still alive on the node (its TCP peer vanished silently), helper included.
      expect(tapscopeDirs().length).toBeGreaterThan(before.length);
    } finally {
      await sh('ip', ['link', 'set', hostSide, 'up']);
    }
    await until('a second stream', () => rec.sections.length >= 2, 300);
    await trafficSeen(n, rec, 'tss-after-link-up', 1);
    // Only the new helper's dir remains: the orphan was signalled through its pid file.
    await until('the orphaned helper dir to go', () => tapscopeDirs().length === before.length + 1, 100);
    await handle.stop();
    await handle.done;
    await t.close();
    await until('temp dirs removed', () => tapscopeDirs().join() === before.join(), 50);
    expect(rec.gaps.some((g) => g.toMs !== null)).toBe(true);
  });
});

describe('shell', () => {
  it('opens an interactive PTY shell', async () => {
    trustAll();
    const n = lab.nodes[0] as SshNode;
    const t = createSshTarget(`ssh://root@${n.ip}`, opts());
    const shell = await t.openShell(n.ip);
    let out = '';
    shell.onData((d) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => shell.onExit(r));
    shell.write('tty; echo tss-$((6*7)); exit 3\n');
    expect(await exited).toBe(3);
    await t.close();
    expect(out).toContain('tss-42');
    expect(out).toMatch(/\/dev\/pts\//);
  });
});
