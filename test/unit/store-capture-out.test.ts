// A capture into a file the user named (`tapscope capture --out FILE`): a capture that fails before its first byte, or
// is killed before it, leaves the file as it was and no session; one killed after it, even while a block is half
// received, leaves a valid capture; a second capture into a file another one writes is refused; an --out that cannot be
// written is a clear error before anything starts; and a node stream that turns malformed is reported with the saved
// file's offset (what reading it says).
// Real files, the real CoreService and SessionStore; the targets are a stand-in whose streams the test writes, and the
// real local target running fake helpers (shell scripts).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { spawn, spawnSync } from 'node:child_process';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { LocalTarget } from '../../src/targets/local.js';
import { TapscopeError } from '../../src/errors.js';
import { analyzeFiles, damageNote } from '../../src/flows/load.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import type { CaptureTarget } from '../../src/targets/target.js';
import { standInTarget } from '../lib/standin-target.js';
import { CaptureBuilder } from './core-packet-builder.js';

const ROOT = join(import.meta.dirname, '../..');
let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsc-capout-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** A helper's stream: a capture record and `n` UDP packets tagged with `tag` (its port). */
function stream(n: number, tag: number): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'test-host' });
  for (let i = 0; i < n; i++) b.udp({ src: '10.77.0.1', dst: '10.77.0.2', sport: tag, dport: 9000 + (i % 50), payload: Buffer.alloc(40, i) });
  return b.build();
}

/** A file the user cares about: a capture of their own, 30 packets. */
function precious(name: string): { path: string; bytes: Buffer } {
  const path = join(tmp, name);
  const bytes = stream(30, 1111);
  writeFileSync(path, bytes);
  return { path, bytes };
}

/** A fake helper: a shell script the real local target runs in place of tapscope-helper. */
function helper(name: string, body: string): string {
  const path = join(tmp, name);
  writeFileSync(path, `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  return path;
}

/** The real local target, running `helperPath` (as root needs no sudo: the decision is given, not probed). */
function localTarget(helperPath: string): () => CaptureTarget {
  return () => new LocalTarget({ helperPath, privilege: { via: 'root', prefix: [] } });
}

const packetsOf = async (path: string): Promise<number> => (await analyzeFiles([{ path }])).analyzer.counters.packets;

describe('a capture that fails before its first byte', () => {
  it('leaves the --out file as it was and no session, when the target cannot start (unreachable, wrong context, no sudo)', async () => {
    const root = join(tmp, 'unreachable');
    const out = precious('unreachable.pcapng');
    const empty = join(tmp, 'empty-but-mine.pcapng');
    writeFileSync(empty, '');
    const refusing: CaptureTarget = {
      ...standInTarget().target,
      start: async () => { throw new TapscopeError('E_TARGET_UNREACHABLE', 'cannot reach 127.0.0.1:2298 (ECONNREFUSED)'); },
    };
    const svc = new CoreService({ store: new SessionStore(root), createTarget: () => refusing });
    for (const file of [out.path, empty]) {
      await expect(svc.startCapture({ target: 'ssh://127.0.0.1:2298', mode: 'auto', ifaces: [], file })).rejects.toMatchObject({ code: 'E_TARGET_UNREACHABLE' });
    }
    // (a target that cannot even be made: a kubeconfig that is not there)
    const noTarget = new CoreService({ store: new SessionStore(root), createTarget: () => { throw new TapscopeError('E_KUBECONFIG', 'No kubeconfig found'); } });
    await expect(noTarget.startCapture({ target: 'k8s://ctx1', mode: 'auto', ifaces: [], file: out.path })).rejects.toMatchObject({ code: 'E_KUBECONFIG' });
    expect(readFileSync(out.path).equals(out.bytes)).toBe(true);
    // (an empty file of theirs is theirs too: it used to be removed as "a file that never received a byte")
    expect(existsSync(empty)).toBe(true);
    expect(await svc.listSessions()).toEqual([]);
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tapscope-lock'))).toEqual([]);
  });

  it('leaves it as it was when the helper fails after the target started (a bad --iface), and lists no 0-packet session', async () => {
    const root = join(tmp, 'bad-iface');
    const out = precious('bad-iface.pcapng');
    const failing = helper('bad-iface.sh', 'echo "tapscope-helper: no such interface: nosuchif0" >&2\necho "tapscope-helper: cannot set up packet capture" >&2\nexit 4');
    const svc = new CoreService({ store: new SessionStore(root), createTarget: localTarget(failing) });
    const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: ['nosuchif0'], file: out.path });
    expect(started.file).toBe(out.path);
    const end = await svc.waitForCapture(started.id);
    expect(readFileSync(out.path).equals(out.bytes)).toBe(true);
    expect(await svc.listSessions()).toEqual([]);
    expect(existsSync(`${out.path}.tapscope-lock`)).toBe(false);
    // (what the CLI is told: nothing was saved, and why)
    expect(end).toMatchObject({ saved: false, packets: 0, damaged: [] });
    expect(end.notes.join(' ')).toMatch(/no such interface: nosuchif0/);
    await svc.close();
  });

  it('leaves it as it was when its disk has no room for the first bytes (the capture stops, saying why)', async () => {
    const out = precious('no-room.pcapng');
    const t = standInTarget();
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'no-room')), createTarget: () => t.target });
    const prev = process.env.TAPSCOPE_KEEP_FREE;
    process.env.TAPSCOPE_KEEP_FREE = String(2 ** 60);
    try {
      const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [], file: out.path });
      const a = new PassThrough();
      t.handlers().onStream('node-a', a);
      a.write(stream(5, 1212));
      const end = await svc.waitForCapture(started.id);
      expect(readFileSync(out.path).equals(out.bytes)).toBe(true);
      expect(end.saved).toBe(false);
      expect(svc.diskStop(started.id)).toMatch(/^node-a: stopped writing .*no-room\.pcapng after 0 bytes: only .* would be left free/);
      expect(await svc.listSessions()).toEqual([]);
    } finally {
      if (prev === undefined) delete process.env.TAPSCOPE_KEEP_FREE;
      else process.env.TAPSCOPE_KEEP_FREE = prev;
      await svc.close();
    }
  });

  it('replaces the file once bytes come, and the session and its live analysis are that file', async () => {
    const root = join(tmp, 'delivers');
    const out = precious('delivers.pcapng');
    const t = standInTarget();
    const svc = new CoreService({ store: new SessionStore(root), createTarget: () => t.target });
    const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [], file: out.path });
    const a = new PassThrough();
    t.handlers().onStream('node-a', a);
    // (the stream has begun but no byte came: still theirs)
    await new Promise((r) => setImmediate(r));
    expect(readFileSync(out.path).equals(out.bytes)).toBe(true);
    a.end(stream(12, 2222));
    t.finish();
    const end = await svc.waitForCapture(started.id);
    expect(end).toMatchObject({ saved: true, packets: 12, file: out.path });
    expect(await packetsOf(out.path)).toBe(12);
    expect((await svc.listSessions()).map((s) => [s.file, s.packets])).toEqual([[out.path, 12]]);
    expect(existsSync(`${out.path}.tapscope-lock`)).toBe(false);
    await svc.close();
  });
});

describe('a capture killed with SIGKILL', () => {
  /** Runs a capture in a child process (the CLI's way: CoreService, the local target, a fake helper) and returns it once started. */
  async function captureInChild(root: string, helperPath: string, out: string): Promise<{ kill(): void; id: string }> {
    const script = join(tmp, 'capture-child.mts');
    writeFileSync(script, [
      `import { CoreService } from ${JSON.stringify(join(ROOT, 'src/service/core-service.js'))};`,
      `import { SessionStore } from ${JSON.stringify(join(ROOT, 'src/store/session-store.js'))};`,
      `import { LocalTarget } from ${JSON.stringify(join(ROOT, 'src/targets/local.js'))};`,
      'const [root, helperPath, out] = process.argv.slice(2);',
      "const svc = new CoreService({ store: new SessionStore(root), createTarget: () => new LocalTarget({ helperPath, privilege: { via: 'root', prefix: [] } }) });",
      "const s = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [], file: out });",
      'process.stdout.write(`${s.id}\\n`);',
      'await svc.waitForCapture(s.id);',
    ].join('\n'));
    const child = spawn(process.execPath, ['--import', 'tsx', script, root, helperPath, out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const id = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) resolve(text.trim());
      });
      child.on('exit', (code) => reject(new Error(`the capture exited (${code}) before it started`)));
    });
    return { id, kill: () => child.kill('SIGKILL') };
  }

  /** Ends the fake helper a killed capture left running (it wrote its pid). */
  function endHelper(pidFile: string): void {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // (it has ended)
    }
  }

  async function until(what: () => boolean, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('before its first byte leaves the file as it was; after it, a valid capture; the killed one\'s lock does not block the next', async () => {
    const root = join(tmp, 'killed');
    const out = precious('killed.pcapng');
    const bytes = join(tmp, 'killed-stream.bin');
    writeFileSync(bytes, stream(25, 3333));
    const pidA = join(tmp, 'helper-a.pid');
    const pidB = join(tmp, 'helper-b.pid');
    // A: its first bytes would come after 20 s; B: at once, then it keeps capturing. (Each ends soon after the capture
    // running it is killed, as the real helper does at its next write.)
    const alive = 'kill -0 $PPID 2>/dev/null';
    const slow = helper('slow.sh', `echo $$ > ${pidA}\necho "tapscope-helper: capturing" >&2\nfor i in $(seq 200); do ${alive} || exit 0; sleep 0.1; done\ncat ${bytes}`);
    const quick = helper('quick.sh', `echo $$ > ${pidB}\necho "tapscope-helper: capturing" >&2\ncat ${bytes}\nwhile ${alive}; do sleep 0.1; done`);
    try {
      const a = await captureInChild(root, slow, out.path);
      await until(() => existsSync(pidA));
      a.kill();
      await new Promise((r) => setTimeout(r, 300));
      expect(readFileSync(out.path).equals(out.bytes)).toBe(true);
      const listed = await new CoreService({ store: new SessionStore(root) }).listSessions();
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ id: a.id, packets: 0, endedAt: null });
      expect(listed[0]!.notes).toContainEqual(expect.stringMatching(/^the capture was interrupted before its first byte .*left as it was$/));
      // (its lock is still there: its process is gone)
      expect(existsSync(`${out.path}.tapscope-lock`)).toBe(true);

      const b = await captureInChild(root, quick, out.path);
      // (B's stream, with the node record after its SHB, has replaced the 30 packets that were there)
      await until(() => statSync(out.path).size >= readFileSync(bytes).length && !readFileSync(out.path).equals(out.bytes));
      // (the fsync runs about once a second: the bytes are in the file, if not yet on the disk, either way a reader sees them)
      b.kill();
      await new Promise((r) => setTimeout(r, 300));
      expect(await packetsOf(out.path)).toBe(25);
      const after = await new CoreService({ store: new SessionStore(root) }).listSessions();
      const killed = after.find((s) => s.id === b.id)!;
      expect(killed).toMatchObject({ packets: 25, file: out.path, endedAt: null });
      expect(killed.notes).toContainEqual(expect.stringMatching(/^the capture was interrupted \(its process is gone/));
    } finally {
      endHelper(pidA);
      endHelper(pidB);
    }
  }, 60_000);

  it('while a block is half received leaves the blocks before it only: tshark reads the file without a warning', async () => {
    const root = join(tmp, 'killed-midblock');
    const out = join(tmp, 'killed-midblock.pcapng');
    // (25 packets and half of a 26th, then the helper waits, as one whose next bytes have not come; a block's length is
    // also its last 4 bytes)
    const all = stream(26, 4444);
    const last = all.readUInt32LE(all.length - 4);
    const bytes = all.subarray(0, all.length - last);
    const half = join(tmp, 'half-stream.bin');
    writeFileSync(half, all.subarray(0, all.length - last / 2));
    const pid = join(tmp, 'helper-half.pid');
    const alive = 'kill -0 $PPID 2>/dev/null';
    const h = helper('half.sh', `echo $$ > ${pid}\necho "tapscope-helper: capturing" >&2\ncat ${half}\nwhile ${alive}; do sleep 0.1; done`);
    try {
      const c = await captureInChild(root, h, out);
      await until(() => existsSync(out) && statSync(out).size >= bytes.length);
      // (the half block had time to come: its bytes are held, not written)
      await new Promise((r) => setTimeout(r, 300));
      c.kill();
      await new Promise((r) => setTimeout(r, 300));
      const t = spawnSync('tshark', ['-r', out, '-Y', 'udp', '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
      expect([t.status, t.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Running as user'))]).toEqual([0, []]);
      expect(t.stdout.split('\n').filter(Boolean)).toHaveLength(25);
    } finally {
      endHelper(pid);
    }
  }, 60_000);
});

describe('two captures into the same file', () => {
  it('refuses the second while the first writes it; the first\'s file is whole, and the file is free again after', async () => {
    const root = join(tmp, 'two');
    const out = join(tmp, 'two.pcapng');
    const t1 = standInTarget();
    const first = new CoreService({ store: new SessionStore(root), createTarget: () => t1.target });
    const s1 = await first.startCapture({ target: 'local', mode: 'afpacket', ifaces: ['lo'], file: out });
    const a = new PassThrough();
    t1.handlers().onStream('node-a', a);
    a.write(stream(40, 4444));
    // another process's capture (another service, the same machine) into the same file
    const t2 = standInTarget();
    const second = new CoreService({ store: new SessionStore(join(tmp, 'two-other')), createTarget: () => t2.target });
    const refused = second.startCapture({ target: 'local', mode: 'afpacket', ifaces: ['lo'], file: out });
    await expect(refused).rejects.toMatchObject({ code: 'E_CAPTURE_OUT' });
    await expect(refused).rejects.toThrow(new RegExp(`^${out.replace(/[.]/g, '\\.')} is being written by another capture \\(session ${s1.id}, process ${process.pid}\\)`));
    expect(await second.listSessions()).toEqual([]);
    a.end();
    t1.finish();
    expect((await first.waitForCapture(s1.id)).packets).toBe(40);
    expect(await packetsOf(out)).toBe(40);
    // (a lock left by a capture that was killed, whose process is gone, is taken over)
    writeFileSync(`${out}.tapscope-lock`, JSON.stringify({ pid: spawnSync('true').pid, host: (await import('node:os')).hostname(), start: null, session: 'gone' }));
    const s2 = await second.startCapture({ target: 'local', mode: 'afpacket', ifaces: ['lo'], file: out });
    t2.finish();
    await second.waitForCapture(s2.id);
    await first.close();
    await second.close();
  });
});

describe('the other nodes\' files beside the file', () => {
  it('replace what a killed capture into the same file left under their names', async () => {
    const out = join(tmp, 'nodes.pcapng');
    // (a killed capture's node-b file: 9 packets that are not this capture's)
    writeFileSync(join(tmp, 'nodes.node-b.pcapng'), stream(9, 8888));
    const t = standInTarget();
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'nodes')), createTarget: () => t.target });
    const started = await svc.startCapture({ target: 'k8s://test', mode: 'afpacket', ifaces: [], file: out });
    for (const [node, n] of [['node-a', 4], ['node-b', 6]] as const) {
      const s = new PassThrough();
      t.handlers().onStream(node, s);
      s.end(stream(n, 9999));
    }
    t.finish();
    expect((await svc.waitForCapture(started.id)).packets).toBe(10);
    const read = await analyzeFiles([{ path: out }]);
    expect([read.analyzer.counters.packets, read.damaged, read.notes]).toEqual([10, [], []]);
    expect(existsSync(join(tmp, 'nodes.node-b.pcapng'))).toBe(false);
    await svc.close();
  });
});

describe('an --out that cannot be written', () => {
  it('is a clear error before the capture starts, and leaves no session folder', async () => {
    const root = join(tmp, 'bad-out');
    const t = standInTarget();
    let made = 0;
    const svc = new CoreService({ store: new SessionStore(root), createTarget: () => { made++; return t.target; } });
    const dir = join(tmp, 'capdir');
    mkdirSync(dir);
    await expect(svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [], file: dir })).rejects.toMatchObject({
      code: 'E_CAPTURE_OUT', message: `cannot capture into ${dir}: it is a directory; name a file in it, e.g. ${join(dir, 'capture.pcapng')}`,
    });
    const notAFolder = join(tmp, 'regular-file');
    writeFileSync(notAFolder, 'x');
    await expect(svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [], file: join(notAFolder, 'c.pcapng') })).rejects.toMatchObject({
      code: 'E_CAPTURE_OUT', message: `cannot capture into ${join(notAFolder, 'c.pcapng')}: a part of its path is not a folder`,
    });
    expect(made).toBe(0);
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  });
});

describe('a node stream that turns malformed during the capture', () => {
  /** `bytes` with 64 bytes of garbage put before its `k`-th block. */
  function damaged(bytes: Buffer, k: number): Buffer {
    const at = parseBuffer(bytes)[k]!.offset;
    return Buffer.concat([bytes.subarray(0, at), Buffer.alloc(64, 0xff), bytes.subarray(at)]);
  }

  it('is reported as the saved file\'s damage, at the offset reading the file gives, for the first node and one merged after it', async () => {
    for (const which of ['node-a', 'node-b'] as const) {
      const root = join(tmp, `damage-${which}`);
      const out = join(tmp, `damage-${which}.pcapng`);
      const t = standInTarget();
      const svc = new CoreService({ store: new SessionStore(root), createTarget: () => t.target });
      const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [], file: out });
      const a = new PassThrough();
      const b = new PassThrough();
      t.handlers().onStream('node-a', a);
      t.handlers().onStream('node-b', b);
      const good = stream(20, 5555);
      const bad = damaged(stream(20, 6666), 10);
      // (in odd chunks, as a pipe gives them)
      const feed = (s: PassThrough, bytes: Buffer): void => { for (let i = 0; i < bytes.length; i += 97) s.write(bytes.subarray(i, i + 97)); s.end(); };
      feed(a, which === 'node-a' ? bad : good);
      feed(b, which === 'node-b' ? bad : good);
      t.finish();
      const end = await svc.waitForCapture(started.id);
      const read = await analyzeFiles([{ path: out }]);
      expect(read.damaged).toHaveLength(1);
      expect(end.damaged).toEqual(read.damaged);
      expect(end.damaged[0]!.message).toMatch(/^block length 4294967295 .* at offset \d+$/);
      expect(end.notes).toContain(damageNote(read.damaged[0]!));
      expect(end.losses).toContain(damageNote(read.damaged[0]!));
      // (the damaged stream was counted up to its damage, as the file is read; with the first node's damaged, reading the
      // merged file stops there and does not reach the next node's section)
      if (which === 'node-b') expect(end.packets).toBe(read.analyzer.counters.packets);
      // (the reopened session says the same, once)
      const listed = (await new CoreService({ store: new SessionStore(root) }).listSessions())[0]!;
      expect(listed.notes.filter((n) => n.includes('damaged'))).toEqual([damageNote(read.damaged[0]!)]);
      await svc.close();
    }
  });

  it('a good capture ends with no damage', async () => {
    const t = standInTarget();
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'no-damage')), createTarget: () => t.target });
    const started = await svc.startCapture({ target: 'local', mode: 'afpacket', ifaces: [] });
    const a = new PassThrough();
    t.handlers().onStream('node-a', a);
    a.end(stream(5, 7777));
    t.finish();
    expect(await svc.waitForCapture(started.id)).toMatchObject({ damaged: [], saved: true, packets: 5 });
    await svc.close();
  });
});
