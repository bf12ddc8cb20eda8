// `capture --out -`: live node streams, cut anywhere and interleaved, merged into one pcapng section that
// tshark reads, with every packet on its node's renamed interface, nothing of a node's stream lost but
// Tapscope's own records, and what cannot be merged left out with a note.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LiveSectionMerger } from '../../src/pcapng/merge.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { encodeCustom, encodeIsb } from '../../src/pcapng/writer.js';
import type { IsbBlock, PacketBlock, PcapngBlock } from '../../src/pcapng/types.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { CaptureBuilder, fixtureClientHello, tcpConversation } from './core-packet-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'tapscope-merge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A node's stream: TLS and HTTP on eth0, a decrypted record, Tapscope records, and a foreign custom block. */
function nodeStream(node: string, n: number, startMs: number): Buffer {
  const b = new CaptureBuilder(startMs).record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: node });
  for (let i = 0; i < n; i++) {
    const client = { ip: `10.${n}.${i}.2`, port: 40000 + i };
    tcpConversation(b, client, { ip: '10.9.0.1', port: 443 }, [fixtureClientHello()], [Buffer.from([0x16, 3, 3, 0, 1, 0])]);
    tcpConversation(b, { ...client, port: client.port + 1000 }, { ip: '10.9.0.1', port: 80 }, [Buffer.from(`GET /${node}/${i} HTTP/1.1\r\nHost: h\r\n\r\n`)], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
    b.tls(client, { ip: '10.9.0.1', port: 443 }, 'out', Buffer.from(`GET /tls/${node}/${i} HTTP/1.1\r\nHost: s\r\n\r\n`), { pid: 7, comm: 'curl', lib: 'openssl' });
  }
  b.raw(encodeCustom(12345, Buffer.from('not ours')));
  return b.build();
}

const packets = (blocks: PcapngBlock[]): PacketBlock[] => blocks.filter((b): b is PacketBlock => b.type === 'epb');

/**
 * A node's stream as the helper writes it in eBPF mode with the all-interfaces socket (native/FORMAT.md): the IDB `any`
 * (no packets) first, packets on eth0, decrypted records on tapscope-tls, and ISBs every second and at the end: `any`'s
 * and tapscope-tls's with isb_ifdrop (the capture ring's drops, the eBPF ring buffer's), eth0's without (one socket
 * served every interface); the statistics record with the same counts after each round.
 */
function droppingStream(node: string, ringDrops: number[], ringbufDrops: number[]): Buffer {
  const b = new CaptureBuilder(1_732_620_000_000).record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: node });
  const any = b.iface('any', 276);
  const client = { ip: '10.9.1.2', port: 41000 };
  ringDrops.forEach((drops, round) => {
    tcpConversation(b, { ...client, port: client.port + round }, { ip: '10.9.0.1', port: 80 }, [Buffer.from(`GET /${node}/${round} HTTP/1.1\r\nHost: h\r\n\r\n`)], [Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
    b.tls(client, { ip: '10.9.0.1', port: 443 }, 'out', Buffer.from(`GET /tls/${node}/${round} HTTP/1.1\r\nHost: s\r\n\r\n`), { pid: 7, comm: 'curl', lib: 'openssl' });
    const ts = { tsHigh: 0, tsLow: round };
    b.raw(encodeIsb({ interfaceId: any, ...ts, ifRecv: 1000 + drops, ifDrop: drops, osDrop: 0 }));
    b.raw(encodeIsb({ interfaceId: b.iface('eth0', 1), ...ts, ifRecv: 10 * (round + 1), osDrop: 0 }));
    b.raw(encodeIsb({ interfaceId: b.iface('tapscope-tls', 252), ...ts, ifRecv: round + 1, ifDrop: ringbufDrops[round]!, osDrop: 0 }));
    b.record({ t: 'stats', final: round === ringDrops.length - 1, packets: 10 * (round + 1), bytes: 1000, ringDrops: drops, ringbufDrops: ringbufDrops[round]!, snaplenCuts: 0 });
  });
  return b.build();
}

const isbs = (blocks: PcapngBlock[]): IsbBlock[] => blocks.filter((b): b is IsbBlock => b.type === 'isb');
/** Each interface's counts in its ISBs, in order: "NAME recv/drop" (drop "-" when the ISB has none). */
const isbCounts = (blocks: PcapngBlock[], prefix = ''): string[] =>
  isbs(blocks).map((b) => `${prefix}${b.iface.name} ${b.ifRecv}/${b.ifDrop ?? '-'}`);

describe('live streams merged into one section', () => {
  it('renames each node\'s interfaces, rewrites every packet\'s interface, keeps order per node, and tshark reads it', async () => {
    const a1 = nodeStream('node-a', 5, 1_732_620_000_000);
    const a2 = nodeStream('node-a', 2, 1_732_620_100_000); // after a reconnect
    const b = nodeStream('node-b', 7, 1_732_620_000_500);
    const out: Buffer[] = [];
    const m = new LiveSectionMerger((blk) => out.push(blk));
    let seed = 3;
    const rnd = (k: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % k; };
    // both nodes' bytes in pieces of 1..700 bytes, interleaved; node-a's second stream after its first
    const feeds: [string, Buffer][] = [['node-a', a1], ['node-b', b]];
    const at = [0, 0];
    while (feeds.some(([, buf], i) => at[i]! < buf.length)) {
      const i = rnd(2);
      const [node, buf] = feeds[i]!;
      if (at[i]! >= buf.length) continue;
      const n = 1 + rnd(700);
      m.push(node, buf.subarray(at[i]!, at[i]! + n));
      at[i]! += n;
    }
    m.begin('node-a');
    m.push('node-a', a2);
    expect(m.notes).toEqual([]);
    const merged = Buffer.concat(out);
    const blocks = parseBuffer(merged);
    expect(blocks.filter((x) => x.type === 'shb')).toHaveLength(1);
    expect(blocks.filter((x) => x.type === 'idb').map((x) => x.type === 'idb' && x.iface.name)).toEqual(expect.arrayContaining(['node-a/eth0', 'node-b/eth0', 'node-a/tapscope-tls', 'node-b/tapscope-tls']));
    // Tapscope's records are left out, another vendor's custom block is not
    expect(blocks.filter((x) => x.type === 'custom').map((x) => x.type === 'custom' && x.pen)).toEqual([12345, 12345, 12345]);
    // every packet, on its node's interface of the same name, in its node's order
    const got = packets(blocks);
    const want = (node: string, ...streams: Buffer[]): string[] => streams.flatMap((s) => packets(parseBuffer(s)).map((p) => `${node}/${p.iface.name} ${p.data.toString('hex')} ${p.tsMs}`));
    const mine = (node: string): string[] => got.filter((p) => p.iface.name?.startsWith(`${node}/`)).map((p) => `${p.iface.name} ${p.data.toString('hex')} ${p.tsMs}`);
    expect(mine('node-a')).toEqual(want('node-a', a1, a2));
    expect(mine('node-b')).toEqual(want('node-b', b));
    expect(got.length).toBe(mine('node-a').length + mine('node-b').length);
    // comments (a decrypted record's attribution) stay with their packet
    expect(got.filter((p) => p.comments.some((c) => c.startsWith('tapscope-tls '))).length).toBe(5 + 2 + 7);

    const f = join(dir, 'merged.pcapng');
    writeFileSync(f, merged);
    const t = spawnSync('tshark', ['-r', f, '-T', 'fields', '-e', 'frame.interface_name', '-Y', 'http.request'], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Running as user'))).toEqual([]);
    const byIface = t.stdout.trim().split('\n').reduce<Record<string, number>>((acc, l) => ({ ...acc, [l]: (acc[l] ?? 0) + 1 }), {});
    // plain HTTP requests on eth0, decrypted ones on the record interface (tshark dissects exported PDUs as HTTP)
    expect(byIface['node-a/eth0']).toBe(5 + 2);
    expect(byIface['node-b/eth0']).toBe(7);
    expect(byIface['node-a/tapscope-tls']).toBe(5 + 2);

    // Tapscope reads it too: the same requests, the decrypted ones still with their plaintext
    const { analyzer } = await analyzeFiles([{ path: f }]);
    const paths = analyzer.flows().flatMap((x) => x.http.map((h) => h.path)).sort();
    const expected = [...[0, 1, 2, 3, 4].map((i) => `/node-a/${i}`), ...[0, 1].map((i) => `/node-a/${i}`), ...[0, 1, 2, 3, 4, 5, 6].map((i) => `/node-b/${i}`),
      ...[0, 1, 2, 3, 4].map((i) => `/tls/node-a/${i}`), ...[0, 1].map((i) => `/tls/node-a/${i}`), ...[0, 1, 2, 3, 4, 5, 6].map((i) => `/tls/node-b/${i}`)].sort();
    expect(paths).toEqual(expected);
  });

  it('passes every ISB on, on its node\'s renamed interface: the drops of the capture ring (`any`) and the eBPF ring buffer (tapscope-tls) reach Wireshark and the core', async () => {
    const a = droppingStream('node-a', [5, 1737], [0, 3]);
    const bs = droppingStream('node-b', [0, 40], [2, 2]);
    const out: Buffer[] = [];
    const m = new LiveSectionMerger((blk) => out.push(blk));
    // (cut anywhere and interleaved, as the nodes' streams arrive)
    for (let i = 0; i < Math.max(a.length, bs.length); i += 97) {
      m.push('node-a', a.subarray(i, i + 97));
      m.push('node-b', bs.subarray(i, i + 97));
    }
    expect(m.notes).toEqual([]);
    const merged = Buffer.concat(out);
    const blocks = parseBuffer(merged);
    const ofNode = (node: string): string[] => isbCounts(blocks).filter((x) => x.startsWith(`${node}/`));
    expect(ofNode('node-a')).toEqual(isbCounts(parseBuffer(a), 'node-a/'));
    expect(ofNode('node-b')).toEqual(isbCounts(parseBuffer(bs), 'node-b/'));
    expect(ofNode('node-a')).toEqual(['node-a/any 1005/5', 'node-a/eth0 10/-', 'node-a/tapscope-tls 1/0', 'node-a/any 2737/1737', 'node-a/eth0 20/-', 'node-a/tapscope-tls 2/3']);
    // the `any` interface carries counts, never packets
    expect(packets(blocks).filter((p) => p.iface.name?.endsWith('/any'))).toEqual([]);

    // Wireshark reads them: its pcapng dissector finds each ISB's isb_ifdrop on the renamed interface
    const f = join(dir, 'merged-drops.pcapng');
    writeFileSync(f, merged);
    const t = spawnSync('tshark', ['-r', f, '-X', 'read_format:MIME Files Format', '-T', 'json', '--no-duplicate-keys'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(t.status, t.stderr).toBe(0);
    expect(wiresharkDrops(t.stdout, blocks)).toEqual({ 'node-a/any': 1737, 'node-a/tapscope-tls': 3, 'node-b/any': 40, 'node-b/tapscope-tls': 2 });

    // the core: from the helper's statistics when the stream has them, else from the ISBs (the merged stream has no
    // Tapscope records), the same count and never both
    for (const [stream, want] of [[a, 1737 + 3], [bs, 40 + 2]] as const) {
      const one = join(dir, `one-${want}.pcapng`);
      writeFileSync(one, stream);
      const { analyzer } = await analyzeFiles([{ path: one }]);
      expect([...analyzer.nodes.values()].map((n) => n.drops)).toEqual([want]);
    }
    const { analyzer } = await analyzeFiles([{ path: f }]);
    expect([...analyzer.nodes.values()].reduce((n, x) => n + x.drops, 0)).toBe(1737 + 3 + 40 + 2);
  });

  it('leaves out a big-endian section and a stream that is not pcapng, with a note each, and merges the rest', () => {
    const out: Buffer[] = [];
    const m = new LiveSectionMerger((blk) => out.push(blk));
    const be = readFileSync(join(import.meta.dirname, '../fixtures/pcapng/lo-udp-be.pcapng'));
    m.push('big', be);
    m.push('junk', Buffer.from('HTTP/1.1 200 OK\r\n\r\nnot a capture at all'));
    m.push('good', nodeStream('good', 1, 1_732_620_000_000));
    m.push('junk', nodeStream('junk', 1, 1_732_620_000_000)); // nothing more of a stream that went wrong
    expect(m.notes.join('\n')).toMatch(/big: a big-endian section is left out/);
    expect(m.notes.join('\n')).toMatch(/junk: its stream is not pcapng here/);
    const blocks = parseBuffer(Buffer.concat(out));
    const names = new Set(packets(blocks).map((p) => p.iface.name));
    expect([...names].sort()).toEqual(['good/eth0', 'good/tapscope-tls']);
    // a new stream of the same node (a reconnect) is merged again
    m.begin('junk');
    m.push('junk', nodeStream('junk', 1, 1_732_620_000_000));
    expect(new Set(packets(parseBuffer(Buffer.concat(out))).map((p) => p.iface.name))).toContain('junk/eth0');
  });
});

/**
 * What Wireshark reads as each interface's drops (its capture file properties: the last ISB's isb_ifdrop of each
 * interface), from its own pcapng dissector (`-X read_format:MIME Files Format`); interfaces named from blocks.
 */
function wiresharkDrops(json: string, blocks: PcapngBlock[]): Record<string, number> {
  type Node = Record<string, unknown>;
  const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  const names = blocks.filter((b) => b.type === 'idb').map((b) => (b.type === 'idb' ? b.iface.name : null));
  const frames = JSON.parse(json) as { _source: { layers: Record<string, Node> } }[];
  const last = new Map<string, number>();
  for (const block of list(frames[0]?._source.layers['file-pcapng']?.['pcapng.block'] as Node | Node[])) {
    if (block['pcapng.block.type'] !== '0x00000005') continue;
    const data = block['pcapng.block.data'] as Node;
    const opts = list((data['pcapng.options'] as Node | undefined)?.['pcapng.options.option'] as Node | Node[]);
    const drop = opts.find((o) => o['pcapng.options.option.data.interface.dropped'] !== undefined);
    if (drop) last.set(names[Number(data['pcapng.interface_id'])] ?? '?', Number(drop['pcapng.options.option.data.interface.dropped']));
  }
  return Object.fromEntries([...last].sort());
}
