// IP fragments (fragments.ts): a UDP datagram over the MTU comes in fragments and only the first carries the ports. Each
// fragment counts for its flow, and the datagram goes to the dissectors whole once its fragments came, in any order, as
// a host puts it together and tshark reads it: a DNS answer of 3 KiB read whole, not cut at its first fragment.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { CaptureBuilder, analyzeCapture, ethernet, ipPacket } from './core-packet-builder.js';
import { readWithFlowIds } from '../../src/flows/load.js';
import { flowPackets } from '../../src/flows/flow-packets.js';
import { MAX_DATAGRAMS } from '../../src/flows/fragments.js';
import type { Flow } from '../../src/model/flow.js';

const C4 = '10.71.0.1';
const S4 = '10.71.0.53';
const C6 = 'fd00:71::1';
const S6 = 'fd00:71::53';
const TXT = Array.from({ length: 12 }, (_, i) => `record ${i} ${'t'.repeat(230)}`);

function query(id: number): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'TXT', name: 'big.frag.test' }] });
}

function answer(id: number): Buffer {
  return dnsPacket.encode({
    type: 'response', id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [{ type: 'TXT', name: 'big.frag.test' }],
    answers: TXT.map((t) => ({ type: 'TXT', name: 'big.frag.test', ttl: 60, data: t })),
  });
}

/** An IP packet's fragments of at most `size` bytes of its fragmentable part each (a multiple of 8), as a host sends them. */
function fragments(ip: Buffer, size: number, id: number): Buffer[] {
  const v6 = ip[0]! >> 4 === 6;
  const head = v6 ? ip.subarray(0, 40) : ip.subarray(0, 20);
  const body = ip.subarray(head.length);
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) {
    const part = body.subarray(at, Math.min(body.length, at + size));
    const more = at + size < body.length;
    if (v6) {
      const h = Buffer.from(head);
      const frag = Buffer.alloc(8);
      frag[0] = head[6]!; // the next header: the transport's
      frag.writeUInt16BE(at | (more ? 1 : 0), 2);
      frag.writeUInt32BE(id, 4);
      h[6] = 44;
      h.writeUInt16BE(8 + part.length, 4);
      out.push(Buffer.concat([h, frag, part]));
    } else {
      const h = Buffer.from(head);
      h.writeUInt16BE(20 + part.length, 2);
      h.writeUInt16BE(id, 4);
      h.writeUInt16BE((more ? 0x2000 : 0) | (at / 8), 6);
      out.push(Buffer.concat([h, part]));
    }
  }
  return out;
}

interface Exchange { c: string; s: string; id: number; order?: (f: Buffer[]) => Buffer[]; sport?: number }

function exchange(b: CaptureBuilder, x: Exchange): number {
  const sport = x.sport ?? 40001;
  b.udp({ src: x.c, dst: x.s, sport, dport: 53, payload: query(x.id) });
  const ip = ipPacket('udp', { src: x.s, dst: x.c, sport: 53, dport: sport, payload: answer(x.id) });
  const frags = fragments(ip, 1232, x.id);
  for (const f of (x.order ?? ((a) => a))(frags)) b.packet(ethernet(f));
  return frags.length;
}

const dns = (f: Flow): { answers: number; cut: boolean } => ({ answers: f.dns?.[0]?.answers.length ?? -1, cut: f.dns?.[0]?.cut === true });

describe('IP fragments of a UDP datagram', () => {
  for (const [name, c, s] of [['IPv4', C4, S4], ['IPv6', C6, S6]] as const) {
    for (const [orderName, order] of [['in order', undefined], ['last first', (a: Buffer[]) => [...a].reverse()], ['first last', (a: Buffer[]) => [...a.slice(1), a[0]!]]] as const) {
      it(`${name}, ${orderName}: the answer is read whole, and every fragment counts for the flow`, () => {
        const b = new CaptureBuilder();
        const n = exchange(b, { c, s, id: 7, order });
        expect(n).toBeGreaterThanOrEqual(3);
        const capture = b.build();
        const flows = analyzeCapture(capture, { end: true }).flows();
        expect(flows).toHaveLength(1);
        const f = flows[0]!;
        expect(f.packets).toBe(1 + n);
        expect(dns(f)).toEqual({ answers: TXT.length, cut: false });
        expect(f.dns![0]!.answers[0]).toBe(`TXT ${TXT[0]}`);
        // (the bytes: every frame's, as Wireshark's IP conversation counts them)
        const frames = tshark(capture, ['-T', 'fields', '-e', 'frame.len']);
        if (frames) expect(f.bytes).toBe(frames.trim().split('\n').reduce((a, l) => a + Number(l), 0));
        // (tshark, reassembling as a host does, reads as many answers from the same packets)
        const answers = tshark(capture, ['-Y', 'dns.flags.response == 1', '-T', 'fields', '-e', 'dns.count.answers']);
        if (answers !== null) expect(answers.trim()).toBe(String(TXT.length));
      });
    }
  }

  it('a datagram missing a fragment is read as far as its bytes reach, cut, at the end of the capture', () => {
    const b = new CaptureBuilder();
    const n = exchange(b, { c: C4, s: S4, id: 9, order: (a) => a.filter((_, i) => i !== 1) });
    const f = analyzeCapture(b.build(), { end: true }).flows()[0]!;
    expect(f.packets).toBe(n);
    const d = dns(f);
    expect(d.cut).toBe(true);
    expect(d.answers).toBeGreaterThan(0);
    expect(d.answers).toBeLessThan(TXT.length);
  });

  it('fragments of two datagrams interleaved, of flows alike but for the port, each go to their own', () => {
    const b = new CaptureBuilder();
    const one = fragments(ipPacket('udp', { src: S4, dst: C4, sport: 53, dport: 40001, payload: answer(1) }), 1232, 101);
    const two = fragments(ipPacket('udp', { src: S4, dst: C4, sport: 53, dport: 40002, payload: answer(2) }), 1232, 102);
    b.udp({ src: C4, dst: S4, sport: 40001, dport: 53, payload: query(1) });
    b.udp({ src: C4, dst: S4, sport: 40002, dport: 53, payload: query(2) });
    for (let i = 0; i < one.length; i++) b.packet(ethernet(two[i]!)).packet(ethernet(one[one.length - 1 - i]!));
    const flows = analyzeCapture(b.build(), { end: true }).flows();
    expect(flows.map((f) => [f.dst.port === 53 ? f.src.port : 0, f.packets, dns(f).answers, f.dns?.[0]?.id])).toEqual([
      [40001, 1 + one.length, TXT.length, 1], [40002, 1 + two.length, TXT.length, 2],
    ]);
  });

  it('a flow\'s packets, as the export and the packet list read them, include its later fragments', async () => {
    const b = new CaptureBuilder();
    const n = exchange(b, { c: C4, s: S4, id: 7, order: (a) => [...a].reverse() });
    const dir = mkdtempSync(join(tmpdir(), 'tapscope-frag-'));
    const path = join(dir, 'frag.pcapng');
    writeFileSync(path, b.build());
    const ids: (string | null)[] = [];
    await readWithFlowIds([{ path }], (blk, id) => { if (blk.type === 'epb') ids.push(id); });
    const flow = analyzeCapture(b.build(), { end: true }).flows()[0]!;
    // (the fragments before the first came before their flow did: the first and those after it are the flow's)
    expect(ids.filter((id) => id === flow.id).length).toBe(2);
    expect(ids.length).toBe(1 + n);
    const inOrder = new CaptureBuilder();
    exchange(inOrder, { c: C4, s: S4, id: 7 });
    writeFileSync(path, inOrder.build());
    const idsInOrder: (string | null)[] = [];
    await readWithFlowIds([{ path }], (blk, id) => { if (blk.type === 'epb') idsInOrder.push(id); });
    expect(new Set(idsInOrder)).toEqual(new Set([flow.id]));
    // (the packet list: the answer's fragments are the server's, each saying where it goes)
    const { rows } = await flowPackets([{ path }], flow);
    expect(rows.map((r) => [r.dir, r.info])).toEqual([
      ['c2s', ''], ['s2c', 'IP fragment (first)'], ...Array.from({ length: n - 2 }, () => ['s2c', expect.stringMatching(/^IP fragment \(offset \d+\)$/)]),
      ['s2c', expect.stringMatching(/^IP fragment \(offset \d+, last\)$/)],
    ]);
  });

  it('a TCP segment in fragments: its later fragments count for its flow', () => {
    const b = new CaptureBuilder();
    b.tcp({ src: C4, dst: S4, sport: 40100, dport: 80, seq: 1, flags: 0x02 });
    const ip = ipPacket('tcp', { src: C4, dst: S4, sport: 40100, dport: 80, seq: 2, payload: Buffer.from(`GET /${'x'.repeat(3000)} HTTP/1.1\r\nHost: h\r\n\r\n`) });
    const frags = fragments(ip, 1480, 55);
    for (const f of frags) b.packet(ethernet(f));
    const f = analyzeCapture(b.build(), { end: true }).flows()[0]!;
    expect(f.packets).toBe(1 + frags.length);
  });

  it('memory stays bounded: datagrams that never complete give up, the oldest first', () => {
    const b = new CaptureBuilder();
    const count = MAX_DATAGRAMS + 500;
    for (let i = 0; i < count; i++) {
      const frags = fragments(ipPacket('udp', { src: S4, dst: C4, sport: 53, dport: 20000 + i, payload: answer(i) }), 1232, i);
      b.packet(ethernet(frags[0]!));
    }
    const a = analyzeCapture(b.build());
    expect((a as unknown as { fragments: { size: number } }).fragments.size).toBeLessThanOrEqual(MAX_DATAGRAMS);
    // (those given up were read as far as their first fragments: each a DNS answer, cut)
    const flows = a.flows();
    expect(flows).toHaveLength(count);
    expect(flows.filter((f) => f.app === 'dns').length).toBeGreaterThanOrEqual(count - MAX_DATAGRAMS);
    a.endCapture();
    expect(a.flows().filter((f) => f.app === 'dns' && dns(f).cut).length).toBe(count);
  });
});

/** tshark's output on a capture, or null where tshark is missing. */
function tshark(capture: Buffer, args: string[]): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'tapscope-frag-'));
  const path = join(dir, 'c.pcapng');
  writeFileSync(path, capture);
  const r = spawnSync('tshark', ['-r', path, ...args], { encoding: 'utf8' });
  if (r.error) return null;
  expect(r.status).toBe(0);
  return r.stdout;
}
