// DNS over TCP (RFC 1035 4.2.2: each message after a two-byte length), as `dig +tcp`, a resolver retrying a truncated
// answer, or a zone transfer carry it: every query and answer of the connection, both directions, whatever the
// segments' cut, read as tshark reads the same packets. Before, only the client's first query was read, unanswered.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import dnsPacket, { type DnsPacket } from 'dns-packet';
import type { Flow } from '../../src/model/flow.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { analyzeCapture, CaptureBuilder, tcpConversation } from './core-packet-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'tapscope-dnstcp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A DNS message with its two-byte length, as TCP carries it. */
const framed = (m: DnsPacket): Buffer => dnsPacket.streamEncode(m);

const query = (id: number, name: string, type: 'A' | 'AAAA' | 'TXT' = 'A') => framed({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
const q1 = query(0x1111, 'one.example.test');
const q2 = query(0x2222, 'two.example.test', 'AAAA');
const q3 = query(0x3333, 'gone.example.test');
const r1 = framed({ type: 'response', id: 0x1111, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'one.example.test' }], answers: [{ type: 'A', name: 'one.example.test', data: '192.0.2.1' }, { type: 'A', name: 'one.example.test', data: '192.0.2.2' }] });
const r2 = framed({ type: 'response', id: 0x2222, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'AAAA', name: 'two.example.test' }], answers: [{ type: 'AAAA', name: 'two.example.test', data: '2001:db8::2' }] });
// (a TXT answer of 3000 bytes: a message longer than a segment)
const big = framed({ type: 'response', id: 0x3333, flags: dnsPacket.RECURSION_DESIRED | (3 & 0xf), questions: [{ type: 'A', name: 'gone.example.test' }], answers: [{ type: 'TXT', name: 'gone.example.test', data: ['x'.repeat(250), ...Array.from({ length: 11 }, (_, i) => String.fromCharCode(0x61 + i).repeat(250))] }] });

const analyze = (bytes: Buffer): Flow[] => analyzeCapture(bytes, { end: true }).flows();

describe('DNS over TCP', () => {
  // client: q1 and the first 5 bytes of q2 in one segment, the rest of q2 and q3 in the next; server: r1 cut after
  // its length's first byte, then its rest and r2, then the long answer in three segments
  const b = new CaptureBuilder();
  const client = { ip: '10.53.0.1', port: 41000 };
  const server = { ip: '10.53.0.53', port: 53 };
  tcpConversation(b, client, server, [Buffer.concat([q1, q2.subarray(0, 5)]), Buffer.concat([q2.subarray(5), q3]), null, null], [
    r1.subarray(0, 1), Buffer.concat([r1.subarray(1), r2]), big.subarray(0, 1400), big.subarray(1400),
  ]);
  const file = join(tmp, 'dns-tcp.pcapng');
  writeFileSync(file, b.build());
  const flows = analyze(b.build());

  it('reads every query and its answer, both ways, across segment cuts', () => {
    expect(flows).toHaveLength(1);
    const f = flows[0]!;
    expect(f.app).toBe('dns');
    expect(f.dns).toEqual([
      { id: 0x1111, query: 'one.example.test', type: 'A', rcode: 'NOERROR', answers: ['A 192.0.2.1', 'A 192.0.2.2'] },
      { id: 0x2222, query: 'two.example.test', type: 'AAAA', rcode: 'NOERROR', answers: ['AAAA 2001:db8::2'] },
      { id: 0x3333, query: 'gone.example.test', type: 'A', rcode: 'NXDOMAIN', answers: [expect.stringMatching(/^TXT x{250} a{250} b{250}/)] },
    ]);
  });

  it('as tshark reads the same packets', () => {
    // (JSON, each frame's DNS messages a list: a segment may end one message and carry the next)
    const r = spawnSync('tshark', ['-r', file, '-Y', 'dns', '-T', 'json', '--no-duplicate-keys', '-J', 'dns'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(r.status, r.stderr).toBe(0);
    type Layer = Record<string, unknown>;
    const messages = (JSON.parse(r.stdout) as { _source: { layers: { dns: Layer | Layer[] } } }[]).flatMap((p) => [p._source.layers.dns].flat());
    const read = messages.map((m) => {
      const flags = m['dns.flags_tree'] as Layer;
      const queries = Object.values(m.Queries as Layer) as Layer[];
      const answers = Object.values((m.Answers ?? {}) as Layer) as Layer[];
      return {
        id: Number(m['dns.id']), response: flags['dns.flags.response'] === '1', query: queries[0]!['dns.qry.name'], rcode: Number(flags['dns.flags.rcode'] ?? 0),
        addrs: answers.map((a) => a['dns.a'] ?? a['dns.aaaa']).filter((x) => x !== undefined),
      };
    });
    const ours = flows[0]!.dns!;
    expect(read.filter((m) => !m.response).map((m) => [m.id, m.query])).toEqual(ours.map((e) => [e.id, e.query]));
    expect(read.filter((m) => m.response).map((m) => [m.id, m.query, ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN'][m.rcode], m.addrs]))
      .toEqual(ours.map((e) => [e.id, e.query, e.rcode, e.answers.filter((x) => !x.startsWith('TXT')).map((x) => x.split(' ')[1])]));
  });

  it('reads the same messages whatever size the segments are cut to (1 to 120 bytes, and 1460)', () => {
    const c2s = Buffer.concat([q1, q2, q3]);
    const s2c = Buffer.concat([r1, r2, big]);
    const cut = (buf: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(buf.length / n) }, (_, i) => buf.subarray(i * n, (i + 1) * n));
    const want = flows[0]!.dns;
    for (const n of [...Array.from({ length: 120 }, (_, i) => i + 1), 1460]) {
      const b2 = new CaptureBuilder();
      const cs = cut(c2s, n);
      const ss = cut(s2c, n);
      // (all of the client's segments, then all of the server's: each direction's messages whole only at its end)
      tcpConversation(b2, client, server, [...cs, ...ss.map(() => null)], [...cs.map(() => null), ...ss]);
      expect(analyze(b2.build())[0]!.dns, `segments of ${n} bytes`).toEqual(want);
    }
  });

  it('stops reading a direction at a gap (the next length is not known), keeping what came before', () => {
    const g = new CaptureBuilder();
    const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
    const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
    g.tcp({ ...C, seq: 100, flags: 0x02 });
    g.tcp({ ...S, seq: 900, ack: 101, flags: 0x12 });
    g.tcp({ ...C, seq: 101, ack: 901, flags: 0x10 });
    g.tcp({ ...C, seq: 101, ack: 901, flags: 0x18, payload: q1 });
    g.tcp({ ...S, seq: 901, ack: 101 + q1.length, flags: 0x18, payload: r1 });
    // q2 lost; after it more segments than the reassembler holds past a hole (512), which make it skip the hole
    let seq = 101 + q1.length + q2.length;
    for (let i = 0; i < 600; i++) {
      const q = query(i, `after-gap-${i}.test`);
      g.tcp({ ...C, seq, ack: 901 + r1.length, flags: 0x18, payload: q });
      seq += q.length;
    }
    const f = analyze(g.build())[0]!;
    expect(f.dns).toEqual([{ id: 0x1111, query: 'one.example.test', type: 'A', rcode: 'NOERROR', answers: ['A 192.0.2.1', 'A 192.0.2.2'] }]);
  });

  it('a connection taken up in the middle: a direction whose first bytes begin a message is read, one in the middle of a message is not', () => {
    const C = { src: client.ip, dst: server.ip, sport: client.port, dport: server.port };
    const S = { src: server.ip, dst: client.ip, sport: server.port, dport: client.port };
    /** no SYNs: the client's segments and the server's, in turns, from these sequence numbers */
    const midstream = (cs: Buffer[], ss: Buffer[]): Flow => {
      const m = new CaptureBuilder();
      let cseq = 7000;
      let sseq = 9000;
      for (let i = 0; i < Math.max(cs.length, ss.length); i++) {
        const c = cs[i];
        if (c) { m.tcp({ ...C, seq: cseq, ack: sseq, flags: 0x18, payload: c }); cseq += c.length; }
        const x = ss[i];
        if (x) { m.tcp({ ...S, seq: sseq, ack: cseq, flags: 0x18, payload: x }); sseq += x.length; }
      }
      const f = analyze(m.build())[0]!;
      expect(f.tcp?.state).toBe('midstream');
      return f;
    };
    const entries = (f: Flow) => f.dns?.map((e) => [e.id, e.rcode]) ?? [];
    // (both begin messages: every query and answer; the client's first segment cut inside the header too)
    expect(entries(midstream([q1.subarray(0, 5), q1.subarray(5), q2], [null, r1, r2] as Buffer[]))).toEqual([[0x1111, 'NOERROR'], [0x2222, 'NOERROR']]);
    // (the server's first bytes are the end of a long answer before the capture: its direction is not read; the
    // client's queries are)
    expect(entries(midstream([q1, q2], [big.subarray(1400), Buffer.concat([r1, r2])]))).toEqual([[0x1111, null], [0x2222, null]]);
    // (the client's first bytes are the middle of a query: the answers stand alone)
    expect(entries(midstream([q1.subarray(3), q2], [r1, r2]))).toEqual([[0x1111, 'NOERROR'], [0x2222, 'NOERROR']]);
    expect(midstream([q1.subarray(3), q2], [r1, r2]).dns!.every((e) => e.query !== '')).toBe(true);
    // (a query in the server's direction is no answer: not read)
    expect(entries(midstream([q1], [q2]))).toEqual([[0x1111, null]]);
  });

  it("a message in many parts, read from a file, the reader's buffers read into again between them: read whole", async () => {
    const long = framed({ type: 'response', id: 0x5555, flags: 0, questions: [{ type: 'TXT', name: 'long.example.test' }],
      answers: [{ type: 'TXT', name: 'long.example.test', data: Array.from({ length: 200 }, (_, i) => String.fromCharCode(0x61 + (i % 26)).repeat(250)) }] });
    const parts = Array.from({ length: Math.ceil(long.length / 1400) }, (_, i) => long.subarray(i * 1400, (i + 1) * 1400));
    const m = new CaptureBuilder();
    tcpConversation(m, client, server, [q1, ...parts.map(() => null)], [null, ...parts], {
      // (after the answer's second part, kept as it is, 4 MiB of another flow's datagrams)
      afterTurn: (turn) => {
        if (turn === 2) for (let i = 0; i < 3000; i++) m.udp({ src: '10.53.0.9', dst: '10.53.0.10', sport: 5000, dport: 6000, payload: Buffer.alloc(1400, i) });
      },
    });
    const path = join(tmp, 'dns-tcp-long.pcapng');
    writeFileSync(path, m.build());
    const { analyzer } = await analyzeFiles([{ path }]);
    const f = analyzer.flows().find((x) => x.app === 'dns')!;
    expect(f.dns).toHaveLength(2);
    expect(f.dns![1]!.answers[0]).toBe(`TXT ${Array.from({ length: 200 }, (_, i) => String.fromCharCode(0x61 + (i % 26)).repeat(250)).join(' ')}`);
  });

  it('stops reading a direction at a length shorter than a DNS header: not DNS over TCP (zero-filled segments were read as 700 empty messages each)', () => {
    const z = new CaptureBuilder();
    tcpConversation(z, client, server, [q1, Buffer.alloc(1400), Buffer.alloc(1400), q2, q3, null], [r1, null, null, null, null, big]);
    const f = analyze(z.build())[0]!;
    // (the client's queries after it are not read; the server's direction still is: its answer stands alone)
    expect(f.dns!.map((e) => [e.id, e.query, e.rcode])).toEqual([[0x1111, 'one.example.test', 'NOERROR'], [0x3333, 'gone.example.test', 'NXDOMAIN']]);
    // (a message of exactly a header's 12 bytes is DNS: read on)
    const header = framed({ type: 'query', id: 0x4444, flags: 0, questions: [] });
    expect(header.length).toBe(14);
    const h = new CaptureBuilder();
    tcpConversation(h, client, server, [q1, header, q2], [r1, null, r2]);
    expect(analyze(h.build())[0]!.dns!.map((e) => e.id)).toEqual([0x1111, 0x4444, 0x2222]);
  });
});
