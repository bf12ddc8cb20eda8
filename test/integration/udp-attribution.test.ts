// Processes of UDP sockets with no connection of their own (a DNS, QUIC or DTLS server's, bound and reading every
// peer's datagrams; a client's, bound by the kernel at its first sendto), and of short-lived clients, in both capture
// modes, with `tapscope capture` on the lab's node. Small Python programs there, each naming itself (prctl) so the
// flows can tell them apart: a server bound before the capture begins (found by the helper's scan at its start), one
// bound while it runs (eBPF: the bind tracepoint, the server ending after one answer, before a scan could see it;
// AF_PACKET: the periodic scan), a client that never binds nor connects and lives 1.5 s (the periodic scans: eBPF
// mode's of bound UDP sockets alone), and two that send one datagram, read the answer and exit (at once in eBPF mode,
// 20 ms later in AF_PACKET mode), one never binding nor connecting, one connecting its socket: gone long before a
// 500 ms scan, they are found by the helper's UDP watch at their first datagram out (eBPF: by the tracepoints of the
// send call that bound the socket, or of connect, in the client's own context). Each flow's local end names its program.
import { describe, it, expect, afterAll } from 'vitest';
import type { Flow } from '../../src/model/flow.js';
import { startPythonServer } from '../lib/lab.js';
import { useTlsLab } from './tls-lab.js';
import { captureLab, flowsJson } from './core-cli.js';

const t = useTlsLab('tsc-udpattr', '10.202.55');

const SERVER = `
import socket, sys, ctypes
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[2])))
print('ready', flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
    if len(sys.argv) > 3:
        break
`;
// (no bind, no connect: the kernel binds the socket at its first sendto, or sendmsg or sendmmsg with 'sendmsg' or
// 'sendmmsg'; with 'connect', connect() binds it.) Two datagrams 1.5 s apart, or with 'once' one, then it exits; with
// 'linger', 20 ms after its answer.
const CLIENT = `
import socket, sys, ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
peer = (sys.argv[2], int(sys.argv[3]))
flags = sys.argv[4:]

class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)), ('iovlen', ctypes.c_size_t),
                ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t), ('flags', ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [('hdr', msghdr), ('len', ctypes.c_uint)]

def sendmmsg(data):
    sa = socket.AF_INET.to_bytes(2, sys.byteorder) + peer[1].to_bytes(2, 'big') + socket.inet_aton(peer[0]) + bytes(8)
    buf = ctypes.create_string_buffer(data, len(data))
    name = ctypes.create_string_buffer(sa, len(sa))
    iov = iovec(ctypes.cast(buf, ctypes.c_void_p), len(data))
    m = mmsghdr(msghdr(ctypes.cast(name, ctypes.c_void_p), len(sa), ctypes.pointer(iov), 1, None, 0, 0), 0)
    if libc.sendmmsg(s.fileno(), ctypes.byref(m), 1, 0) != 1:
        raise OSError(ctypes.get_errno(), 'sendmmsg')

if 'connect' in flags:
    s.connect(peer)
for i in range(1 if 'once' in flags else 2):
    if i:
        time.sleep(1.5)
    if 'connect' in flags:
        s.send(b'ping')
    elif 'sendmsg' in flags:
        s.sendmsg([b'ping'], [], 0, peer)
    elif 'sendmmsg' in flags:
        sendmmsg(b'ping')
    else:
        s.sendto(b'ping', peer)
    s.recvfrom(100)
if 'linger' in sys.argv[4:]:
    time.sleep(0.02)
`;

const stops: (() => void)[] = [];
afterAll(() => {
  for (const stop of stops) stop();
});

/** A server program in namespace `ns` on UDP `port`, once bound; `once`: it ends after answering one datagram. */
async function server(ns: string, name: string, port: number, once = false): Promise<void> {
  const s = await startPythonServer(t.lab, t.dir, name, SERVER, [name, String(port), ...(once ? ['once'] : [])], ns);
  stops.push(s.stop);
}

/** The client program named `name` in namespace `ns`, to `ip`:`port`, with `flags` ('once', 'connect', ...); it must succeed. */
async function client(ns: string, name: string, ip: string, port: number, ...flags: string[]): Promise<void> {
  const r = await t.lab.execIn(ns, 'python3', ['-c', CLIENT, name, ip, String(port), ...flags], { timeoutMs: 15_000 });
  expect(r.code, r.stderr).toBe(0);
}

/** One datagram from the lab's other end to `port` on the node, answered (the client program, once). */
const ping = (port: number): Promise<void> => client(t.lab.serverNs, 'pinger', t.lab.nodeIp, port, 'once');

const byPort = (flows: Flow[], port: number): Flow => {
  const f = flows.find((x) => x.transport === 'udp' && (x.dst.port === port || x.src.port === port));
  if (!f) throw new Error(`no UDP flow of port ${port} among ${JSON.stringify(flows.map((x) => [x.transport, x.src, x.dst]))}`);
  return f;
};
/** The comm of the flow's end on the node. */
const localComm = (f: Flow, nodeIp: string): string | undefined => {
  const ends = [f.process, f.peerProcess];
  // (process is the client's when known, peerProcess the server's; else process is the one known)
  if (f.peerProcess) return f.dst.ip === nodeIp ? f.peerProcess.comm : f.process?.comm;
  return ends[0]?.comm;
};

for (const [mode, base] of [['ebpf', 5300], ['afpacket', 5310]] as const) {
  describe(`UDP sockets without a connection, ${mode} mode`, () => {
    let flows: Flow[] = [];
    it('captures the programs\' flows', async () => {
      await server(t.lab.nodeNs, `udp-early-${mode}`.slice(0, 15), base);
      // (the clients' peers, on the lab's other end)
      await server(t.lab.serverNs, 'udp-echo', base + 2);
      await server(t.lab.serverNs, 'udp-echo', base + 3);
      await server(t.lab.serverNs, 'udp-echo', base + 4);
      const cap = await captureLab(t.lab, t.dir, `udp-${mode}.pcapng`, mode, 6);
      await ping(base);
      // (in eBPF mode it ends after one answer, within the 500 ms between scans: its bind is what names it)
      await server(t.lab.nodeNs, `udp-late-${mode}`.slice(0, 15), base + 1, mode === 'ebpf');
      await ping(base + 1);
      await client(t.lab.nodeNs, `udp-auto-${mode}`.slice(0, 15), t.lab.serverIp, base + 2);
      // (in AF_PACKET mode each closes its socket 20 ms after its answer: the UDP watch looks a new end up while its
      // socket is open, by sock_diag, in about 0.5 ms, and a client that exits at once can be gone first (native/README.md,
      // Known limits). Still long before a scan's 500 ms. In eBPF mode the send tracepoints name it from its own
      // context; the describe below checks that with the watch off.)
      const linger = mode === 'afpacket' ? ['linger'] : [];
      await client(t.lab.nodeNs, `udp-once-${mode}`.slice(0, 15), t.lab.serverIp, base + 3, 'once', ...linger);
      await client(t.lab.nodeNs, `udp-conn-${mode}`.slice(0, 15), t.lab.serverIp, base + 4, 'once', 'connect', ...linger);
      expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
      flows = await flowsJson(cap.out, cap.env);
    }, 60_000);

    it('a server bound before the capture began: found by the scan at its start', () => {
      const f = byPort(flows, base);
      expect(localComm(f, t.lab.nodeIp), JSON.stringify(f)).toBe(`udp-early-${mode}`.slice(0, 15));
    });

    it(`a server bound while it ran: found by ${mode === 'ebpf' ? 'the bind tracepoint' : 'the periodic scan'}`, () => {
      const f = byPort(flows, base + 1);
      expect(localComm(f, t.lab.nodeIp), JSON.stringify(f)).toBe(`udp-late-${mode}`.slice(0, 15));
    });

    it('a client that never binds nor connects, living 1.5 s: found by the periodic scan', () => {
      const f = byPort(flows, base + 2);
      expect(f.src.ip, JSON.stringify(f)).toBe(t.lab.nodeIp);
      expect(f.process?.comm, JSON.stringify(f)).toBe(`udp-auto-${mode}`.slice(0, 15));
    });

    it(`a client that never binds nor connects, exiting after its answer: found by ${mode === 'ebpf' ? 'the send tracepoints' : 'the UDP watch'}`, () => {
      const f = byPort(flows, base + 3);
      expect(f.src.ip, JSON.stringify(f)).toBe(t.lab.nodeIp);
      expect(f.process?.comm, JSON.stringify(f)).toBe(`udp-once-${mode}`.slice(0, 15));
    });

    it(`a client that connects its socket, exiting after its answer: found by ${mode === 'ebpf' ? 'the connect tracepoint' : 'the UDP watch'}`, () => {
      const f = byPort(flows, base + 4);
      expect(f.src.ip, JSON.stringify(f)).toBe(t.lab.nodeIp);
      expect(f.process?.comm, JSON.stringify(f)).toBe(`udp-conn-${mode}`.slice(0, 15));
    });
  });
}

// A client that neither binds nor connects gets its port from the kernel inside its first sendto, sendmsg or sendmmsg;
// one that exits at once may be gone before the UDP watch looks its socket up (the linger above). In eBPF mode the
// send tracepoints name such a socket from the sender's own context, at that call's exit: with the watch off (so that
// nothing else could name them before the next 500 ms scan), clients of each call that exit right after their answer
// all have their process.
describe('UDP clients exiting at once, eBPF mode, without the UDP watch: named by the send tracepoints', () => {
  // (each call's clients to a port of its own: a flow without a process still tells which call sent it)
  const kinds = { sendto: 5320, sendmsg: 5321, sendmmsg: 5322 } as const;
  let flows: Flow[] = [];
  it('captures the clients\' flows', async () => {
    for (const port of Object.values(kinds)) await server(t.lab.serverNs, 'udp-echo', port);
    const cap = await captureLab(t.lab, t.dir, 'udp-at-once.pcapng', 'ebpf', 5, { TAPSCOPE_UDP_WATCH: '0' });
    for (const [kind, port] of Object.entries(kinds)) {
      for (const i of [0, 1, 2]) await client(t.lab.nodeNs, `${kind}-${i}`, t.lab.serverIp, port, 'once', kind);
    }
    expect(await cap.cap.exited, cap.cap.stderr()).toBe(0);
    flows = await flowsJson(cap.out, cap.env);
  }, 60_000);

  for (const [kind, port] of Object.entries(kinds)) {
    it(`clients sending with ${kind}: each flow has its client`, () => {
      const mine = flows.filter((f) => f.transport === 'udp' && f.dst.port === port);
      expect(mine.map((f) => f.process?.comm ?? null).sort(), JSON.stringify(mine)).toEqual([0, 1, 2].map((i) => `${kind}-${i}`));
      for (const f of mine) expect(f.src.ip, JSON.stringify(f)).toBe(t.lab.nodeIp);
    });
  }
});
