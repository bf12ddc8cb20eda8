// What a capture lost, as its helper counted it, is said by every command that reads the file (analyzeFiles' notes),
// not only by the capture itself: ring drops, eBPF ring buffer drops, snap-length cuts, added up over every helper
// stream of a node (a lost stream resumed by a new helper starts its counters at 0), and a stream that ended without
// its final statistics (a killed helper) says so. Real pcapng files, written by the repo's own builder.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeFiles } from '../../src/flows/load.js';
import { NodeMeta } from '../../src/flows/node-meta.js';
import { CaptureBuilder, fixtureClientHello, tcpConversation, tls12ServerHello } from './core-packet-builder.js';
import { encodeIsb, tsFromMs } from '../../src/pcapng/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tsc-losses-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const START_NS = 1_732_620_000_000_000_000;

/** One helper stream of node `vm`: a few packets, then its statistics records (the last one `final` or not). */
function helperStream(stats: Record<string, number>[], final: boolean): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'vm', startNs: START_NS });
  for (let i = 0; i < 3; i++) b.udp({ src: '10.62.0.1', dst: '10.62.0.2', sport: 4000, dport: 9000 + i, payload: Buffer.alloc(20, i) });
  stats.forEach((s, i) => b.record({ t: 'stats', packets: 3, bytes: 300, ...s, final: final && i === stats.length - 1 }));
  return b.build();
}

async function notesOf(...streams: Buffer[]): Promise<{ notes: string[]; drops: number }> {
  const f = join(dir, `c${Math.random().toString(36).slice(2)}.pcapng`);
  writeFileSync(f, Buffer.concat(streams));
  const { notes, analyzer } = await analyzeFiles([{ path: f }]);
  return { notes, drops: analyzer.nodes.get('vm')!.drops };
}

describe('the losses a capture file records', () => {
  it('are said when the file is read: ring drops, ring buffer drops and snap-length cuts, only those there were', async () => {
    const r = await notesOf(helperStream([{ ringDrops: 5 }, { ringDrops: 1737, ringbufDrops: 1, snaplenCuts: 58 }], true));
    expect(r.notes).toEqual(['vm: the capture lost data: 1737 packets dropped by the capture ring (the helper fell behind); 1 event of the TLS hooks ' +
      "(decrypted records among them) dropped by the eBPF ring buffer (their flows' plaintext may be incomplete); 58 packets cut to the snap length (their bytes past it were not captured)"]);

    expect(r.drops).toBe(1738);
    expect((await notesOf(helperStream([{ snaplenCuts: 2 }], true))).notes).toEqual(['vm: the capture lost data: 2 packets cut to the snap length (their bytes past it were not captured)']);
    expect((await notesOf(helperStream([{ ringDrops: 0 }], true))).notes).toEqual([]);
    // (no helper statistics, tcpdump's or a merged stream's: the interface statistics blocks' drops)
    const isb = new CaptureBuilder();
    isb.udp({ src: '10.62.0.1', dst: '10.62.0.2', sport: 4000, dport: 9000, payload: Buffer.alloc(20) });
    isb.raw(encodeIsb({ interfaceId: 0, ...tsFromMs(1_732_620_000_000), ifDrop: 7 }));
    const f = join(dir, 'isb.pcapng');
    writeFileSync(f, isb.build());
    const l = await analyzeFiles([{ path: f }]);
    expect(l.notes.filter((x) => x.includes('lost data'))).toEqual([expect.stringMatching(/: the capture lost data: 7 dropped, as its interface statistics blocks count them/)]);
  });

  it('add up every helper stream of a node: a resumed stream does not erase the drops of the one before it', async () => {
    const r = await notesOf(helperStream([{ ringDrops: 1786 }], true), helperStream([{ ringDrops: 0 }, { ringDrops: 14 }], true));
    expect(r.drops).toBe(1800);
    expect(r.notes).toEqual(['vm: the capture lost data: 1800 packets dropped by the capture ring (the helper fell behind)']);
  });

  it('say when a helper stream ended without its final statistics (killed, or cut off), each such stream', async () => {
    const r = await notesOf(helperStream([{ ringDrops: 0 }], false), helperStream([{ ringDrops: 0 }], true), helperStream([{ ringDrops: 0 }], false));
    const cut = "vm: the helper's stream (begun 2024-11-26T11:20:00.000Z) ended without its final statistics (the helper was killed or its stream cut off): " +
      'its counts end at its last statistics, up to a second before its end, and its last packets may be missing';
    expect(r.notes).toEqual([cut, cut]);
  });

  it('mark the TLS flows open while the eBPF ring buffer dropped the hooks\' events (tls.hookEventsLost), not the others', async () => {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', reason: 'test', hostname: 'vm', startNs: START_NS });
    b.record({ t: 'stats', ringbufDrops: 0, final: false });
    tcpConversation(b, { ip: '10.62.0.1', port: 40000 }, { ip: '10.62.0.2', port: 443 }, [fixtureClientHello()], [tls12ServerHello()], { fin: false });
    // (the next second's statistics count 5 dropped: the flow open then is marked)
    b.record({ t: 'stats', ringbufDrops: 5, final: false });
    b.ts += 10_000;
    tcpConversation(b, { ip: '10.62.0.1', port: 40001 }, { ip: '10.62.0.2', port: 443 }, [fixtureClientHello()], [tls12ServerHello()], { fin: false });
    b.record({ t: 'stats', ringbufDrops: 5, final: true });
    const f = join(dir, 'ringbuf.pcapng');
    writeFileSync(f, b.build());
    const { analyzer, notes } = await analyzeFiles([{ path: f }]);
    expect(analyzer.flows().map((x) => [x.src.port, x.tls?.hookEventsLost])).toEqual([[40000, 5], [40001, undefined]]);
    expect(notes.some((n) => n.includes('5 events of the TLS hooks'))).toBe(true);
  });

  it('find the losses a flow overlaps by search, as a scan of every loss would (thousands of seconds with drops)', () => {
    const m = new NodeMeta();
    m.apply({ t: 'capture', v: 1, mode: 'ebpf', hostname: 'vm' });
    let drops = 0;
    for (let s = 0; s < 3000; s++) {
      const before = m.stats;
      // (drops in most seconds, none in some)
      if (s % 7 !== 3) drops += 1 + (s % 5);
      m.apply({ t: 'stats', ringbufDrops: drops, final: false });
      m.statsAt(1_000_000 + s * 1000, before);
    }
    const scan = (from: number, to: number): number => m.ringbufLosses.reduce((n, x) => n + (x.fromMs <= to && x.toMs >= from ? x.n : 0), 0);
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let q = 0; q < 2000; q++) {
      const from = 990_000 + Math.floor(rnd() * 3_020_000);
      const to = from + Math.floor(rnd() * (q % 10 === 0 ? 400_000 : 3000));
      expect(m.ringbufLostDuring(from, to), `${from}..${to}`).toBe(scan(from, to));
    }
    expect(m.ringbufLostDuring(0, 2_000_000_000_000)).toBe(drops);
  });
});

