// The UDP watch in afpacket mode, for IPv6 datagrams behind extension headers. Short-lived IPv6 UDP clients on the
// lab's node, each sending one datagram to an echo server on the lab's other end, reading the answer and exiting 20 ms
// later: long before a 500 ms /proc scan, so only the UDP watch (its socket woken by the datagram going out) can name
// their process. Five carry a destination options header on their datagrams (IPV6_DSTOPTS), five none; the watch's
// classic BPF program walked only the fixed IPv6 header, and left out the first five (their flows had no process).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, run, startPythonServer, uniquePrefix, type Lab } from '../lib/lab.js';
import { HELPER, startHelper } from '../lib/helper-process.js';
import { readCapture, type Capture } from '../lib/pcapng-walk.js';

const PORT = 7100;
const N = 5;

const SERVER = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(('::', ${PORT}))
print('ready', flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
`;

// argv: its name, the server's address, 'dstopts' or 'plain'. Prints the local port the kernel bound at its sendto.
const CLIENT = `
import socket, sys, ctypes, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
if sys.argv[3] == 'dstopts':
    # next header (the kernel's), length 0, PadN of 4
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
s.settimeout(5)
s.sendto(b'ping', (sys.argv[2], ${PORT}))
s.recvfrom(100)
print(s.getsockname()[1], flush=True)
time.sleep(0.02)
`;

type Kind = 'dstopts' | 'plain';
const KINDS: Kind[] = ['dstopts', 'plain'];

let lab: Lab;
let dir: string;
let pcap: string;
let cap: Capture;
let code: number | null;
let helperErr = '';
let stopServer: (() => void) | undefined;
/** Each kind's clients: name and local port. */
const clients: Record<Kind, Array<{ name: string; port: number }>> = { dstopts: [], plain: [] };

beforeAll(async () => {
  lab = await createLab(uniquePrefix('tsh-udp6x-'), '10.201.11');
  dir = await mkdtemp(join(tmpdir(), 'tsh-udp6x-'));
  stopServer = (await startPythonServer(lab, dir, 'udp6-echo', SERVER)).stop;
  pcap = join(dir, 'cap.pcapng');
  // (TAPSCOPE_HELPER: another build of the helper, e.g. one without the change, can be checked with the same test)
  const helper = await startHelper(lab.nodeNs, ['--mode', 'afpacket', '--iface', 'any'], pcap, process.env.TAPSCOPE_HELPER ?? HELPER);
  try {
    for (let i = 0; i < N; i++) {
      for (const kind of KINDS) {
        const name = `u6-${kind}-${i}`;
        const r = await lab.execIn(lab.nodeNs, 'python3', ['-c', CLIENT, name, lab.serverIp6, kind], { timeoutMs: 15_000 });
        expect(r.code, r.stderr).toBe(0);
        clients[kind].push({ name, port: Number(r.stdout.trim()) });
      }
    }
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    code = await helper.stop();
    helperErr = helper.stderr();
  }
  cap = readCapture(pcap);
}, 120_000);

afterAll(async () => {
  stopServer?.();
  await lab?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The next header after the fixed IPv6 header of each datagram the clients sent to the server. */
async function nextHeaders(): Promise<string[]> {
  const r = await run('tshark', ['-r', pcap, '-Y', `udp.dstport == ${PORT}`, '-T', 'fields', '-e', 'ipv6.nxt'], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('helper, afpacket mode: the UDP watch and IPv6 extension headers', () => {
  it('captures every datagram, those with destination options carrying the header, and stops cleanly', async () => {
    expect(code, helperErr).toBe(0);
    expect(helperErr).not.toContain('UDP watch socket');
    const nxt = await nextHeaders();
    expect(nxt.filter((x) => x === '60').length, nxt.join(' ')).toBe(N);
    expect(nxt.filter((x) => x === '17').length, nxt.join(' ')).toBe(N);
  });

  it.each(KINDS)('attributes each short-lived client sending %s datagrams to its process', (kind) => {
    const conns = cap.records.filter((r) => r.t === 'conn' && r.proto === 'udp');
    // each client's name and the processes its local end was attributed to
    const named = clients[kind].map((c) => [c.name, conns.filter((r) => (r.local as { port: number }).port === c.port).map((r) => r.comm)]);
    expect(named, JSON.stringify(conns)).toEqual(clients[kind].map((c) => [c.name, [c.name]]));
  });
});
