// Hooks are host-wide, packets are those of the helper's network namespace. Three namespaces each run an
// HTTPS server on 127.0.0.1:PORT and a curl to it from the same local port, so all three connections have
// the exact same 5-tuple; the helper captures in the third. The capture must keep them apart: the helper's
// own flow with its packets and plaintext, and one hook-only flow per other namespace with its own plaintext,
// and every decrypted record must name the namespace it came from (`ip netns` inode of that namespace).
// A pod's connection that does cross the helper's interfaces (a veth from `pa` to `cap`, 10.233.0.0/24)
// must still join its captured flow, plaintext and owner by 5-tuple.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa, run, uniquePrefix } from '../lib/lab.js';
import { startHelper } from '../lib/helper-process.js';
import { readCapture, parseTlsComment } from '../lib/pcapng-walk.js';
import { runCli } from './core-cli.js';
import type { Flow } from '../../src/model/flow.js';

const PORT = 8443;
const LOCAL_PORT = 40555;
const VETH_CAP = '10.233.0.1';
const PREFIX = uniquePrefix('tsn-');
// the helper captures in `cap`; `pa` and `pb` stand for two pods
const NAMES = ['cap', 'pa', 'pb'] as const;
type Name = (typeof NAMES)[number];
const ns = (n: Name): string => `${PREFIX}${n}`;

const SERVER = `
import http.server, ssl, sys
cert, key, port, tag = sys.argv[1:5]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('echo ' + self.path + ' from ' + tag + '\\n').encode()
        self.send_response(200)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('0.0.0.0', int(port)), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print('listening', flush=True)
s.serve_forever()
`;

let dir: string;
const servers: ChildProcess[] = [];
const inode = new Map<Name, number>();
let flows: Flow[] = [];
const recordsNetns: { name: Name; netns: string | undefined; pid: number }[] = [];
/** conn records of the test's 5-tuple (either end): "role netns" */
let conns: string[] = [];
/** server pid -> the inode of /proc/PID/ns/net, read while it runs */
const serverNetns = new Map<number, number>();
let captureNetns: unknown;
const curlOut = new Map<Name, string>();

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function startServer(name: Name, cert: string, key: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns(name), 'python3', '-c', SERVER, cert, key, String(PORT), name], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server in ${name} did not start: ${err}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('listening')) { clearTimeout(timer); resolve(child); } });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server in ${name} exited (${code}): ${err}`)); });
  });
}

async function cleanup(): Promise<void> {
  for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
  for (const n of NAMES) await run('ip', ['netns', 'delete', ns(n)]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tapscope-netns-'));
  await cleanup();
  for (const n of NAMES) {
    await must('ip', ['netns', 'add', ns(n)]);
    await must('ip', ['-n', ns(n), 'link', 'set', 'lo', 'up']);
    inode.set(n, statSync(`/run/netns/${ns(n)}`).ino);
  }
  await must('ip', ['-n', ns('cap'), 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', ns('pa')]);
  for (const [n, dev, ip] of [['cap', 'veth0', VETH_CAP], ['pa', 'veth1', '10.233.0.2']] as const) {
    await must('ip', ['-n', ns(n), 'addr', 'add', `${ip}/24`, 'dev', dev]);
    await must('ip', ['-n', ns(n), 'link', 'set', dev, 'up']);
  }
  const tls = await makeTestCa('127.0.0.1');
  for (const n of NAMES) {
    const s = await startServer(n, tls.cert, tls.key);
    serverNetns.set(s.pid!, statSync(`/proc/${s.pid}/ns/net`).ino);
  }
  const pcap = join(dir, 'netns.pcapng');
  const helper = await startHelper(ns('cap'), ['--mode', 'ebpf'], pcap);
  try {
    for (const n of NAMES) {
      const r = await run('ip', ['netns', 'exec', ns(n), 'curl', '-sS', '--http1.1', '--cacert', tls.ca, '--local-port', String(LOCAL_PORT),
        `https://127.0.0.1:${PORT}/ns-${n}`], { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`curl in ${n} failed: ${r.stderr}`);
      curlOut.set(n, r.stdout);
    }
    const veth = await run('ip', ['netns', 'exec', ns('pa'), 'curl', '-sS', '--http1.1', '--cacert', tls.ca,
      '--resolve', `veth.tapscope.test:${PORT}:${VETH_CAP}`, `https://veth.tapscope.test:${PORT}/veth`], { timeoutMs: 30_000 });
    if (veth.code !== 0) throw new Error(`curl over the veth failed: ${veth.stderr}`);
    // why: memory-BIO-free clients write records at once, but the ring is polled every 100 ms
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    expect(await helper.stop()).toBe(0);
  }
  await rm(tls.dir, { recursive: true, force: true });
  const cap = readCapture(pcap);
  captureNetns = cap.records.find((r) => r.t === 'capture')?.netns;
  for (const e of cap.epbs) {
    const attrs = parseTlsComment(e.comment);
    const name = NAMES.find((n) => e.data.includes(`/ns-${n}`));
    if (attrs && name) recordsNetns.push({ name, netns: attrs.netns, pid: Number(attrs.pid) });
  }
  const ends = [LOCAL_PORT, PORT];
  conns = cap.records
    .filter((r) => r.t === 'conn' && ends.includes((r.local as { port: number }).port) && ends.includes((r.remote as { port: number }).port))
    .map((r) => `${String(r.role)} ${String(r.netns)}`).sort();
  const f = await runCli(['flows', pcap, '--json', '--filter', `port == ${PORT}`], { TAPSCOPE_HOME: join(dir, 'home') });
  if (f.code !== 0) throw new Error(`tapscope flows failed: ${f.stderr}`);
  flows = f.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow);
}, 180_000);

afterAll(async () => {
  await cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('decrypted records from several network namespaces with one 5-tuple', () => {
  it('ran the three exchanges', () => {
    for (const n of NAMES) expect(curlOut.get(n)).toBe(`echo /ns-${n} from ${n}\n`);
    expect(new Set(inode.values()).size).toBe(3);
  });

  it('names the namespace of the capture and of every record (the `ip netns` inode)', () => {
    expect(captureNetns).toBe(inode.get('cap'));
    for (const n of NAMES) {
      const mine = recordsNetns.filter((r) => r.name === n);
      // request and response, seen by both the client and the server
      expect(mine.length, n).toBeGreaterThanOrEqual(2);
      for (const r of mine) expect(Number(r.netns), n).toBe(inode.get(n));
    }
    // the servers' own records against /proc/PID/ns/net of the (still running) server process
    const byServers = recordsNetns.filter((r) => serverNetns.has(r.pid));
    expect(byServers.length).toBeGreaterThanOrEqual(3);
    for (const r of byServers) expect(Number(r.netns)).toBe(serverNetns.get(r.pid));
  });

  it('writes the conn records of each namespace, though they share one 5-tuple', () => {
    const want = NAMES.flatMap((n) => [`client ${inode.get(n)}`, `server ${inode.get(n)}`]).sort();
    expect(conns).toEqual(want);
  });

  it('keeps the three connections apart: packets + plaintext in the helper\'s namespace, one hook-only flow per other one', () => {
    const loop = flows.filter((f) => f.dst.ip === '127.0.0.1');
    expect(loop.map((f) => `${f.src.ip}:${f.src.port}>${f.dst.ip}:${f.dst.port}`)).toEqual(Array(3).fill(`127.0.0.1:${LOCAL_PORT}>127.0.0.1:${PORT}`));
    for (const n of NAMES) {
      const own = n === 'cap';
      const f = flows.find((x) => x.http.some((h) => h.path === `/ns-${n}`));
      expect(f, n).toBeDefined();
      expect(f!.http, n).toEqual([{ method: 'GET', host: `127.0.0.1:${PORT}`, path: `/ns-${n}`, status: 200 }]);
      expect(f!.seenBy, n).toBe(own ? 'packets' : 'hook-only');
      expect(f!.netns ?? null, n).toBe(own ? null : inode.get(n));
      if (own) expect(f!.packets).toBeGreaterThan(5);
      else expect(f!.packets).toBe(0);
      expect(f!.tls?.client?.plaintext, n).toBe(true);
    }
  });

  it('joins a pod\'s connection that crossed the veth into the helper\'s namespace to its captured flow', () => {
    const veth = flows.filter((f) => f.dst.ip === VETH_CAP);
    expect(veth).toHaveLength(1);
    expect(veth[0]).toMatchObject({ seenBy: 'packets', src: { ip: '10.233.0.2' } });
    expect(veth[0]!.netns ?? null).toBeNull();
    expect(veth[0]!.packets).toBeGreaterThan(5);
    expect(veth[0]!.http.map((h) => h.path)).toEqual(['/veth']);
    expect(veth[0]!.tls?.client?.plaintext).toBe(true);
    // the owner comes from the conn record the pod's curl wrote in its own namespace
    expect(veth[0]!.process?.comm).toBe('curl');
  });
});
