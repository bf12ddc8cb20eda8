// flow.tcp: how each TCP connection went, told from its packets' flags (Zeek's conn_state in words), for every
// state, from either side's packets first, in the JSON lines and through the filter language.
import { describe, expect, it } from 'vitest';
import { Analyzer, tcpBits, tcpSummary } from '../../src/flows/analyzer.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { FlowJsonLines } from '../../src/model/flow-json.js';
import { compileFilter } from '../../src/filter/index.js';
import type { Flow, TcpSummary } from '../../src/model/flow.js';
import { CaptureBuilder, ethernet, ipPacket, tcpConversation } from './core-packet-builder.js';

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const RST = 0x04;
const PSH = 0x08;

/** One flow from client port `port`: each step a packet from the client ('c') or the server ('s') with its flags. */
function flowOf(steps: [side: 'c' | 's', flags: number][], port = 40000): Flow {
  const b = new CaptureBuilder();
  for (const [side, flags] of steps) {
    const c = { ip: '10.70.0.1', port };
    const s = { ip: '10.70.0.2', port: 5432 };
    const [from, to] = side === 'c' ? [c, s] : [s, c];
    b.tcp({ src: from.ip, dst: to.ip, sport: from.port, dport: to.port, seq: 100, ack: flags & ACK ? 1 : 0, flags, payload: flags & PSH ? Buffer.from('x') : undefined });
  }
  const a = new Analyzer();
  const feed = a.stream();
  for (const blk of parseBuffer(b.build())) feed(blk);
  const flows = a.flows();
  expect(flows).toHaveLength(1);
  return flows[0]!;
}

describe('a TCP flow\'s connection state', () => {
  it('is told for every way a connection goes', () => {
    const cases: [string, [('c' | 's'), number][], Pick<TcpSummary, 'state' | 'resetBy'>][] = [
      ['SYN alone (and its retries)', [['c', SYN], ['c', SYN]], { state: 'no-reply', resetBy: null }],
      ['SYN answered by RST', [['c', SYN], ['s', RST | ACK]], { state: 'refused', resetBy: 'server' }],
      ['handshake', [['c', SYN], ['s', SYN | ACK], ['c', ACK], ['c', PSH | ACK]], { state: 'established', resetBy: null }],
      ['one FIN', [['c', SYN], ['s', SYN | ACK], ['c', ACK], ['c', FIN | ACK]], { state: 'closing', resetBy: null }],
      ['both FINs', [['c', SYN], ['s', SYN | ACK], ['c', FIN | ACK], ['s', FIN | ACK], ['c', ACK]], { state: 'closed', resetBy: null }],
      ['RST from the server after the handshake', [['c', SYN], ['s', SYN | ACK], ['c', PSH | ACK], ['s', RST]], { state: 'reset', resetBy: 'server' }],
      ['RST from the client, then one from the server', [['c', SYN], ['s', SYN | ACK], ['c', RST], ['s', RST]], { state: 'reset', resetBy: 'client' }],
      ['a client giving up on its SYN', [['c', SYN], ['c', RST]], { state: 'reset', resetBy: 'client' }],
      ['a RST after both FINs', [['c', SYN], ['s', SYN | ACK], ['c', FIN | ACK], ['s', FIN | ACK], ['c', RST]], { state: 'reset', resetBy: 'client' }],
      ['data without a SYN', [['c', PSH | ACK], ['s', ACK]], { state: 'midstream', resetBy: null }],
      ['the SYN missed, the SYN+ACK seen', [['s', SYN | ACK], ['c', PSH | ACK]], { state: 'established', resetBy: null }],
      ['a FIN without a SYN', [['c', PSH | ACK], ['s', FIN | ACK]], { state: 'closing', resetBy: null }],
    ];
    for (const [what, steps, want] of cases) {
      const t = flowOf(steps).tcp!;
      expect({ state: t.state, resetBy: t.resetBy }, what).toEqual(want);
    }
  });

  it('counts retransmitted segments, not keep-alives, nor a packet\'s copies on a second interface', () => {
    const C = { src: '10.70.3.1', dst: '10.70.3.2', sport: 42000, dport: 80 };
    const S = { src: '10.70.3.2', dst: '10.70.3.1', sport: 80, dport: 42000 };
    const b = new CaptureBuilder();
    // every packet seen twice: on the pod's veth, then on the bridge (another interface)
    // (`later`: 50 ms after the packet before it, as a sender sends a segment again; one behind the next within 3 ms is
    // out of order, as Wireshark tells them)
    const both = (seg: Parameters<typeof ipPacket>[1], later = false): void => {
      b.packet(ethernet(ipPacket('tcp', seg)), { iface: 'veth0', ...(later ? { stepMs: 50 } : {}) });
      b.packet(ethernet(ipPacket('tcp', seg)), { iface: 'br0' });
    };
    const data = (n: number): Buffer => Buffer.alloc(n, 0x61);
    both({ ...C, seq: 1000, flags: SYN });
    both({ ...S, seq: 5000, ack: 1001, flags: SYN | ACK });
    both({ ...C, seq: 1001, ack: 5001, flags: PSH | ACK, payload: data(100) });
    both({ ...C, seq: 1101, ack: 5001, flags: PSH | ACK, payload: data(100) });
    both({ ...C, seq: 1001, ack: 5001, flags: PSH | ACK, payload: data(100) }, true); // retransmitted
    both({ ...C, seq: 1150, ack: 5001, flags: PSH | ACK, payload: data(100) }, true); // overlapping: retransmitted in part
    both({ ...C, seq: 1249, ack: 5001, flags: ACK, payload: data(1) }); // keep-alive
    both({ ...S, seq: 5001, ack: 1250, flags: PSH | ACK, payload: data(10) });
    both({ ...C, seq: 1250, ack: 5011, flags: FIN | ACK });
    both({ ...C, seq: 1250, ack: 5011, flags: FIN | ACK }); // the FIN again
    const a = new Analyzer();
    const feed = a.stream();
    for (const blk of parseBuffer(b.build())) feed(blk);
    expect(a.flows()).toHaveLength(1);
    expect(a.flows()[0]!.tcp).toEqual({ state: 'closing', resetBy: null, retransmissions: 3 });
    expect(compileFilter('tcp.retransmissions > 2')(a.flows()[0]!)).toBe(true);
    expect(compileFilter('tcp.retransmissions > 3')(a.flows()[0]!)).toBe(false);
  });

  it('shares one summary object per state and side, and UDP flows have none', () => {
    expect(tcpSummary(tcpBits(0, SYN, true))).toBe(tcpSummary(tcpBits(tcpBits(0, SYN, true), SYN, true)));
    expect(Object.isFrozen(tcpSummary(0))).toBe(true);
    // flows without retransmissions carry the shared summary, not one of their own
    const conv = new CaptureBuilder();
    tcpConversation(conv, { ip: '10.70.4.1', port: 40001 }, { ip: '10.70.4.2', port: 80 }, [Buffer.from('a')], [Buffer.from('b')]);
    tcpConversation(conv, { ip: '10.70.4.1', port: 40002 }, { ip: '10.70.4.2', port: 80 }, [Buffer.from('c')], [Buffer.from('d')]);
    const an = new Analyzer();
    const into = an.stream();
    for (const blk of parseBuffer(conv.build())) into(blk);
    const [one, two] = an.flows();
    expect(one!.tcp).toEqual({ state: 'closed', resetBy: null, retransmissions: 0 });
    expect(one!.tcp).toBe(two!.tcp);
    const b = new CaptureBuilder().udp({ src: '10.70.0.1', dst: '10.70.0.2', sport: 5000, dport: 6000, payload: Buffer.from('u') });
    const a = new Analyzer();
    const feed = a.stream();
    for (const blk of parseBuffer(b.build())) feed(blk);
    expect(a.flows()[0]!.tcp).toBeNull();
  });

  it('is null for a flow known only from hook records, until a packet of it comes', () => {
    const c = { ip: '10.70.1.1', port: 41000 };
    const srv = { ip: '10.70.1.2', port: 443 };
    const b = new CaptureBuilder().tls(c, srv, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n'), { pid: 9, comm: 'curl', lib: 'openssl' });
    const a = new Analyzer();
    const feed = a.stream();
    for (const blk of parseBuffer(b.build())) feed(blk);
    expect([a.flows()[0]!.seenBy, a.flows()[0]!.tcp]).toEqual(['hook-only', null]);
    const more = new CaptureBuilder(1_732_620_001_000).tcp({ src: c.ip, dst: srv.ip, sport: c.port, dport: srv.port, seq: 5, ack: 1, flags: FIN | ACK });
    for (const blk of parseBuffer(more.build())) feed(blk);
    expect([a.flows()[0]!.seenBy, a.flows()[0]!.tcp]).toEqual(['packets', { state: 'closing', resetBy: null, retransmissions: 0 }]);
  });

  it('is counted by state as flows change (the analyzer\'s tcpStates), hook-only flows not until a packet comes', () => {
    const b = new CaptureBuilder();
    const pkt = (port: number, fromClient: boolean, flags: number): void => {
      const c = { ip: '10.70.2.1', port };
      const srv = { ip: '10.70.2.2', port: 80 };
      const [from, to] = fromClient ? [c, srv] : [srv, c];
      b.tcp({ src: from.ip, dst: to.ip, sport: from.port, dport: to.port, seq: 1, ack: 1, flags });
    };
    pkt(1, true, SYN); pkt(1, false, RST | ACK); // refused
    pkt(2, true, SYN); pkt(2, false, SYN | ACK); pkt(2, true, FIN | ACK); pkt(2, false, FIN | ACK); // closed
    pkt(3, true, SYN); // no reply
    pkt(4, true, PSH | ACK); // midstream
    b.tls({ ip: '10.70.2.1', port: 5 }, { ip: '10.70.2.2', port: 443 }, 'out', Buffer.from('x'), { pid: 1, comm: 'c', lib: 'openssl' }); // hook-only
    const a = new Analyzer();
    const feed = a.stream();
    for (const blk of parseBuffer(b.build())) feed(blk);
    const byState = (): Record<string, number> => {
      const want: Record<string, number> = { 'no-reply': 0, refused: 0, established: 0, closing: 0, closed: 0, reset: 0, midstream: 0 };
      for (const f of a.flows()) if (f.tcp) want[f.tcp.state]!++;
      return want;
    };
    expect(a.tcpStates).toEqual(byState());
    expect(a.tcpStates).toMatchObject({ refused: 1, closed: 1, 'no-reply': 1, midstream: 1 });
    // the refused port answers after all, and the hook-only flow's packet comes
    const more = new CaptureBuilder(1_732_620_002_000);
    more.tcp({ src: '10.70.2.1', dst: '10.70.2.2', sport: 3, dport: 80, seq: 1, ack: 1, flags: RST });
    more.tcp({ src: '10.70.2.1', dst: '10.70.2.2', sport: 5, dport: 443, seq: 1, ack: 1, flags: ACK });
    for (const blk of parseBuffer(more.build())) feed(blk);
    expect(a.tcpStates).toEqual(byState());
    expect(a.tcpStates).toMatchObject({ 'no-reply': 0, reset: 1, midstream: 2 });
  });

  it('is in the JSON lines (by the template) and in the filter language', () => {
    const refused = flowOf([['c', SYN], ['s', RST | ACK]]);
    const closed = flowOf([['c', SYN], ['s', SYN | ACK], ['c', FIN | ACK], ['s', FIN | ACK]], 40001);
    const lines = new FlowJsonLines();
    lines.add(refused);
    lines.add(closed);
    expect(lines.counts).toEqual({ templated: 2, walked: 0, stringified: 0 });
    const text = lines.take().toString();
    expect(text).toBe(`${JSON.stringify(refused)}\n${JSON.stringify(closed)}\n`);
    expect(text).toContain('"tcp":{"state":"refused","resetBy":"server","retransmissions":0}');
    expect(compileFilter('tcp.state == "refused"')(refused)).toBe(true);
    expect(compileFilter('tcp.state == "refused"')(closed)).toBe(false);
    expect(compileFilter('tcp.resetBy == "server"')(refused)).toBe(true);
    expect(compileFilter('!tcp.resetBy')(closed)).toBe(true);
  });
});
