// "Open in Wireshark": a live capture reaches Wireshark from its first packet and is followed until it ends; a saved
// session opens as its pcapng export; a missing Wireshark is a clear error. tshark stands in for Wireshark's window:
// a wrapper maps wireshark's command line (`-k -i -`, `-r FILE`) onto it, so what Wireshark would read is read and
// checked by Wireshark's own engine.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { appendFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSHARK_TLS_PORTS, createLab, run, startHttpsServers, uniquePrefix, type HttpsServers, type Lab } from '../lib/lab.js';
import { until } from '../lib/until.js';
import { helloCount, pipeReaderEnded, wiresharkStandIn } from '../lib/wireshark-standin.js';
import { CaptureBuilder } from '../unit/core-packet-builder.js';
import { findWireshark, followInWireshark } from '../../src/service/wireshark.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { isTapscopeError } from '../../src/errors.js';

let dir: string;
let wrapper: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsc-ws-'));
  wrapper = wiresharkStandIn(dir);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** tshark's reading of a file: each packet's interface name. */
async function interfaceNames(file: string): Promise<string[]> {
  const r = await run('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.interface_name'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('findWireshark', () => {
  it('takes TAPSCOPE_WIRESHARK (a path, or a name on PATH), else wireshark on PATH, and says what to do when there is none', () => {
    expect(findWireshark({ TAPSCOPE_WIRESHARK: wrapper, PATH: '' })).toBe(wrapper);
    expect(findWireshark({ TAPSCOPE_WIRESHARK: 'wireshark', PATH: `/nonexistent:${dir}` })).toBe(wrapper);
    expect(findWireshark({ PATH: dir })).toBe(wrapper);
    const missing = (env: NodeJS.ProcessEnv): unknown => { try { return findWireshark(env); } catch (e) { return e; } };
    const none = missing({ PATH: '/nonexistent' });
    expect(isTapscopeError(none, 'E_WIRESHARK_NOT_FOUND')).toBe(true);
    expect((none as Error).message).toMatch(/install it .*or set TAPSCOPE_WIRESHARK/);
    expect((missing({ TAPSCOPE_WIRESHARK: join(dir, 'nope'), PATH: dir }) as Error).message).toMatch(/TAPSCOPE_WIRESHARK names .*nope, which is not an executable file$/);
  });
});

describe('followInWireshark', () => {
  it('feeds growing node files from their first block until they end, merged into one section, and no further', async () => {
    const out = join(dir, 'follow.pcapng');
    process.env.WS_OUT = out;
    const files = { 'node-a': join(dir, 'node-a.pcapng'), 'node-b': join(dir, 'node-b.pcapng') };
    const builders = { 'node-a': new CaptureBuilder(), 'node-b': new CaptureBuilder() };
    const written = { 'node-a': 0, 'node-b': 0 };
    let sport = 40000;
    const grow = (n: number): void => {
      for (const node of ['node-a', 'node-b'] as const) {
        for (let i = 0; i < n; i++) builders[node].udp({ src: '10.9.0.1', dst: '10.9.0.2', sport: sport++, dport: 53, payload: Buffer.from(node) });
        const blocks = builders[node].take();
        appendFileSync(files[node], blocks);
        written[node] += blocks.length;
      }
    };
    grow(3);
    let ended = false;
    const ws = followInWireshark(wrapper, {
      files: () => (['node-a', 'node-b'] as const).map((node) => ({ node, path: files[node], written: written[node] })),
      ended: () => ended,
    }, 20);
    for (let round = 0; round < 3; round++) {
      await new Promise((r) => setTimeout(r, 80));
      grow(2);
    }
    ended = true;
    // as the session's finish does: the other node's file appended to the first node's, which is not its stream
    appendFileSync(files['node-a'], readFileSync(files['node-b']));
    await ws.follower.done;
    if (ws.child.exitCode === null) await once(ws.child, 'exit');
    const names = await interfaceNames(out);
    expect(names.filter((n) => n === 'node-a/eth0')).toHaveLength(9);
    expect(names.filter((n) => n === 'node-b/eth0')).toHaveLength(9);
    expect(names).toHaveLength(18);
    expect(ws.follower.notes).toEqual([]);
  });
});

describe('followInWireshark on a large capture and a slow reader', () => {
  it('waits for the pipe to drain without piling up listeners', async () => {
    const file = join(dir, 'large.pcapng');
    const b = new CaptureBuilder();
    const payload = Buffer.alloc(1400, 0x61);
    for (let i = 0; i < 20_000; i++) b.udp({ src: '10.9.1.1', dst: '10.9.1.2', sport: 40000 + (i % 1000), dport: 9, payload });
    writeFileSync(file, b.build());
    const reader = join(dir, 'slow-reader');
    writeFileSync(reader, '#!/bin/sh\nexec cat > /dev/null\n', { mode: 0o755 });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => { warnings.push(w.message); };
    process.on('warning', onWarning);
    try {
      const ws = followInWireshark(reader, { files: () => [{ node: 'n', path: file, written: statSync(file).size }], ended: () => true }, 10);
      await ws.follower.done;
      // (only its own exit listener is left, after ~28 waits for the pipe)
      expect(ws.child.listenerCount('exit')).toBe(1);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });
});

describe('CoreService.openInWireshark', () => {
  let lab: Lab;
  let servers: HttpsServers;
  let service: CoreService;

  beforeAll(async () => {
    lab = await createLab(uniquePrefix('tsc-ws-'), '10.201.9');
    servers = await startHttpsServers(lab, [443]);
    service = new CoreService({ store: new SessionStore(join(dir, 'sessions')), targetOptions: { netns: lab.nodeNs }, countersIntervalMs: 250 });
    process.env.TAPSCOPE_WIRESHARK = wrapper;
  });

  afterAll(async () => {
    delete process.env.TAPSCOPE_WIRESHARK;
    await service?.close();
    await servers?.stop();
    await lab?.close();
  });

  const curl = async (path: string): Promise<void> => {
    const r = await lab.execIn(lab.nodeNs, 'curl', ['-sS', '--cacert', servers.ca, '--resolve', `ws.tapscope.test:443:${lab.serverIp}`, `https://ws.tapscope.test/${path}`], { timeoutMs: 30_000 });
    expect(r.stdout, r.stderr).toContain('hello from tapscope lab');
  };
  const snis = (file: string): Promise<number> => helloCount(file, 'ws.tapscope.test');

  it('shows a live capture from its first packet, follows it, and ends with it', async () => {
    const out = join(dir, 'live.pcapng');
    process.env.WS_OUT = out;
    const s = await service.startCapture({ target: 'local', mode: 'afpacket', ifaces: ['any'], name: 'ws-live' });
    await until('the helper streaming', () => service.liveStatus(s.id).some((n) => n.phase === 'streaming'), 100);
    await curl('before-open');
    // (the connection's packets saved before Wireshark is opened)
    await new Promise((r) => setTimeout(r, 500));
    expect(await service.openInWireshark({ sessionId: s.id })).toEqual({ live: true });
    await curl('after-open');
    await new Promise((r) => setTimeout(r, 500));
    await service.stopCapture({ sessionId: s.id });
    // the pipe ends with the capture: tshark writes the rest of its file and exits
    await pipeReaderEnded(out);
    // both connections: the one from before Wireshark was opened, and the one after
    expect(await snis(out)).toBe(2);
    // one section, interfaces named node/interface
    const names = new Set(await interfaceNames(out));
    expect([...names].every((n) => /^[^/]+\/\S+$/.test(n)), [...names].join(',')).toBe(true);
  }, 90_000);

  it('opens a saved session as its pcapng export, removed when Wireshark exits', async () => {
    const out = join(dir, 'saved.pcapng');
    process.env.WS_OUT = out;
    const saved = (await service.listSessions()).find((x) => x.name === 'ws-live');
    expect(saved).toBeDefined();
    expect(await service.openInWireshark({ sessionId: saved!.id })).toEqual({ live: false });
    await until('the export read', () => existsSync(`${out}.err`), 200);
    expect(await snis(out)).toBe(2);
    const exports = (): string[] => readdirSync(join(dir, 'sessions', saved!.id)).filter((f) => f.startsWith('wireshark-'));
    await until('the export removed after Wireshark exits', () => exports().length === 0, 200);
  }, 60_000);

  it('opens the flows a filter accepts, e.g. one flow by its id', async () => {
    const out = join(dir, 'one-flow.pcapng');
    process.env.WS_OUT = out;
    const saved = (await service.listSessions()).find((x) => x.name === 'ws-live')!;
    const { rows } = await service.queryFlows({ sessionId: saved.id, filter: 'tls.sni == "ws.tapscope.test"', offset: 0, limit: 10 });
    expect(rows).toHaveLength(2);
    expect(await service.openInWireshark({ sessionId: saved.id, filter: `id == "${rows[1]!.id}"` })).toEqual({ live: false });
    await until('the export read', () => existsSync(`${out}.err`), 200);
    expect(await snis(out)).toBe(1);
    const ports = await run('tshark', ['-r', out, ...TSHARK_TLS_PORTS, '-T', 'fields', '-e', 'tcp.srcport', '-Y', 'tls.handshake.type == 1'], { timeoutMs: 60_000 });
    expect(ports.stdout.trim()).toBe(String(rows[1]!.src.port));
  }, 60_000);

  it('says what to do when Wireshark is not installed, and starts nothing', async () => {
    const saved = (await service.listSessions()).find((x) => x.name === 'ws-live')!;
    process.env.TAPSCOPE_WIRESHARK = join(dir, 'no-wireshark-here');
    try {
      await expect(service.openInWireshark({ sessionId: saved.id })).rejects.toMatchObject({ code: 'E_WIRESHARK_NOT_FOUND' });
    } finally {
      process.env.TAPSCOPE_WIRESHARK = wrapper;
    }
  });
});
