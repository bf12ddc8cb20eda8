// One TLS session seen on two connections: the legs of a NAT (a pod's connection to a service address, and the same
// connection after DNAT, captured on another interface) and of a proxy relaying TCP. The second leg's hello is the
// first's, its 32 random bytes included: each names the other, and each side's verdict is the leg's that knows more
// (the hook that read the plaintext), kept up to date as records come. Hellos alike by chance of a closed connection,
// of one long before, or with another random are no link.
import { describe, it, expect } from 'vitest';
import { Analyzer } from '../../src/flows/analyzer.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { analyzeCapture, CaptureBuilder, fixtureClientHello, tcpConversation, tls12ServerHello } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

/** The fixture's ClientHello with its random set to `seed` repeated. */
function hello(seed: number): Buffer {
  const h = Buffer.from(fixtureClientHello());
  for (let i = 0; i < 32; i++) h[11 + i] = (seed + i * 7) & 0xff;
  return h;
}

const POD = { ip: '10.244.1.5', port: 40000 };
const SVC = { ip: '10.96.0.10', port: 443 };
const BACKEND = { ip: '10.244.2.7', port: 8443 };
const CURL = { pid: 42, comm: 'curl', lib: 'openssl' };

const analyze = (b: CaptureBuilder): Flow[] => analyzeCapture(b.build(), { node: 'n1' }).flows();

const byDst = (flows: Flow[], port: number): Flow => flows.find((f) => f.dst.port === port)!;

describe('one TLS session on two connections', () => {
  it('NAT: the leg after DNAT takes the client verdict of the leg the hook read, and the first leg the server verdict of the second', () => {
    const b = new CaptureBuilder();
    const ch = hello(1);
    // the pod's connection to the service address (its veth), open; then the same after DNAT (the node's uplink)
    tcpConversation(b, POD, SVC, [ch], [tls12ServerHello()], { fin: false });
    tcpConversation(b, POD, BACKEND, [ch], [tls12ServerHello()], { fin: false });
    // the client's hook names the socket's addresses (the service's); the backend's server hook the ones after DNAT
    b.tls(POD, SVC, 'out', Buffer.from('GET /cart HTTP/1.1\r\nHost: cart\r\n\r\n'), CURL);
    b.tls(POD, BACKEND, 'in', Buffer.from('GET /cart HTTP/1.1\r\nHost: cart\r\n\r\n'), { pid: 7, comm: 'nginx', lib: 'openssl' });
    const flows = analyze(b);
    const before = byDst(flows, 443);
    const after = byDst(flows, 8443);
    expect(before.tls!.sameSessionAs).toBe(after.id);
    expect(after.tls!.sameSessionAs).toBe(before.id);
    expect(before.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    expect(after.tls!.client).toEqual(before.tls!.client);
    expect(after.tls!.server).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    expect(before.tls!.server).toEqual(after.tls!.server);
  });

  it('NAT\'s legs in the file out of time order (two interfaces\' packets): linked all the same', () => {
    const b = new CaptureBuilder();
    const ch = hello(9);
    // the uplink's leg written first, its packets 3 ms later than the veth's that follow
    const start = b.ts;
    b.ts = start + 3;
    tcpConversation(b, POD, BACKEND, [ch], [tls12ServerHello()], { fin: false });
    b.ts = start;
    tcpConversation(b, POD, SVC, [ch], [tls12ServerHello()], { fin: false });
    b.tls(POD, SVC, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: s\r\n\r\n'), CURL);
    const flows = analyze(b);
    expect(byDst(flows, 8443).tls!.sameSessionAs).toBe(byDst(flows, 443).id);
    expect(byDst(flows, 8443).tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
  });

  it('a relay: the leg from the proxy takes the verdict of the client\'s own connection; a fingerprint is not replaced by one', () => {
    const b = new CaptureBuilder();
    const ch = hello(2);
    const relay = { ip: '10.244.1.9', port: 7001 };
    tcpConversation(b, POD, relay, [ch], [tls12ServerHello()], { fin: false });
    tcpConversation(b, { ip: '10.244.1.9', port: 51000 }, BACKEND, [ch], [tls12ServerHello()], { fin: false });
    const unhooked = analyze(b);
    // neither leg knows more than the fingerprint: both keep their own verdicts, and still name each other
    expect(byDst(unhooked, 8443).tls!.client).toEqual(byDst(unhooked, 7001).tls!.client);
    expect(byDst(unhooked, 8443).tls!.client).toMatchObject({ via: 'fingerprint', plaintext: false, reason: expect.stringMatching(/^where the client process runs is not known: this capture has no process records/) });
    expect(byDst(unhooked, 8443).tls!.sameSessionAs).toBe(byDst(unhooked, 7001).id);
    b.tls(POD, relay, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: r\r\n\r\n'), CURL);
    const hooked = analyze(b);
    expect(byDst(hooked, 8443).tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    expect(byDst(hooked, 8443).http).toEqual([]);
  });

  it('a verdict learned later reaches the other leg (a live capture\'s records come after both were shown)', () => {
    const b = new CaptureBuilder();
    const ch = hello(3);
    tcpConversation(b, POD, SVC, [ch], [tls12ServerHello()], { fin: false });
    tcpConversation(b, POD, BACKEND, [ch], [tls12ServerHello()], { fin: false });
    b.tls(POD, SVC, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: s\r\n\r\n'), CURL);
    const blocks = [...parseBuffer(b.build())];
    const a = new Analyzer();
    const feed = a.stream('n1');
    for (const blk of blocks.slice(0, -1)) feed(blk);
    expect(byDst(a.flows(), 8443).tls!.client).toMatchObject({ plaintext: false });
    // (the record, last)
    feed(blocks.at(-1)!);
    expect(byDst(a.flows(), 8443).tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
  });

  it('DNAT of the node\'s own connection (OUTPUT): the packets\' flow gets the socket\'s process and the hooks\' verdict of the address before DNAT', () => {
    const NODE = { ip: '10.30.0.1', port: 41100 };
    const SERVICE = { ip: '10.96.17.10', port: 443 };
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', addrs: ['127.0.0.1', NODE.ip] });
    b.record({ t: 'proc', pid: 100, ppid: 1, comm: 'curl', exe: '/usr/bin/curl', startedBeforeCapture: false, tls: { library: 'openssl', via: 'maps', evidence: 'libssl.so.3' }, hooks: [] });
    // the socket names the service; the wire, after DNAT, the backend
    b.record({ t: 'conn', proto: 'tcp', local: NODE, remote: SERVICE, role: 'client', pid: 100, tid: 100, comm: 'curl', via: 'tracepoint' });
    tcpConversation(b, NODE, BACKEND, [hello(10)], [tls12ServerHello()], { fin: false });
    b.tls(NODE, SERVICE, 'out', Buffer.from('GET /svc HTTP/1.1\r\nHost: s\r\n\r\n'), CURL);
    const flows = analyze(b);
    const wire = byDst(flows, 8443);
    const socket = byDst(flows, 443);
    expect(socket.seenBy).toBe('hook-only');
    expect(wire.process).toMatchObject({ pid: 100, comm: 'curl' });
    expect([wire.tls!.sameSessionAs, socket.tls!.sameSessionAs]).toEqual([socket.id, wire.id]);
    expect(wire.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    // the hooks' record before the packets (the rings are read apart): the hook-only flow comes first, and is linked too
    const early = new CaptureBuilder();
    early.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', addrs: ['127.0.0.1', NODE.ip] });
    early.record({ t: 'conn', proto: 'tcp', local: NODE, remote: SERVICE, role: 'client', pid: 100, tid: 100, comm: 'curl', via: 'tracepoint' });
    early.tls(NODE, SERVICE, 'out', Buffer.from('GET /svc HTTP/1.1\r\nHost: s\r\n\r\n'), CURL);
    tcpConversation(early, NODE, BACKEND, [hello(13)], [tls12ServerHello()], { fin: false });
    const [first, second] = analyze(early);
    expect([first!.dst.port, second!.dst.port]).toEqual([443, 8443]);
    expect([first!.tls!.sameSessionAs, second!.tls!.sameSessionAs]).toEqual([second!.id, first!.id]);
    // ...whichever pass resolves them (the libraries breakdown's, of the TLS flows only)
    const a = new Analyzer();
    const feed = a.stream('n1');
    for (const blk of parseBuffer(early.build())) feed(blk);
    expect(a.tlsFlows().map((f) => f.tls!.sameSessionAs)).toEqual([second!.id, first!.id]);
    // a pod's connection whose veth was not captured (--iface on the uplink only): its conn record, from the pod's socket
    const uplink = new CaptureBuilder();
    uplink.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', addrs: ['127.0.0.1', NODE.ip] });
    uplink.record({ t: 'conn', proto: 'tcp', local: POD, remote: SVC, role: 'client', pid: 300, tid: 300, comm: 'app', via: 'tracepoint' });
    tcpConversation(uplink, POD, BACKEND, [hello(14)], [tls12ServerHello()], { fin: false });
    expect(byDst(analyze(uplink), 8443).process).toMatchObject({ pid: 300, comm: 'app' });
    // no conn record from that end to elsewhere, two of them, or another connection's packets under its own addresses: no owner
    const none = (extra: (b: CaptureBuilder) => void): Flow => {
      const c = new CaptureBuilder();
      c.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', addrs: ['127.0.0.1', NODE.ip] });
      extra(c);
      tcpConversation(c, NODE, BACKEND, [hello(11)], [tls12ServerHello()], { fin: false });
      return byDst(analyze(c), 8443);
    };
    const conn = (remote: { ip: string; port: number }) => ({ t: 'conn', proto: 'tcp', local: NODE, remote, role: 'client', pid: 100, tid: 100, comm: 'curl', via: 'tracepoint' });
    expect(none((c) => { c.record(conn({ ip: '10.30.0.9', port: 1 })); c.record(conn({ ip: '10.30.0.8', port: 2 })); }).process).toBeNull();
    expect(none((c) => {
      c.record(conn(SERVICE));
      tcpConversation(c, NODE, SERVICE, [hello(12)], [tls12ServerHello()], { fin: false });
    }).process).toBeNull();
    expect(none(() => undefined).process).toBeNull();
  });

  it('no link: another random (however near), a first connection already closed, or one whose hello came long before', () => {
    const b = new CaptureBuilder();
    tcpConversation(b, POD, SVC, [hello(4)], [tls12ServerHello()], { fin: false });
    tcpConversation(b, POD, BACKEND, [hello(5)], [tls12ServerHello()], { fin: false });
    // the same hello again, after its first connection closed (a test capture made of one hello, replayed)
    tcpConversation(b, { ...POD, port: 40001 }, SVC, [hello(6)], [tls12ServerHello()], { fin: true });
    tcpConversation(b, { ...POD, port: 40002 }, SVC, [hello(6)], [tls12ServerHello()], { fin: false });
    // ...and six seconds after the first, still open
    tcpConversation(b, { ...POD, port: 40003 }, SVC, [hello(7)], [tls12ServerHello()], { fin: false });
    b.packet(Buffer.alloc(0), { stepMs: 6000 });
    tcpConversation(b, { ...POD, port: 40004 }, SVC, [hello(7)], [tls12ServerHello()], { fin: false });
    // ...and randoms that differ in their 15th byte only
    const near = hello(8);
    near[11 + 14]! ^= 0x01;
    tcpConversation(b, { ...POD, port: 40005 }, SVC, [hello(8)], [tls12ServerHello()], { fin: false });
    tcpConversation(b, { ...POD, port: 40006 }, SVC, [near], [tls12ServerHello()], { fin: false });
    const flows = analyze(b);
    expect(flows.filter((f) => f.tls)).toHaveLength(8);
    expect(flows.map((f) => f.tls?.sameSessionAs ?? null).filter((x) => x !== null)).toEqual([]);
  });
});
