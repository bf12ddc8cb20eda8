// QUIC with a key log: ngtcp2's HTTP/3 client (on GnuTLS) asks ngtcp2's server in a lab namespace for three files
// (one missing, one large enough to span its key updates), writing SSLKEYLOGFILE, while `tapscope capture --keylog`
// follows the key log; a second client writes no key log; a third resumes the first's session and sends its requests
// as early data (0-RTT), and a fourth does the same to another server, which declines it. The capture (AF_PACKET: packets only) decrypts the first connection's 1-RTT packets and reads
// its HTTP/3 requests and answers, the ones the client printed, and the third's 0-RTT packets; tshark, given no key log,
// decrypts the file with the secrets the capture wrote into it; the second connection says it has none. A server on
// the captured node and a client, captured in eBPF mode with GnuTLS hooked, are attributed by their bound UDP sockets,
// and say why no hook reads QUIC: its TLS library only makes the keys.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
/** a server of its own: the first one's session tickets mean nothing to it, so it declines early data */
let declining: ChildProcess;
const DECLINING_PORT = '4443';
/** a server in the captured namespace, for the eBPF capture */
let local: ChildProcess | undefined;
const LOCAL_PORT = '4444';
let declinedLog = '';
let out = '';
let keys = '';
let stderr = '';
let clientLog = '';
let earlyLog = '';
let flows: Flow[] = [];
/** a client without a key log, captured in eBPF mode */
let hooked: Flow | undefined;

/**
 * gtlsclient in the node namespace: GET each path over HTTP/3 from the server's UDP port 443; its output (headers). `from`:
 * another namespace, asking the given address instead.
 */
async function h3Client(paths: string[], keylog: string | null, extra: string[] = [], port = '443', from = { ns: t.lab.nodeNs, to: t.lab.serverIp }): Promise<string> {
  const env = keyLogEnv(keylog);
  const r = await t.lab.execIn(from.ns, 'gtlsclient', ['--no-quic-dump', '--exit-on-all-streams-close', '--timeout=10s', ...extra,
    from.to, port, ...paths.map((p) => `https://${HOST}${p}`)], { timeoutMs: 30_000, env });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout + r.stderr;
}

/** ngtcp2's HTTP/3 server in namespace `ns` on UDP `port` (all addresses), serving the test's htdocs folder. */
function h3Server(ns: string, port: string): ChildProcess {
  return t.lab.spawnIn(ns, 'gtlsserver', ['-q', '-d', join(t.dir, 'htdocs'), '0.0.0.0', port, t.ca.key, t.ca.cert]);
}

/** The client's 0-RTT packets from `port` (its flow's), as tshark counts them. */
async function zeroRttPackets(port: string): Promise<number> {
  const r = await run('tshark', ['-r', out, '-Y', `udp.srcport == ${port} && quic.long.packet_type == 1`, '-T', 'fields', '-e', 'frame.number']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).length;
}

/**
 * Checks a resumed connection that sent early data: its 0-RTT packets as tshark counts them, the early data's `status`
 * with that count, and its two requests with the server's answers. Returns the count.
 */
async function earlyConnection(f: Flow, status: 'decrypted' | 'rejected'): Promise<number> {
  const zeroRtt = await zeroRttPackets(String(f.src.port));
  expect(zeroRtt).toBeGreaterThan(0);
  expect(f.tls!.keylog).toMatchObject({ status: 'decrypted', reason: null, earlyData: { status, records: zeroRtt, reason: null } });
  expect([...f.http].sort((a, b) => a.path!.localeCompare(b.path!))).toEqual([
    { method: 'GET', host: HOST, path: '/q/missing', status: 404 },
    { method: 'GET', host: HOST, path: '/q/small', status: 200 },
  ]);
  return zeroRtt;
}

/**
 * The connection of client port `port` without the client's 1-RTT packets, refiltered by tshark and copied by tcpdump
 * into a classic pcap file `name`.pcap: no secrets blocks, only the key logs given when it is read.
 */
async function withoutClient1Rtt(port: string, name: string): Promise<string> {
  const only = join(t.dir, `${name}.pcapng`);
  const w = await run('tshark', ['-r', out, '-Y', `udp.port == ${port} && !(udp.srcport == ${port} && quic.header_form == 0)`, '-w', only]);
  expect(w.code, w.stderr).toBe(0);
  const bare = join(t.dir, `${name}.pcap`);
  const c = await run('tcpdump', ['-r', only, '-w', bare]);
  expect(c.code, c.stderr).toBe(0);
  return bare;
}

beforeAll(async () => {
  const docs = join(t.dir, 'htdocs', 'q');
  mkdirSync(docs, { recursive: true });
  writeFileSync(join(docs, 'small'), 'hello over http/3\n');
  writeFileSync(join(docs, 'large'), randomBytes(400_000));
  server = h3Server(t.lab.serverNs, '443');
  declining = h3Server(t.lab.serverNs, DECLINING_PORT);
  await new Promise((r) => setTimeout(r, 500));
  keys = join(t.dir, 'sslkeys.log');
  writeFileSync(keys, '');
  out = join(t.dir, 'quic.pcapng');
  const env = { TAPSCOPE_HOME: join(t.dir, 'home'), TAPSCOPE_LOCAL_NETNS: t.lab.nodeNs };
  const cap = startCli(['capture', '--mode', 'afpacket', '--duration', '10', '--keylog', keys, '--out', out], env);
  await cap.waitFor(': capturing');
  await cap.waitFor('following the key log');
  const resume = [`--session-file=${join(t.dir, 'session')}`, `--tp-file=${join(t.dir, 'tp')}`];
  clientLog = await h3Client(['/q/small', '/q/missing', '/q/large'], keys, ['--key-update=2ms', ...resume]);
  await h3Client(['/q/small'], null);
  earlyLog = await h3Client(['/q/small', '/q/missing'], keys, resume);
  declinedLog = await h3Client(['/q/small', '/q/missing'], keys, resume, DECLINING_PORT);
  expect(await cap.exited, cap.stderr()).toBe(0);
  stderr = cap.stderr();
  flows = (await flowsJson(out, env)).filter((f) => f.app === 'quic');
  // (the server on the captured node this time: its socket, bound before the capture, is found when it begins)
  local = h3Server(t.lab.nodeNs, LOCAL_PORT);
  await new Promise((r) => setTimeout(r, 500));
  const ebpfOut = join(t.dir, 'quic-ebpf.pcapng');
  const e = startCli(['capture', '--mode', 'ebpf', '--duration', '5', '--out', ebpfOut], env);
  await e.waitFor(': capturing');
  await h3Client(['/q/small'], null, [], LOCAL_PORT, { ns: t.lab.serverNs, to: t.lab.nodeIp });
  expect(await e.exited, e.stderr()).toBe(0);
  hooked = (await flowsJson(ebpfOut, env)).find((f) => f.app === 'quic');
}, 120_000);

afterAll(() => {
  server?.kill();
  declining?.kill();
  local?.kill();
});

describe('capture --keylog with QUIC', () => {
  it('counts the QUIC connection among those the key log decrypted', () => {
    expect(flows).toHaveLength(4);
    expect(stderr).toContain('key log: 3 of 4 TLS connections decrypted');
  });

  it("reads the decrypted connection's HTTP/3 requests and the statuses the client was given", () => {
    const f = flows.find((x) => x.tls?.keylog?.status === 'decrypted' && !x.tls.keylog.earlyData)!;
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
    const f = flows.find((x) => x.tls?.keylog?.status === 'decrypted' && !x.tls.keylog.earlyData)!;
    const port = String(f.src.port);
    const r = await run('tshark', ['-r', out, '-Y', `udp.srcport == ${port} || udp.dstport == ${port}`, '-T', 'fields', '-e', 'quic.key_phase', '-e', 'quic.short']);
    expect(r.code, r.stderr).toBe(0);
    const phases = r.stdout.split('\n').flatMap((l) => l.split('\t')[0]!.split(',')).filter((p) => p !== '');
    // (the capture's own secrets block decrypts it: no key log given to tshark)
    expect(new Set(phases)).toEqual(new Set(['0', '1']));
    expect(f.tls!.keylog!.records).toBeGreaterThanOrEqual(phases.length);
    expect(f.tls!.keylog!.reason).toBeNull();
  });

  it("reads the HTTP/3 requests a resumed connection sent as early data: every 0-RTT packet tshark decrypts", async () => {
    // (the client logs each packet it sends: its requests went in 0-RTT packets)
    expect(earlyLog).toMatch(/frm tx \d+ 0RTT STREAM\(0x0b\) id=0x0 fin=1/);
    const f = flows.find((x) => x.tls?.keylog?.earlyData && x.dst.port === 443)!;
    expect(f, JSON.stringify(flows.map((x) => x.tls?.keylog))).toBeDefined();
    const port = String(f.src.port);
    const zeroRtt = await earlyConnection(f, 'decrypted');
    // (a client may send its early data again in 1-RTT packets once the handshake is done: without those, the requests
    // are read from the 0-RTT packets alone)
    const bare = await withoutClient1Rtt(port, 'no-client-1rtt');
    const env = { TAPSCOPE_HOME: join(t.dir, 'home') };
    const g = (await flowsJson(bare, env, undefined, ['--keylog', keys])).find((x) => x.src.port === f.src.port)!;
    expect(g.http.map((h) => h.path).sort()).toEqual(['/q/missing', '/q/small']);
    // (and a key log without CLIENT_EARLY_TRAFFIC_SECRET says so)
    const partial = join(t.dir, 'no-early.log');
    writeFileSync(partial, readFileSync(keys, 'utf8').split('\n').filter((l) => !l.startsWith('CLIENT_EARLY_TRAFFIC_SECRET')).join('\n'));
    const h = (await flowsJson(bare, env, undefined, ['--keylog', partial])).find((x) => x.src.port === f.src.port)!;
    expect(h.tls!.keylog!.status).toBe('failed');
    expect(h.tls!.keylog!.reason).toContain(`0-RTT (early data): ${zeroRtt} packet`);
    expect(h.tls!.keylog!.earlyData).toEqual({ status: 'not-decrypted', records: zeroRtt, reason: 'the key log has no CLIENT_EARLY_TRAFFIC_SECRET for it' });
    // (the server's answers are read; the requests they answer are not)
    expect(h.http.map((x) => [x.path, x.status]).sort()).toEqual([[null, 200], [null, 404]]);
  });

  it('says a server declined early data (its EncryptedExtensions), and reads the requests the client sent again, not the declined ones', async () => {
    expect(declinedLog).toContain('Early data was rejected by server');
    expect(declinedLog).toMatch(/frm tx \d+ 0RTT STREAM\(0x0b\) id=0x0 fin=1/);
    const f = flows.find((x) => x.dst.port === Number(DECLINING_PORT))!;
    expect(f, JSON.stringify(flows.map((x) => x.dst.port))).toBeDefined();
    const port = String(f.src.port);
    // (the requests: the client's again, in 1-RTT packets, with the answers)
    const zeroRtt = await earlyConnection(f, 'rejected');
    expect(f.tls!.client!.plaintext).toBe(true);
    // (without the client's 1-RTT packets its requests are not read: the declined early data is not taken for them)
    const bare = await withoutClient1Rtt(port, 'declined-no-client-1rtt');
    const g = (await flowsJson(bare, { TAPSCOPE_HOME: join(t.dir, 'home') }, undefined, ['--keylog', keys])).find((x) => x.src.port === f.src.port)!;
    expect(g.tls!.keylog!.earlyData).toEqual({ status: 'rejected', records: zeroRtt, reason: null });
    expect(g.http.map((x) => [x.path, x.status]).sort()).toEqual([[null, 200], [null, 404]]);
    expect(g.tls!.client!.plaintext).toBe(false);
    expect((await flowsJson(out, { TAPSCOPE_HOME: join(t.dir, 'home') }, 'tls.early_data == "rejected"')).map((x) => x.src.port)).toEqual([f.src.port]);
  });

  it('in eBPF mode, with its library hooked, says why no hook reads QUIC (not that the hook saw nothing), and what would', () => {
    expect(hooked, 'the QUIC flow of the eBPF capture').toBeDefined();
    // (both processes from their bound UDP sockets: the server's bound before the capture began, found by its scan of
    // /proc; the client's as it binds, by the bind tracepoint, hooks and tracepoints being the host's here)
    expect([hooked!.process?.comm, hooked!.peerProcess?.comm], JSON.stringify(hooked)).toEqual(['gtlsclient', 'gtlsserver']);
    for (const side of [hooked!.tls!.client, hooked!.tls!.server]) {
      expect(side).toMatchObject({ library: 'gnutls', via: 'process', plaintext: false, reason: expect.stringMatching(/^QUIC: gnutls only makes the handshake's keys, .*SSLKEYLOGFILE/) });
    }
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
