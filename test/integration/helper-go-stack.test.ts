// Go's stack growth and the Write hook, really: a Go program writes 300 lines on one TLS connection, each from a new
// goroutine at a greater call depth, so at some depths the goroutine's stack must grow just as (*tls.Conn).Write
// begins: its prologue's stack check sends it to runtime.morestack, which runs it again from its first instruction.
// Captured in eBPF mode, every line is in the flow's decrypted stream exactly once (a probe at or before that check
// fired twice for such a call: 10 of 600 lines came twice), in order, as the server received them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Flow } from '../../src/model/flow.js';
import { useTlsLab } from './tls-lab.js';
import { buildGoStackWriter } from '../lib/tls-clients.js';
import { flowsJson, runCli } from './core-cli.js';
import { startHelper } from '../lib/helper-process.js';

const t = useTlsLab('tsc-gostack', '10.202.47');
const PORT = 4433;
const N = 300;
const lines = Array.from({ length: N }, (_, d) => `write ${String(d).padStart(4, '0')}`);

let server: ChildProcess | null = null;
let out = '';
let log = '';
const env: NodeJS.ProcessEnv = {};
let flow: Flow | null = null;
let wrote = '';
let received = '';
let stream = '';

beforeAll(async () => {
  const writer = await buildGoStackWriter();
  // (s_server -quiet writes what it reads to its standard output)
  server = t.lab.spawnIn(t.lab.serverNs, 'openssl', ['s_server', '-accept', String(PORT), '-cert', t.ca.cert, '-key', t.ca.key, '-quiet']);
  server.stdout!.on('data', (d: Buffer) => { received += d.toString('latin1'); });
  await new Promise((r) => setTimeout(r, 700));
  out = join(t.dir, 'gostack.pcapng');
  const helper = await startHelper(t.lab.nodeNs, ['--mode', 'ebpf'], out);
  try {
    const r = await t.lab.execIn(t.lab.nodeNs, writer, [`${t.lab.serverIp}:${PORT}`, 'gostack.tapscope.test', String(N)], { timeoutMs: 30_000 });
    wrote = r.stdout + r.stderr;
  } finally {
    expect(await helper.stop()).toBe(0);
    log = helper.stderr();
  }
  flow = (await flowsJson(out, env)).find((f) => f.tls?.sni === 'gostack.tapscope.test') ?? null;
  if (flow) {
    const f = await runCli(['follow', out, flow.id], env);
    expect(f.code, f.stderr).toBe(0);
    stream = f.stdout;
  }
}, 120_000);

afterAll(() => {
  server?.kill();
});

describe('Go crypto/tls Write whose goroutine stack grows as it begins (eBPF capture)', () => {
  it('the writer wrote every line and the server read them', () => {
    expect(wrote).toContain(`wrote ${N}`);
    expect(received.split('\n').filter(Boolean)).toEqual(lines);
  });

  it('the hook put its probes on the stack check (the helper says when it cannot)', () => {
    expect(log).toMatch(/hook go-crypto-tls \S*go-stack-writer: attached/);
    expect(log).not.toContain('no stack check recognized');
  });

  it('gives every line once, in order: no Write seen twice', () => {
    expect(flow, 'the writer\'s flow').not.toBeNull();
    expect(flow!.tls!.client).toMatchObject({ library: 'go-crypto-tls', via: 'hook', plaintext: true });
    const seen = stream.split('\n').map((l) => l.trim()).filter((l) => /^write \d{4}$/.test(l));
    expect(seen).toEqual(lines);
  });
});
