// UDP sockets bound and not connected (a DNS, QUIC or DTLS server's; a client that never connects): the helper names
// their owner in a conn record with no remote end (port 0), from its /proc scan or the bind tracepoint. A UDP flow's
// end with no conn record of its own is that socket's: on its own address, or on the wildcard (0.0.0.0, ::) when the
// address is one of the captured node's, never a datagram to another host that has the same port.
import { describe, it, expect } from 'vitest';
import { parseBuffer } from '../../src/pcapng/index.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { CaptureBuilder } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

const NODE_IP = '10.40.0.1';
const client = { ip: '10.40.0.9', port: 51000 };

function flowsOf(build: (b: CaptureBuilder) => void): Flow[] {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', addrs: ['127.0.0.1', NODE_IP] });
  build(b);
  const a = new Analyzer();
  const feed = a.stream();
  for (const blk of parseBuffer(b.build())) feed(blk);
  return a.flows();
}

const bound = (ip: string, port: number, pid: number, comm: string, netns?: number) => ({
  t: 'conn', proto: 'udp', local: { ip, port }, remote: { ip: ip.includes(':') ? '::' : '0.0.0.0', port: 0 }, role: 'unknown', pid, tid: pid, comm, via: 'proc',
  ...(netns === undefined ? {} : { netns }),
});

const datagram = (b: CaptureBuilder, from: { ip: string; port: number }, to: { ip: string; port: number }) =>
  b.udp({ src: from.ip, dst: to.ip, sport: from.port, dport: to.port, payload: Buffer.from('ping') });

describe('bound UDP sockets', () => {
  it('a wildcard-bound server owns the node\'s datagrams to its port, from every peer', () => {
    const flows = flowsOf((b) => {
      b.record(bound('0.0.0.0', 5353, 77, 'resolver'));
      datagram(b, client, { ip: NODE_IP, port: 5353 });
      datagram(b, { ip: '10.40.0.10', port: 51001 }, { ip: NODE_IP, port: 5353 });
    });
    expect(flows).toHaveLength(2);
    for (const f of flows) expect(f.process ?? f.peerProcess, JSON.stringify(f)).toMatchObject({ pid: 77, comm: 'resolver' });
  });

  it('not a datagram to another host with the same port (a pod\'s traffic crossing the node), nor another port', () => {
    const flows = flowsOf((b) => {
      b.record(bound('0.0.0.0', 5353, 77, 'resolver'));
      datagram(b, client, { ip: '10.40.0.200', port: 5353 });
      datagram(b, client, { ip: NODE_IP, port: 5354 });
    });
    expect(flows).toHaveLength(2);
    for (const f of flows) {
      expect(f.process, JSON.stringify(f)).toBeNull();
      expect(f.peerProcess).toBeNull();
    }
  });

  it('one bound to an address owns that address only; a connected socket\'s own record wins', () => {
    const flows = flowsOf((b) => {
      b.record(bound('127.0.0.1', 4433, 88, 'dtls-srv'));
      b.record({ t: 'conn', proto: 'udp', local: client, remote: { ip: NODE_IP, port: 4433 }, role: 'client', pid: 99, tid: 99, comm: 'dtls-cli', via: 'tracepoint' });
      b.record(bound('::', 4433, 66, 'other'));
      datagram(b, { ip: '127.0.0.1', port: 52000 }, { ip: '127.0.0.1', port: 4433 });
      datagram(b, client, { ip: NODE_IP, port: 4433 });
    });
    const lo = flows.find((f) => f.dst.ip === '127.0.0.1')!;
    expect(lo.peerProcess ?? lo.process).toMatchObject({ pid: 88 });
    const ext = flows.find((f) => f.dst.ip === NODE_IP)!;
    // (the client's own connected socket; the server end on the node's address is the :: socket's, dual-stack)
    expect(ext.process).toMatchObject({ pid: 99, comm: 'dtls-cli' });
    expect(ext.peerProcess).toMatchObject({ pid: 66, comm: 'other' });
  });
});
