// TLS decrypted with key logs, really: clients of three TLS libraries (OpenSSL: curl over HTTP/2, curl with TLS 1.2 and
// ChaCha20, curl with TLS 1.2 and AES-CBC, curl with TLS 1.0, Python, Node; GnuTLS: wget; Go crypto/tls) write their secrets where SSLKEYLOGFILE says while `tapscope
// capture` records them in AF_PACKET mode (no hooks: packets only), and one curl writes none. With the key log,
// `tapscope flows --keylog` reads every request and status from the decrypted records — the same requests tshark
// decrypts with the same key log — and each side has its plaintext; the connection without secrets says so. An
// export with --include-secrets carries the secrets for Wireshark (tshark decrypts it with no key log given); a
// capture with the secrets injected by Wireshark's editcap (tcpdump's, of the same traffic) decrypts with no --keylog; bad key logs are clear errors.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Flow } from '../../src/model/flow.js';
import { run, startHttpsServers, type HttpsServers } from '../lib/lab.js';
import { buildGoClient } from '../lib/tls-clients.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, runCli } from './core-cli.js';

const t = useTlsLab('tsc-keylog', '10.202.31');
const PORT = 8443;

interface Client { name: string; path: string; cmd: (keys: string, servers: HttpsServers) => [string, string[]] }

const url = (name: string, path: string): string => `https://${name}.tapscope.test:${PORT}${path}`;
const CLIENTS: Client[] = [
  { name: 'curl', path: '/kl/curl-h2', cmd: (_k, s) => ['curl', ['-sS', '--http2', '--cacert', s.ca, url('curl', '/kl/curl-h2')]] },
  {
    name: 'a', path: '/kl/curl-tls12',
    cmd: (_k, s) => ['curl', ['-sS', '--http1.1', '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305', '--cacert', s.ca, url('a', '/kl/curl-tls12')]],
  },
  {
    name: 'python', path: '/kl/python',
    cmd: (_k, s) => ['python3', ['-c', 'import ssl,sys,urllib.request as u; print(u.urlopen(sys.argv[2], context=ssl.create_default_context(cafile=sys.argv[1])).read().decode())', s.ca, url('python', '/kl/python')]],
  },
  {
    name: 'node', path: '/kl/node',
    cmd: (k, s) => [process.execPath, [`--tls-keylog=${k}`, '-e',
      "const https=require('https');https.get(process.argv[2],{ca:require('fs').readFileSync(process.argv[1])},(r)=>{r.pipe(process.stdout)})", s.ca, url('node', '/kl/node')]],
  },
  { name: 'wget', path: '/kl/wget', cmd: (_k, s) => ['wget', ['-q', '-O', '-', '--ca-certificate', s.ca, url('wget', '/kl/wget')]] },
  {
    // (a CBC suite, as older servers and Java 8 still pick: encrypt-then-MAC, which OpenSSL on both ends negotiates)
    name: 'c', path: '/kl/curl-cbc',
    cmd: (_k, s) => ['curl', ['-sS', '--http1.1', '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256', '--cacert', s.ca, url('c', '/kl/curl-cbc')]],
  },
  {
    // (TLS 1.0, as old devices still speak it: its own PRF, and CBC records whose IVs chain from one record to the next)
    name: 'd', path: '/kl/curl-tls10',
    cmd: (_k, s) => ['curl', ['-sS', '--http1.1', '--tlsv1.0', '--tls-max', '1.0', '--ciphers', 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0', '--cacert', s.ca, url('d', '/kl/curl-tls10')]],
  },
];

let servers: HttpsServers;
let capture = '';
/** the same traffic as tcpdump recorded it (editcap can inject secrets into its file, not into one with the helper's exported-PDU interface) */
let tcpdumpFile = '';
let keys = '';
let env: NodeJS.ProcessEnv = {};
/** the flows without and with the key log */
let plain: Flow[] = [];
let decrypted: Flow[] = [];

const bySni = (flows: Flow[], name: string): Flow => {
  const f = flows.find((x) => x.tls?.sni === `${name}.tapscope.test`);
  if (!f) throw new Error(`no TLS flow with SNI ${name}.tapscope.test among ${flows.map((x) => x.tls?.sni).join(', ')}`);
  return f;
};

async function flows(file: string, ...more: string[]): Promise<Flow[]> {
  const r = await runCli(['flows', file, '--json', ...more], env);
  if (r.code !== 0) throw new Error(`tapscope flows exited ${r.code}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow);
}

/** The HTTP/1 and HTTP/2 request paths tshark reads in `file` (decrypting with `keylog` when given), sorted. */
async function tsharkPaths(file: string, keylog?: string): Promise<string[]> {
  const r = await run('tshark', ['-r', file, '-d', `tcp.port==${PORT},tls`, ...(keylog ? ['-o', `tls.keylog_file:${keylog}`] : []),
    '-Y', 'http.request || http2.headers.path', '-T', 'fields', '-e', 'http.request.uri', '-e', 'http2.headers.path']);
  if (r.code !== 0) throw new Error(`tshark failed: ${r.stderr}`);
  return r.stdout.split(/[\n\t,]/).map((s) => s.trim()).filter((s) => s.startsWith('/kl/')).sort();
}

/**
 * The answer status tshark decrypts for each request path in `file` with `keylog` (HTTP/1 and HTTP/2; null: no answer
 * in the capture): an oracle that sees the same packets, so a response the capture lost is lost to both.
 */
async function tsharkStatuses(file: string, keylog: string): Promise<Map<string, number | null>> {
  const r = await run('tshark', ['-r', file, '-d', `tcp.port==${PORT},tls`, '-o', `tls.keylog_file:${keylog}`,
    '-Y', 'http.request || http.response || http2.headers.path || http2.headers.status', '-T', 'fields',
    '-e', 'tcp.stream', '-e', 'http.request.uri', '-e', 'http2.headers.path', '-e', 'http.response.code', '-e', 'http2.headers.status']);
  if (r.code !== 0) throw new Error(`tshark failed: ${r.stderr}`);
  const byStream = new Map<string, { path: string | null; status: number | null }>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [stream, uri, h2path, code, h2status] = line.split('\t');
    const e = byStream.get(stream!) ?? { path: null, status: null };
    e.path ??= uri || h2path || null;
    const status = Number(code || h2status);
    if (status > 0) e.status ??= status;
    byStream.set(stream!, e);
  }
  return new Map([...byStream.values()].filter((e) => e.path !== null).map((e) => [e.path!, e.status]));
}

beforeAll(async () => {
  servers = await startHttpsServers(t.lab, [PORT]);
  const go = await buildGoClient();
  tcpdumpFile = join(t.dir, 'tcpdump.pcap');
  const tcpdump = t.lab.spawnIn(t.lab.nodeNs, 'tcpdump', ['-i', 'any', '-U', '-w', tcpdumpFile, 'tcp', 'port', String(PORT)]);
  const listening = new Promise<void>((resolve) => tcpdump.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening')) resolve(); }));
  const cap = await captureLab(t.lab, t.dir, 'keylog.pcapng', 'afpacket', 8);
  await listening;
  env = cap.env;
  capture = cap.out;
  const logs: string[] = [];
  for (const c of [...CLIENTS, { name: 'go', path: '/kl/go', cmd: (_k: string, s: HttpsServers): [string, string[]] => [go, [s.ca, url('go', '/kl/go'), t.lab.serverIp]] }]) {
    const k = join(t.dir, `${c.name}.keys`);
    logs.push(k);
    const [cmd, args] = c.cmd(k, servers);
    const r = await t.lab.execIn(t.lab.nodeNs, cmd, args, { env: { ...process.env, SSLKEYLOGFILE: k, GO_CLIENT_DELAY_MS: '0' }, timeoutMs: 30_000 });
    expect(r.stdout, `${c.name}: ${r.stderr}`).toContain(`hello from tapscope lab: GET ${c.path}`);
  }
  // (one client writes no secrets)
  const r = await t.lab.execIn(t.lab.nodeNs, 'curl', ['-sS', '--http1.1', '--cacert', servers.ca, url('b', '/kl/no-secrets')], { timeoutMs: 30_000 });
  expect(r.stdout).toContain('hello from tapscope lab');
  expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
  const tcpdumpExit = new Promise((r) => tcpdump.once('exit', r));
  tcpdump.kill('SIGINT');
  await tcpdumpExit;
  await servers.stop();
  // one key log, as a person gathers them
  keys = join(t.dir, 'all.keys');
  writeFileSync(keys, logs.map((p) => readFileSync(p, 'utf8')).join(''));
  plain = await flows(capture);
  decrypted = await flows(capture, '--keylog', keys);
}, 240_000);

describe('TLS decrypted with key logs (real clients, AF_PACKET capture)', () => {
  it('every client with secrets: its request and answer read from the decrypted records, both sides plaintext; the same requests and answers tshark decrypts', async () => {
    const theirs = await tsharkStatuses(capture, keys);
    // (the lab's server answers every request 200; the capture held every answer but, at most, one it lost)
    expect([...theirs.values()].filter((s) => s === 200).length, JSON.stringify([...theirs])).toBeGreaterThanOrEqual(CLIENTS.length);
    for (const c of [...CLIENTS, { name: 'go', path: '/kl/go' }]) {
      const before = bySni(plain, c.name);
      expect(before.tls!.keylog, c.name).toBeUndefined();
      expect(before.http, c.name).toEqual([]);
      expect(before.tls!.client!.plaintext, c.name).toBe(false);
      const f = bySni(decrypted, c.name);
      if (theirs.get(c.path) === 200) {
        expect(f.tls!.keylog, c.name).toEqual({ status: 'decrypted', reason: null, records: expect.any(Number) as number });
      } else if (f.tls!.keylog!.status !== 'decrypted') {
        // (the answer the capture lost: bytes of it after the hole, or its FIN, tell the loss, and the flow says so)
        expect(f.tls!.keylog!.reason, c.name).toMatch(/^server to client: a gap in the capture: /);
      }
      expect(f.tls!.keylog!.records, c.name).toBeGreaterThanOrEqual(2);
      expect(f.http.map((h) => [h.method, h.path, h.status]), c.name).toEqual([['GET', c.path, theirs.get(c.path)]]);
      expect(f.tls!.client!.plaintext, c.name).toBe(true);
      expect(f.tls!.server!.plaintext, c.name).toBe(true);
      // (the library verdict is what it was: the key log adds plaintext, not a library)
      expect(f.tls!.client!.library, c.name).toBe(before.tls!.client!.library);
    }
    expect(bySni(decrypted, 'curl').tls!.version).toBe('TLS 1.3');
    expect(bySni(decrypted, 'curl').app).toBe('tls');
    expect(bySni(decrypted, 'a').tls).toMatchObject({ version: 'TLS 1.2', cipher: expect.stringMatching(/^TLS_ECDHE_(RSA|ECDSA)_WITH_CHACHA20_POLY1305_SHA256$/) as string });
    expect(bySni(decrypted, 'c').tls).toMatchObject({ version: 'TLS 1.2', cipher: expect.stringMatching(/^TLS_ECDHE_(RSA|ECDSA)_WITH_AES_128_CBC_SHA256$/) as string });
    expect(bySni(decrypted, 'd').tls).toMatchObject({ version: 'TLS 1.0', cipher: expect.stringMatching(/^TLS_ECDHE_(RSA|ECDSA)_WITH_AES_128_CBC_SHA$/) as string });
    const mine = decrypted.flatMap((f) => f.http.map((h) => h.path ?? '')).filter((p) => p.startsWith('/kl/')).sort();
    expect(mine).toEqual(await tsharkPaths(capture, keys));
    expect(mine).toHaveLength(CLIENTS.length + 1);
    // (on two threads, each partition reading the key log: the same flows)
    const threaded = await runCli(['flows', capture, '--json', '--keylog', keys], { ...env, TAPSCOPE_THREADS: '2' });
    expect(threaded.code, threaded.stderr).toBe(0);
    expect(threaded.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow)).toEqual(decrypted);
  });

  it('a connection the key log has no secrets for says so, and keeps its verdict', () => {
    const f = bySni(decrypted, 'b');
    expect(f.tls!.keylog!.status).toBe('no-secrets');
    expect(f.tls!.keylog!.reason).toMatch(/^the key log has no secrets for its client random \([0-9a-f]{64}\)$/);
    expect(f.http).toEqual([]);
    expect(f.tls!.client).toEqual(bySni(plain, 'b').tls!.client);
  });

  it('filters and the library breakdown count the decrypted connections', async () => {
    const kept = await flows(capture, '--keylog', keys, '--filter', 'tls.keylog == "decrypted" && tls.client.plaintext');
    // (every client's but, at most, one whose answer the capture lost: see the first test)
    const whole = decrypted.filter((f) => f.tls?.keylog?.status === 'decrypted').map((f) => f.tls!.sni!).sort();
    expect(whole.length).toBeGreaterThanOrEqual(CLIENTS.length);
    expect(kept.map((f) => f.tls!.sni).sort()).toEqual(whole);
    expect(whole.every((sni) => [...CLIENTS.map((c) => c.name), 'go'].map((n) => `${n}.tapscope.test`).includes(sni))).toBe(true);
    const lib = await runCli(['libraries', capture, '--json', '--keylog', keys], env);
    expect(lib.code, lib.stderr).toBe(0);
    const rows = JSON.parse(lib.stdout) as { library: string; side: string; flows: number; plaintextFlows: number }[];
    const before = JSON.parse((await runCli(['libraries', capture, '--json'], env)).stdout) as typeof rows;
    const sum = (r: typeof rows, side: string): number => r.filter((x) => x.side === side).reduce((n, x) => n + x.plaintextFlows, 0);
    expect(sum(before, 'client')).toBe(0);
    expect(sum(rows, 'client')).toBe(CLIENTS.length + 1);
  });

  it('export: --include-secrets embeds the secrets (tshark decrypts it without a key log); without, none are, and it says so; HAR has the requests', async () => {
    const withKeys = join(t.dir, 'with-keys.pcapng');
    const r = await runCli(['export', capture, '--format', 'pcapng', '--out', withKeys, '--keylog', keys, '--include-secrets', '--filter', 'tls.sni != "curl.tapscope.test"'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(await tsharkPaths(withKeys)).toEqual([...CLIENTS.slice(1).map((c) => c.path), '/kl/go'].sort());
    const noKeys = join(t.dir, 'no-keys.pcapng');
    const r2 = await runCli(['export', capture, '--format', 'pcapng', '--out', noKeys, '--keylog', keys], env);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toContain("the key log's secrets are not embedded in the export");
    expect(await tsharkPaths(noKeys)).toEqual([]);
    const har = join(t.dir, 'keylog.har');
    expect((await runCli(['export', capture, '--format', 'har', '--out', har, '--keylog', keys], env)).code).toBe(0);
    const urls = (JSON.parse(readFileSync(har, 'utf8')) as { log: { entries: { request: { url: string } }[] } }).log.entries.map((e) => new URL(e.request.url).pathname);
    expect(urls.sort()).toEqual([...CLIENTS.map((c) => c.path), '/kl/go'].sort());
  });

  it("a capture carrying its secrets (Wireshark's editcap --inject-secrets) decrypts with no --keylog", async () => {
    const injected = join(t.dir, 'injected.pcapng');
    const e = await run('editcap', ['-F', 'pcapng', '--inject-secrets', `tls,${keys}`, tcpdumpFile, injected]);
    expect(e.code, e.stderr).toBe(0);
    expect(await tsharkPaths(injected)).toHaveLength(CLIENTS.length + 1);
    const f = await flows(injected);
    expect(bySni(f, 'wget').http.map((h) => h.path)).toEqual(['/kl/wget']);
    expect(bySni(f, 'b').tls!.keylog!.status).toBe('no-secrets');
  });

  it('a key log that is missing, or holds no secrets, or has a mangled line: a clear error, nothing printed', async () => {
    const missing = await runCli(['flows', capture, '--keylog', join(t.dir, 'nope.keys')], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no such key log');
    expect(missing.stdout).toBe('');
    const empty = join(t.dir, 'empty.keys');
    writeFileSync(empty, '# nothing here\n');
    const none = await runCli(['flows', capture, '--keylog', empty], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/holds no TLS secrets.*E_KEYLOG/s);
    const bad = join(t.dir, 'bad.keys');
    writeFileSync(bad, `${readFileSync(keys, 'utf8').split('\n')[0]}\nCLIENT_RANDOM 00ff 1234\n`);
    const mangled = await runCli(['flows', capture, '--keylog', bad], env);
    expect(mangled.code).toBe(1);
    expect(mangled.stderr).toContain('bad.keys: line 2 is not a key log line');
  });
});
