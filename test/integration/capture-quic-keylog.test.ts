// QUIC with a key log: ngtcp2's HTTP/3 client (on GnuTLS) asks ngtcp2's server in a lab namespace for three files
// (one missing, one large enough to span its key updates), writing SSLKEYLOGFILE, while `tapscope capture --keylog`
// follows the key log; a second client writes no key log. The capture (AF_PACKET: packets only) decrypts the first
// connection's 1-RTT packets and reads its HTTP/3 requests and answers, the ones the client printed; tshark, given no
// key log, decrypts the file with the secrets the capture wrote into it; the second connection says it has none.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Flow } from '../../src/model/flow.js';
import { run } from '../lib/lab.js';
import { keyLogEnv, useTlsLab } from './tls-lab.js';
import { flowsJson, startCli } from './core-cli.js';

const t = useTlsLab('tsc-quickl', '10.202.41');
const HOST = 'h3.tapscope.test';

let server: ChildProcess;
let out = '';
let keys = '';
let stderr = '';
let clientLog = '';
let flows: Flow[] = [];

/** gtlsclient in the node namespace: GET each path over HTTP/3 from the server's UDP port 443; its output (headers). */
async function h3Client(paths: string[], keylog: string | null, extra: string[] = []): Promise<string> {
  const env = keyLogEnv(keylog);
  const r = await t.lab.execIn(t.lab.nodeNs, 'gtlsclient', ['--no-quic-dump', '--exit-on-all-streams-close', '--timeout=10s', ...extra,
    t.lab.serverIp, '443', ...paths.map((p) => `https://${HOST}${p}`)], { timeoutMs: 30_000, env });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout + r.stderr;
}

beforeAll(async () => {
  const docs = join(t.dir, 'htdocs', 'q');
  mkdirSync(docs, { recursive: true });
  writeFileSync(join(docs, 'small'), 'hello over http/3\n');
  writeFileSync(join(docs, 'large'), randomBytes(400_000));
  server = t.lab.spawnIn(t.lab.serverNs, 'gtlsserver', ['-q', '-d', join(t.dir, 'htdocs'), '0.0.0.0', '443', t.ca.key, t.ca.cert]);
  await new Promise((r) => setTimeout(r, 500));
  keys = join(t.dir, 'sslkeys.log');
  writeFileSync(keys, '');
  out = join(t.dir, 'quic.pcapng');
  const env = { TAPSCOPE_HOME: join(t.dir, 'home'), TAPSCOPE_LOCAL_NETNS: t.lab.nodeNs };
  const cap = startCli(['capture', '--mode', 'afpacket', '--duration', '8', '--keylog', keys, '--out', out], env);
  await cap.waitFor(': capturing');
  await cap.waitFor('following the key log');
  clientLog = await h3Client(['/q/small', '/q/missing', '/q/large'], keys, ['--key-update=2ms']);
  await h3Client(['/q/small'], null);
  expect(await cap.exited, cap.stderr()).toBe(0);
  stderr = cap.stderr();
  flows = (await flowsJson(out, env)).filter((f) => f.app === 'quic');
}, 120_000);

afterAll(() => {
  server?.kill();
});

describe('capture --keylog with QUIC', () => {
  it('counts the QUIC connection among those the key log decrypted', () => {
    expect(flows).toHaveLength(2);
    expect(stderr).toContain('key log: 1 of 2 TLS connections decrypted');
  });

  it("reads the decrypted connection's HTTP/3 requests and the statuses the client was given", () => {
    const f = flows.find((x) => x.tls?.keylog?.status === 'decrypted')!;
    expect(f, JSON.stringify(flows.map((x) => x.tls?.keylog))).toBeDefined();
    // (the client prints each response's :status as it decodes it)
    const statuses = [...clientLog.matchAll(/\[:status: (\d+)\]/g)].map((m) => Number(m[1]));
    expect(statuses.sort()).toEqual([200, 200, 404]);
    expect([...f.http].sort((a, b) => a.path!.localeCompare(b.path!))).toEqual([
      { method: 'GET', host: HOST, path: '/q/large', status: 200 },
      { method: 'GET', host: HOST, path: '/q/missing', status: 404 },
      { method: 'GET', host: HOST, path: '/q/small', status: 200 },
    ]);
    expect(f.tls!.client!.plaintext).toBe(true);
    expect(f.tls!.server!.plaintext).toBe(true);
    expect(f.tls!.version).toBe('TLS 1.3');
  });

  it('opens every 1-RTT packet of it, across key updates, as tshark does with the same key log', async () => {
    const f = flows.find((x) => x.tls?.keylog?.status === 'decrypted')!;
    const port = String(f.src.port);
    const r = await run('tshark', ['-r', out, '-Y', `udp.srcport == ${port} || udp.dstport == ${port}`, '-T', 'fields', '-e', 'quic.key_phase', '-e', 'quic.short']);
    expect(r.code, r.stderr).toBe(0);
    const phases = r.stdout.split('\n').flatMap((l) => l.split('\t')[0]!.split(',')).filter((p) => p !== '');
    // (the capture's own secrets block decrypts it: no key log given to tshark)
    expect(new Set(phases)).toEqual(new Set(['0', '1']));
    expect(f.tls!.keylog!.records).toBeGreaterThanOrEqual(phases.length);
    expect(f.tls!.keylog!.reason).toBeNull();
  });

  it("tshark, given no key log, finds the connection's HTTP/3 streams in the file", async () => {
    const r = await run('tshark', ['-r', out, '-Y', 'http3', '-T', 'fields', '-e', 'http3.stream_type']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).not.toBe('');
  });

  it('says the connection without key log lines has no secrets, and reads nothing of it', () => {
    const f = flows.find((x) => x.tls?.keylog?.status !== 'decrypted')!;
    expect(f.tls!.keylog!.status).toBe('no-secrets');
    expect(f.tls!.keylog!.reason).toMatch(/no secrets for its client random|stopped before its secrets came/);
    expect(f.http).toEqual([]);
    expect(f.tls!.client!.plaintext).toBe(false);
  });
});
