// IPv6 extension headers in the helper's own parsing (review H 2, 12), and the no-ring path's lengths (review H 8).
// Two private namespaces over a veth with IPv6 BIG TCP on (gso/gro_max_size 200000): a 4 MiB upload to port 7000 goes
// out in super-packets that carry a hop-by-hop jumbo header (ipv6.nxt 0, payload length 0); a second connection to
// port 7000 carries a destination options header on every packet, its SYN too (IPV6_DSTOPTS); a plain connection to
// port 7001; five short connections to port 7002 with destination options (SYNs the SYN watch must see); a 1000-byte
// UDP datagram and an 802.1Q-tagged frame arriving on the veth. Five afpacket helpers capture it side by side:
//   --filter 'tcp port 7000', in the kernel and in userspace only: every byte of both port 7000 connections is kept
//     (libpcap's tcp/port tests read only the fixed header's next header, and left them all out);
//   --exclude-tcp [fd79::2]:7000: neither port 7000 connection is written (they were, extension headers and all),
//     and the short connections with extension headers are attributed to their process at their SYN;
//   the no-ring path (TAPSCOPE_TEST_NO_RING, the path of gVisor and qemu-user) with --snaplen 200: a cut packet says
//     its length on the wire and is counted as cut, and a VLAN tag the kernel took out of a frame is put back;
//   the aarch64 helper under qemu-user (no ring, and no PACKET_AUXDATA) with --snaplen 200: cut packets the same.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, uniquePrefix } from '../lib/lab.js';
import { HELPER, HELPER_ARM64, startHelper, type RunningHelper } from '../lib/helper-process.js';
import { readCapture, type Capture } from '../lib/pcapng-walk.js';

const PREFIX = uniquePrefix('tsh-ip6x-');
const A = `${PREFIX}a`;
const B = `${PREFIX}b`;
const SRV = 'fd79::2';
const BIG = 4 << 20;

const SERVER = `
import socket, threading, sys
def drain(c):
    while c.recv(1 << 20):
        pass
    c.close()
def serve(port):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("${SRV}", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=drain, args=(c,), daemon=True).start()
for p in (7000, 7001, 7002):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
`;

const CLIENT = `
import socket, time
DSTOPTS = bytes([0, 0, 1, 4, 0, 0, 0, 0])  # next header (the kernel's), length 0, PadN of 4
def upload(port, size, opts=None, chunk=1 << 20):
    s = socket.socket(socket.AF_INET6)
    if opts:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, opts)
    s.connect(("${SRV}", port))
    b = b"z" * chunk
    for i in range(size // chunk):
        s.sendall(b)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # the server's close: every byte was acknowledged
    s.close()
upload(7000, ${BIG})
upload(7000, 3000, DSTOPTS, 1000)
upload(7001, 3000, None, 1000)
for i in range(5):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, DSTOPTS)
    s.connect(("${SRV}", 7002))
    time.sleep(0.03)
    s.close()
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"y" * 1000, ("10.79.0.2", 9999))
`;

// from the server's namespace onto the veth: an 802.1Q frame (VLAN 10) that the client's side untags on receive
const TAGGED = `
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("x6-b", 0))
payload = b"vlan10".ljust(300, b".")
udp = struct.pack("!HHHH", 5555, 9998, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton("10.79.0.2"), socket.inet_aton("10.79.0.1"))
t = sum(struct.unpack("!10H", ip)); t = (t >> 16) + (t & 0xffff); t += t >> 16
ip = ip[:10] + struct.pack("!H", (~t) & 0xffff) + ip[12:]
s.send(b"\\xff" * 6 + b"\\x02\\x00\\x00\\x00\\x00\\x02" + struct.pack("!HHH", 0x8100, 10, 0x0800) + ip + udp)
`;

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

async function cleanup(): Promise<void> {
  for (const n of [A, B]) await run('ip', ['netns', 'delete', n]);
}

/** Starts a helper with extra environment variables (the child takes process.env as it is at the spawn). */
async function startWithEnv(env: Record<string, string>, args: string[], out: string, helper: string): Promise<RunningHelper> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await startHelper(A, args, out, helper);
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
  }
}

interface Row { stream: number; sport: number; dport: number; seq: number; len: number; nxt: number; syn: boolean }

async function tcpRows(path: string): Promise<Row[]> {
  const r = await run('tshark', ['-r', path, '-Y', 'tcp', '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.srcport', '-e', 'tcp.dstport',
    '-e', 'tcp.seq', '-e', 'tcp.len', '-e', 'ipv6.nxt', '-e', 'tcp.flags.syn'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).map((l) => {
    const [stream, sport, dport, seq, len, nxt, syn] = l.split('\t');
    return { stream: Number(stream), sport: Number(sport), dport: Number(dport), seq: Number(seq), len: Number(len), nxt: Number(nxt), syn: syn === '1' || syn === 'True' };
  });
}

/** The payload bytes of each client-to-server connection to port, by stream, each segment once (retransmissions aside). */
function uploaded(rows: Row[], port: number): Map<number, number> {
  const seen = new Set<string>();
  const by = new Map<number, number>();
  for (const r of rows.filter((x) => x.dport === port && x.len > 0)) {
    const k = `${r.stream}/${r.seq}/${r.len}`;
    if (seen.has(k)) continue;
    seen.add(k);
    by.set(r.stream, (by.get(r.stream) ?? 0) + r.len);
  }
  return by;
}

type Stats = { final?: boolean; excluded: number; filtered: number; snaplenCuts: number; filterIn?: string };
const finalStats = (c: Capture) => c.records.filter((r) => r.t === 'stats').at(-1) as unknown as Stats;

let dir: string;
let server: ChildProcess | undefined;
const file: Record<string, string> = {};
const cap: Record<string, Capture> = {};
const rows: Record<string, Row[]> = {};
const codes: Record<string, number | null> = {};
const stderr: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsh-ip6x-'));
  await cleanup();
  for (const n of [A, B]) {
    await must('ip', ['netns', 'add', n]);
    await must('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
  }
  await must('ip', ['-n', A, 'link', 'add', 'x6-a', 'type', 'veth', 'peer', 'name', 'x6-b', 'netns', B]);
  for (const [n, dev, last] of [[A, 'x6-a', '1'], [B, 'x6-b', '2']] as const) {
    await must('ip', ['-n', n, 'addr', 'add', `10.79.0.${last}/24`, 'dev', dev]);
    await must('ip', ['-n', n, 'addr', 'add', `fd79::${last}/64`, 'dev', dev, 'nodad']);
    // IPv6 BIG TCP: super-packets over 64 KiB, each with a hop-by-hop jumbo header
    await must('ip', ['-n', n, 'link', 'set', dev, 'gso_max_size', '200000', 'gro_max_size', '200000']);
    await must('ip', ['-n', n, 'link', 'set', dev, 'up']);
  }
  server = spawn('ip', ['netns', 'exec', B, 'python3', '-c', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    server!.stdout!.once('data', () => resolve());
    server!.once('exit', (c) => reject(new Error(`server exited (${c})`)));
  });
  const helpers: Array<[string, Record<string, string>, string[], string]> = [
    ['kernel', {}, ['--filter', 'tcp port 7000'], HELPER],
    ['userspace', { TAPSCOPE_FILTER_USERSPACE: '1' }, ['--filter', 'tcp port 7000'], HELPER],
    ['exclude', {}, ['--exclude-tcp', `[${SRV}]:7000`], HELPER],
    ['noring', { TAPSCOPE_TEST_NO_RING: '1' }, ['--snaplen', '200'], HELPER],
    // the aarch64 helper under qemu-user: no ring, and no PACKET_AUXDATA either (the kernel then leaves packets whole)
    ['qemu', {}, ['--snaplen', '200'], HELPER_ARM64],
  ];
  const running: Record<string, RunningHelper> = {};
  try {
    for (const [name, env, args, helper] of helpers) {
      file[name] = join(dir, `${name}.pcapng`);
      running[name] = await startWithEnv(env, ['--mode', 'afpacket', ...args], file[name]!, helper);
    }
    await must('ip', ['netns', 'exec', A, 'python3', '-c', CLIENT]);
    await must('ip', ['netns', 'exec', B, 'python3', '-c', TAGGED]);
    await new Promise((r) => setTimeout(r, 400));
  } finally {
    for (const [name, h] of Object.entries(running)) {
      codes[name] = await h.stop();
      stderr[name] = h.stderr();
    }
  }
  for (const name of Object.keys(file)) {
    cap[name] = readCapture(file[name]!);
    rows[name] = await tcpRows(file[name]!);
  }
}, 120_000);

afterAll(async () => {
  server?.kill();
  await cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('helper: IPv6 packets with extension headers', () => {
  it('sends the upload in BIG TCP super-packets with a hop-by-hop header, and the helpers stop cleanly', () => {
    expect(codes).toEqual({ kernel: 0, userspace: 0, exclude: 0, noring: 0, qemu: 0 });
    const hbh = rows.kernel!.filter((r) => r.nxt === 0 && r.len > 65535);
    expect(hbh.length, 'super-packets over 64 KiB with ipv6.nxt 0').toBeGreaterThan(0);
  });

  it.each(['kernel', 'userspace'] as const)('a port filter run in the %s keeps every byte of its port, extension headers or not', (where) => {
    const r = rows[where]!;
    for (const x of r) expect([x.sport, x.dport]).toContain(7000);
    // the BIG TCP upload whole, and the destination options connection whole, its SYN included
    expect([...uploaded(r, 7000).values()].sort((a, b) => a - b)).toEqual([3000, BIG]);
    expect(r.some((x) => x.nxt === 60 && x.syn && x.dport === 7000), 'the SYN with destination options').toBe(true);
    expect(r.filter((x) => x.nxt === 60).length).toBeGreaterThan(5);
    const st = finalStats(cap[where]!);
    expect(st.filterIn).toBe(where);
    // what it left out: port 7001's and port 7002's connections, the datagram, neighbour discovery...
    expect(st.filtered).toBeGreaterThan(10);
    expect(st.snaplenCuts).toBe(0);
  });

  it('--exclude-tcp leaves out its connection\'s packets with extension headers too', () => {
    const r = rows.exclude!;
    expect(r.filter((x) => x.sport === 7000 || x.dport === 7000)).toEqual([]);
    // (the kernel helper's port 7000 packets are the ones excluded here)
    expect(finalStats(cap.exclude!).excluded).toBeGreaterThanOrEqual(rows.kernel!.length);
    // the other connections are there, destination options and all
    expect(r.some((x) => x.dport === 7002 && x.syn && x.nxt === 60)).toBe(true);
    expect(r.some((x) => x.dport === 7001)).toBe(true);
  });

  it('attributes the short connections whose SYNs carry extension headers to their process, at their SYN', () => {
    const conns = cap.exclude!.records.filter((r) => r.t === 'conn' && (r.remote as { port: number }).port === 7002);
    const ports = new Set(conns.map((r) => (r.local as { port: number }).port));
    expect(ports.size, JSON.stringify(conns)).toBe(5);
    for (const c of conns) expect(c).toMatchObject({ role: 'client', comm: 'python3', via: 'proc' });
  });
});

describe('helper: the no-ring path (gVisor, qemu-user)', () => {
  it.each(['noring', 'qemu'] as const)('%s: writes a cut packet with its length on the wire, and counts the cut', async (name) => {
    expect(stderr[name]).toContain('AF_PACKET without an mmap ring here');
    if (name === 'qemu') expect(stderr[name]).toContain('no PACKET_AUXDATA here');
    const r = await run('tshark', ['-r', file[name]!, '-Y', 'udp.dstport == 9999', '-T', 'fields', '-e', 'frame.cap_len', '-e', 'frame.len'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    // the datagram (14 + 20 + 8 + 1000 bytes), and the ICMP error quoting it (the port is closed)
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['200\t1042', '200\t590']);
    const c = cap[name]!;
    const cut = c.epbs.filter((e) => e.caplen < e.origlen).length;
    expect(cut).toBeGreaterThanOrEqual(2);
    expect(finalStats(c).snaplenCuts).toBe(cut);
    for (const e of c.epbs) expect(e.caplen).toBeLessThanOrEqual(200);
    // the BIG TCP super-packets too: cut, with their length on the wire
    expect(c.epbs.some((e) => e.origlen > 65535)).toBe(true);
  });

  it('noring: puts back a VLAN tag the kernel took out of the frame', async () => {
    const r = await run('tshark', ['-r', file.noring!, '-Y', 'udp.dstport == 9998 && !icmp', '-T', 'fields', '-e', 'vlan.id', '-e', 'frame.cap_len', '-e', 'frame.len'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['10\t200\t346']);
  });
});
