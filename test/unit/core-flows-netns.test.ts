// Hooked TLS records and conn records are host-wide; packets are those of the helper's network namespace.
// A record from another namespace's loopback (a pod's own 127.0.0.1) with the same 5-tuple as a captured
// flow must form its own hook-only flow per namespace; a foreign namespace's other connections (a pod's
// traffic crossing the node's veth) and records without namespace info join by 5-tuple as before, unless
// another namespace's records already fed the same end of that flow (isolated namespaces reusing addresses).
import { describe, it, expect } from 'vitest';
import { parseBuffer } from '../../src/pcapng/index.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { compileFilter } from '../../src/filter/index.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

const OWN = 4026531840;
const POD_A = 4026532300;
const POD_B = 4026532411;
const LOOP = { client: { ip: '127.0.0.1', port: 40555 }, server: { ip: '127.0.0.1', port: 15001 } };
const { client, server } = LOOP;

function flowsOf(buf: Buffer): Flow[] {
  const a = new Analyzer();
  const feed = a.stream();
  for (const b of parseBuffer(buf)) feed(b);
  return a.flows();
}

/** One captured loopback flow in the helper's namespace plus hooked exchanges with the same 5-tuple. */
function capture(captureNetns: number | null, records: { netns?: number; path: string; pid: number }[], { client, server } = LOOP): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', ...(captureNetns === null ? {} : { netns: captureNetns }) });
  for (const r of records) {
    // conn records name the owner per namespace: the server side of each pod's flow is its own process
    b.record({ t: 'conn', proto: 'tcp', local: server, remote: client, role: 'server', pid: r.pid + 1, tid: r.pid + 1, comm: `srv${r.pid}`, via: 'tracepoint', ...(r.netns === undefined ? {} : { netns: r.netns }) });
  }
  tcpConversation(b, client, server, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x01])], []);
  for (const r of records) {
    const attrs = { pid: r.pid, comm: `app${r.pid}`, lib: 'openssl', ...(r.netns === undefined ? {} : { netns: r.netns }) };
    b.tls(client, server, 'out', Buffer.from(`GET ${r.path} HTTP/1.1\r\nHost: h\r\n\r\n`), attrs);
    b.tls(server, client, 'in', Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), attrs);
  }
  return b.build();
}

describe('network namespace of hooked records', () => {
  it('keeps records of other namespaces out of the captured flow, one hook-only flow per namespace', () => {
    const flows = flowsOf(capture(OWN, [{ netns: OWN, path: '/own', pid: 10 }, { netns: POD_A, path: '/pod-a', pid: 20 }, { netns: POD_B, path: '/pod-b', pid: 30 }, { netns: POD_A, path: '/pod-a2', pid: 20 }]));
    expect(flows).toHaveLength(3);
    const own = flows.find((f) => f.seenBy === 'packets')!;
    expect(own.netns ?? null).toBeNull();
    expect(own.http.map((h) => h.path)).toEqual(['/own']);
    expect(own.process?.pid).toBe(10);
    expect(own.peerProcess?.pid).toBe(11);
    for (const [ns, paths, pid] of [[POD_A, ['/pod-a', '/pod-a2'], 20], [POD_B, ['/pod-b'], 30]] as const) {
      const f = flows.find((x) => x.netns === ns)!;
      expect(f, `netns ${ns}`).toMatchObject({ seenBy: 'hook-only', packets: 0, src: client, dst: server });
      expect(f.http.map((h) => h.path)).toEqual(paths);
      // the owner comes from the conn record of the same namespace, not another namespace's
      expect(f.peerProcess?.pid).toBe(pid + 1);
      expect(f.id).not.toBe(own.id);
    }
    expect(new Set(flows.map((f) => f.id)).size).toBe(3);
    expect(flows.filter(compileFilter(`netns == ${POD_B}`)).map((f) => f.http[0]?.path)).toEqual(['/pod-b']);
  });

  it('joins by 5-tuple as before when the capture or the records do not state a namespace', () => {
    const old = flowsOf(capture(null, [{ netns: POD_A, path: '/a', pid: 20 }, { path: '/b', pid: 30 }]));
    expect(old).toHaveLength(1);
    expect(old[0]!.http.map((h) => h.path)).toEqual(['/a', '/b']);
    const noRecordNs = flowsOf(capture(OWN, [{ path: '/a', pid: 20 }]));
    expect(noRecordNs).toHaveLength(1);
    expect(noRecordNs[0]).toMatchObject({ seenBy: 'packets' });
    expect(noRecordNs[0]!.http.map((h) => h.path)).toEqual(['/a']);
  });

  it('joins a foreign namespace\'s non-loopback records and owners to the captured flow (a pod\'s traffic seen on its veth)', () => {
    const pod = { client: { ip: '10.244.1.5', port: 40555 }, server: { ip: '10.244.2.9', port: 443 } };
    const flows = flowsOf(capture(OWN, [{ netns: POD_A, path: '/via-veth', pid: 20 }], pod));
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ seenBy: 'packets', src: pod.client, dst: pod.server });
    expect(flows[0]!.netns ?? null).toBeNull();
    expect(flows[0]!.http.map((h) => h.path)).toEqual(['/via-veth']);
    expect(flows[0]!.peerProcess?.pid).toBe(21);
  });

  it('keeps apart two isolated namespaces that reuse one non-loopback address pair: one end, two namespaces', () => {
    const reused = { client: { ip: '10.0.0.1', port: 40555 }, server: { ip: '10.0.0.2', port: 443 } };
    const flows = flowsOf(capture(OWN, [{ netns: POD_A, path: '/a', pid: 20 }, { netns: POD_B, path: '/b', pid: 30 }, { netns: POD_A, path: '/a2', pid: 20 }], reused));
    expect(flows).toHaveLength(2);
    const captured = flows.find((f) => f.seenBy === 'packets')!;
    expect(captured.http.map((h) => h.path)).toEqual(['/a', '/a2']);
    expect(captured.process?.pid).toBe(20);
    const other = flows.find((f) => f.seenBy === 'hook-only')!;
    expect(other).toMatchObject({ netns: POD_B, packets: 0, src: reused.client, dst: reused.server });
    expect(other.http.map((h) => h.path)).toEqual(['/b']);
    expect(other.process?.pid).toBe(30);
  });

  it('joins the two ends of one connection hooked in two namespaces (pod to pod) into one flow', () => {
    const pods = { client: { ip: '10.244.1.5', port: 40556 }, server: { ip: '10.244.2.9', port: 8443 } };
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', netns: OWN });
    tcpConversation(b, pods.client, pods.server, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x01])], []);
    const req = Buffer.from('GET /both-ends HTTP/1.1\r\nHost: h\r\n\r\n');
    const res = Buffer.from('HTTP/1.1 204 No Content\r\n\r\n');
    const clientEnd = { pid: 20, comm: 'curl', lib: 'openssl', netns: POD_A };
    const serverEnd = { pid: 40, comm: 'nginx', lib: 'openssl', netns: POD_B };
    b.tls(pods.client, pods.server, 'out', req, clientEnd);
    b.tls(pods.client, pods.server, 'in', req, serverEnd);
    b.tls(pods.server, pods.client, 'out', res, serverEnd);
    b.tls(pods.server, pods.client, 'in', res, clientEnd);
    const flows = flowsOf(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ seenBy: 'packets', src: pods.client, dst: pods.server });
    expect(flows[0]!.http).toEqual([{ method: 'GET', host: 'h', path: '/both-ends', status: 204 }]);
    expect(flows[0]!.tls?.client).toMatchObject({ via: 'hook', plaintext: true });
    expect(flows[0]!.tls?.server).toMatchObject({ via: 'hook', plaintext: true });
  });

  it('gives the capture\'s own flows the same ids as a capture without namespace info', () => {
    const withNs = flowsOf(capture(OWN, [{ netns: OWN, path: '/own', pid: 10 }]));
    const without = flowsOf(capture(null, [{ path: '/own', pid: 10 }]));
    expect(withNs.map((f) => f.id)).toEqual(without.map((f) => f.id));
  });
});
