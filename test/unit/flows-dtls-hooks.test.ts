// DTLS plaintext from the hooks: a record whose port type is UDP's (the helper writes PT_UDP for a UDP socket's
// records, native/FORMAT.md) joins the UDP flow of its ports, never a TCP flow of the same ports; its side's verdict
// says plaintext captured, by hook. A record with port 0 (an unconnected socket whose peer the hook did not learn)
// is no connection's. A server's record on an unconnected socket bound to 0.0.0.0 or :: names the wildcard as its
// local address: it joins the one UDP flow between its peer and its port, on one thread or two, and never a guess
// among two. The DTLS hellos are a real OpenSSL client's (the fingerprint fixtures').
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flowsOnThreads } from '../../src/cli/flows-parallel.js';
import { analyzeFiles, readWithFlowIds } from '../../src/flows/load.js';
import { exportCapture } from '../../src/export/index.js';
import { parseBuffer } from '../../src/pcapng/reader.js';
import { LINKTYPE_WIRESHARK_UPPER_PDU, type PcapngBlock } from '../../src/pcapng/types.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { buildExportedPdu, parseExportedPdu } from '../../src/pcapng/exported-pdu.js';
import { analyzeCapture, CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

const hellos = (JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/dissect/clienthellos.json'), 'utf8')) as {
  hellos: { library: string; transport: string; datagramsHex?: string[] }[];
}).hellos;
const opensslDtls = hellos.find((h) => h.transport === 'dtls' && h.library === 'openssl')!.datagramsHex!.map((d) => Buffer.from(d, 'hex'));

const client = { ip: '10.9.0.1', port: 41000 };
const server = { ip: '10.9.0.2', port: 4433 };
const CLIENT = { pid: 100, comm: 'openssl', lib: 'openssl', udp: true };
const SERVER = { pid: 200, comm: 'openssl', lib: 'openssl', udp: true };

function analyze(buf: Buffer): { flows: Flow[]; analyzer: Analyzer } {
  const a = analyzeCapture(buf, { end: true });
  return { flows: a.flows(), analyzer: a };
}

/** A DTLS connection's datagrams: the client's hello, then application data both ways (bytes as DTLS records carry them). */
function dtlsDatagrams(b: CaptureBuilder, c = client, s = server): void {
  for (const d of opensslDtls) b.udp({ src: c.ip, dst: s.ip, sport: c.port, dport: s.port, payload: d });
  b.udp({ src: s.ip, dst: c.ip, sport: s.port, dport: c.port, payload: Buffer.from('17fefd0001000000000001001a', 'hex') });
  b.udp({ src: c.ip, dst: s.ip, sport: c.port, dport: s.port, payload: Buffer.from('17fefd0001000000000002001a', 'hex') });
}

function base(): CaptureBuilder {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1' });
  return b;
}

describe('DTLS records from the hooks', () => {
  it('the port type tag round-trips: PT_UDP for a DTLS record, PT_TCP otherwise', () => {
    expect(parseExportedPdu(buildExportedPdu('data', client, server, Buffer.from('x'), true))).toMatchObject({ udp: true, src: { port: 41000 }, dst: { port: 4433 } });
    expect(parseExportedPdu(buildExportedPdu('data', client, server, Buffer.from('x')))).toMatchObject({ udp: false });
  });

  it('join the UDP flow: both sides captured, by hook, the flow still read from its packets', () => {
    const b = base();
    dtlsDatagrams(b);
    b.tls(client, server, 'out', Buffer.from('hello over dtls\n'), CLIENT);
    b.tls(client, server, 'in', Buffer.from('hello over dtls\n'), SERVER);
    b.tls(server, client, 'out', Buffer.from('and back\n'), SERVER);
    b.tls(server, client, 'in', Buffer.from('and back\n'), CLIENT);
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    const f = flows[0]!;
    expect(f).toMatchObject({ transport: 'udp', app: 'dtls', seenBy: 'packets', src: client, dst: server, packets: opensslDtls.length + 2 });
    expect(f.tls!.sni).toBe('fp.tapscope.test');
    expect(f.tls!.ja4).toMatch(/^d/);
    expect(f.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true, reason: null });
    expect(f.tls!.server).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true, reason: null });
    // (a datagram's plaintext is not read as HTTP)
    expect(f.http).toEqual([]);
  });

  it("a record written before its connection's datagrams (the helper's packet ring hands them over later): the hello is still read", () => {
    const b = base();
    b.tls(client, server, 'out', Buffer.from('hello over dtls\n'), CLIENT);
    dtlsDatagrams(b);
    b.tls(client, server, 'in', Buffer.from('hello over dtls\n'), SERVER);
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ transport: 'udp', app: 'dtls', seenBy: 'packets', src: client, dst: server, packets: opensslDtls.length + 2 });
    expect(flows[0]!.tls).toMatchObject({ sni: 'fp.tapscope.test', ja4: expect.stringMatching(/^d/) });
    expect(flows[0]!.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
  });

  it('never join a TCP flow of the same ports, nor a TCP record a UDP flow', () => {
    const b = base();
    // a TLS connection over TCP on the same addresses and ports, whose hook saw nothing
    tcpConversation(b, client, server, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x01])], []);
    dtlsDatagrams(b);
    b.tls(client, server, 'out', Buffer.from('over dtls\n'), CLIENT);
    const { flows } = analyze(b.build());
    expect(flows.map((f) => f.transport).sort()).toEqual(['tcp', 'udp']);
    const udp = flows.find((f) => f.transport === 'udp')!;
    const tcp = flows.find((f) => f.transport === 'tcp')!;
    expect(udp.tls!.client).toMatchObject({ via: 'hook', plaintext: true });
    expect(tcp.tls?.client?.plaintext ?? false).toBe(false);
    // and the other way: a TCP connection's record leaves the UDP flow alone
    const b2 = base();
    tcpConversation(b2, client, server, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x01])], []);
    dtlsDatagrams(b2);
    b2.tls(client, server, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n'), { ...CLIENT, udp: false });
    const two = analyze(b2.build()).flows;
    expect(two.find((f) => f.transport === 'tcp')!.tls!.client).toMatchObject({ via: 'hook', plaintext: true });
    expect(two.find((f) => f.transport === 'tcp')!.http.map((h) => h.path)).toEqual(['/']);
    expect(two.find((f) => f.transport === 'udp')!.tls!.client!.plaintext).toBe(false);
  });

  it('make a hook-only UDP flow when no datagram of it was captured', () => {
    const b = base();
    b.record({ t: 'conn', proto: 'udp', local: client, remote: server, role: 'client', pid: 100, tid: 100, comm: 'openssl', via: 'tracepoint' });
    b.tls(client, server, 'out', Buffer.from('no packets\n'), CLIENT);
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ transport: 'udp', app: 'dtls', seenBy: 'hook-only', packets: 0, tcp: null, src: client, dst: server });
    expect(flows[0]!.tls!.client).toMatchObject({ via: 'hook', plaintext: true });
  });

  it('a UDP flow its datagrams left unnamed (to port 443, the server\'s first: QUIC was still possible) is DTLS by its records', () => {
    const b = base();
    const s443 = { ip: server.ip, port: 443 };
    b.udp({ src: s443.ip, dst: client.ip, sport: 443, dport: client.port, payload: Buffer.from('17fefd0001000000000002001a', 'hex') });
    b.tls(client, s443, 'out', Buffer.from('late\n'), CLIENT);
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ transport: 'udp', app: 'dtls' });
    expect(flows[0]!.tls!.client).toMatchObject({ via: 'hook', plaintext: true });
  });

  it('a record naming port 0 (an unconnected socket, its peer not learned) is no connection\'s: no flow to 0.0.0.0:0', () => {
    const b = base();
    dtlsDatagrams(b);
    b.tls({ ip: '0.0.0.0', port: 0 }, server, 'in', Buffer.from('from someone\n'), SERVER);
    const { flows, analyzer } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]!.transport).toBe('udp');
    expect(flows.some((f) => f.src.port === 0 || f.dst.port === 0)).toBe(false);
    expect(flows[0]!.tls!.server!.plaintext).toBe(false);
    expect(analyzer.counters).toMatchObject({ tlsRecords: 1, tlsRecordsUnmatched: 1 });
  });

  it('a wildcard server\'s records (0.0.0.0, its port, the client) join the one UDP flow between them: its side captured', () => {
    const b = base();
    dtlsDatagrams(b);
    const any = { ip: '0.0.0.0', port: server.port };
    b.tls(client, any, 'in', Buffer.from('hello\n'), SERVER);
    b.tls(any, client, 'out', Buffer.from('back\n'), SERVER);
    const { flows, analyzer } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ transport: 'udp', app: 'dtls', src: client, dst: server });
    expect(flows[0]!.tls!.server).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    // (the client's side is not the server's plaintext)
    expect(flows[0]!.tls!.client!.plaintext).toBe(false);
    expect(analyzer.counters).toMatchObject({ tlsRecords: 2, tlsRecordsUnmatched: 0 });
  });

  it("a wildcard server's record before any datagram or record of its flow (the helper's packet ring hands them over later) joins the flow when it comes", () => {
    const b = base();
    const any = { ip: '0.0.0.0', port: server.port };
    // (the server's read reported before the client's write, and both before the datagrams)
    b.tls(client, any, 'in', Buffer.from('hello\n'), SERVER);
    b.tls(client, server, 'out', Buffer.from('hello\n'), CLIENT);
    dtlsDatagrams(b);
    b.tls(any, client, 'out', Buffer.from('back\n'), SERVER);
    const { flows, analyzer } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ transport: 'udp', app: 'dtls', seenBy: 'packets', src: client, dst: server });
    expect(flows[0]!.tls).toMatchObject({ sni: 'fp.tapscope.test' });
    expect(flows[0]!.tls!.server).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    expect(flows[0]!.tls!.client).toMatchObject({ library: 'openssl', via: 'hook', plaintext: true });
    expect(analyzer.counters).toMatchObject({ tlsRecords: 3, tlsRecordsUnmatched: 0 });
    // (and with no client record: the first datagram makes the flow)
    const c = base();
    c.tls(client, any, 'in', Buffer.from('hello\n'), SERVER);
    dtlsDatagrams(c);
    const only = analyze(c.build());
    expect(only.flows).toHaveLength(1);
    expect(only.flows[0]!.tls!.server).toMatchObject({ via: 'hook', plaintext: true });
    expect(only.analyzer.counters).toMatchObject({ tlsRecords: 1, tlsRecordsUnmatched: 0 });
  });

  it("read again (export, Follow stream, a flow's packets): a record kept for its flow comes with the flow's id, before the datagram that made the flow", async () => {
    const b = base();
    const any = { ip: '0.0.0.0', port: server.port };
    const other = { ip: '10.9.0.5', port: 41005 };
    b.udp({ src: other.ip, dst: server.ip, sport: other.port, dport: 53, payload: Buffer.from('not this one') });
    b.tls(client, any, 'in', Buffer.from('hello\n'), SERVER);
    // (one no flow comes for: at the end of the file, with no flow)
    b.tls({ ip: '10.9.0.7', port: 5555 }, any, 'in', Buffer.from('nobody\n'), SERVER);
    // (4 MiB between the record and its flow: the reader's buffers are read into again meanwhile)
    for (let i = 0; i < 3000; i++) b.udp({ src: other.ip, dst: server.ip, sport: other.port, dport: 53, payload: Buffer.alloc(1400, i) });
    dtlsDatagrams(b);
    const path = join(dir, 'kept-record.pcapng');
    writeFileSync(path, b.build());
    const dtls = analyze(readFileSync(path)).flows.find((f) => f.app === 'dtls')!;
    const seen: { b: PcapngBlock; id: string | null }[] = [];
    await readWithFlowIds([{ path }], (blk, id) => seen.push({ b: blk, id }));
    const isRecord = (x: PcapngBlock): boolean => x.type === 'epb' && x.iface.linkType === LINKTYPE_WIRESHARK_UPPER_PDU;
    // (every block once)
    expect(seen).toHaveLength(parseBuffer(readFileSync(path)).length);
    const records = seen.map((x, i) => ({ ...x, i })).filter((x) => isRecord(x.b));
    expect(records.map((r) => r.id)).toEqual([dtls.id, null]);
    const firstDatagram = seen.findIndex((x) => x.id === dtls.id && !isRecord(x.b));
    expect(records[0]!.i).toBe(firstDatagram - 1);
    expect(records[1]!.i).toBe(seen.length - 1);
    // (a copy of its bytes: the reader's buffer was read into again)
    expect((records[0]!.b as { data: Buffer }).data.includes('hello\n')).toBe(true);
    // the pcapng export of that flow alone has its datagrams and the record
    const { analyzer } = await analyzeFiles([{ path }]);
    const out = join(dir, 'kept-record-export.pcapng');
    await exportCapture([{ path }], analyzer, { format: 'pcapng', out, flowIds: new Set([dtls.id]) });
    const exported = parseBuffer(readFileSync(out)).filter((x) => x.type === 'epb');
    expect(exported.filter(isRecord)).toHaveLength(1);
    expect(exported.length).toBe(seen.filter((x) => x.id === dtls.id).length);
  });

  it('and so does an IPv6 wildcard socket\'s, its IPv4 peer mapped (::, ::ffff:a.b.c.d)', () => {
    const b = base();
    dtlsDatagrams(b);
    b.tls({ ip: '::ffff:10.9.0.1', port: client.port }, { ip: '::', port: server.port }, 'in', Buffer.from('hello\n'), SERVER);
    const { flows } = analyze(b.build());
    expect(flows).toHaveLength(1);
    expect(flows[0]!.tls!.server).toMatchObject({ via: 'hook', plaintext: true });
  });

  it('a wildcard record with no such flow, or two (the same peer and port to two local addresses), makes no flow and joins none', () => {
    const none = base();
    dtlsDatagrams(none);
    none.tls({ ip: '10.9.0.7', port: 5555 }, { ip: '0.0.0.0', port: server.port }, 'in', Buffer.from('hello\n'), SERVER);
    const one = analyze(none.build());
    expect(one.flows).toHaveLength(1);
    expect(one.flows[0]!.tls!.server!.plaintext).toBe(false);
    expect(one.flows.some((f) => f.src.ip === '0.0.0.0' || f.dst.ip === '0.0.0.0')).toBe(false);
    expect(one.analyzer.counters).toMatchObject({ tlsRecords: 1, tlsRecordsUnmatched: 1 });
    const two = base();
    dtlsDatagrams(two);
    dtlsDatagrams(two, client, { ip: '10.9.0.3', port: server.port });
    two.tls(client, { ip: '0.0.0.0', port: server.port }, 'in', Buffer.from('hello\n'), SERVER);
    const both = analyze(two.build());
    expect(both.flows).toHaveLength(2);
    for (const f of both.flows) expect(f.tls!.server!.plaintext, `${f.dst.ip}`).toBe(false);
    expect(both.analyzer.counters.tlsRecordsUnmatched).toBe(1);
  });

  it('on two threads: each wildcard record in the partition of its flow (UDP flows are partitioned by their ports)', async () => {
    const b = base();
    const any = { ip: '0.0.0.0', port: server.port };
    for (let i = 0; i < 8; i++) {
      const c = { ip: `10.9.1.${i + 1}`, port: 41000 + i };
      dtlsDatagrams(b, c);
      b.tls(c, any, 'in', Buffer.from(`hello ${i}\n`), { ...SERVER, pid: 300 + i });
    }
    const path = join(dir, 'wildcard.pcapng');
    writeFileSync(path, b.build());
    const { analyzer } = await analyzeFiles([{ path }]);
    const all = analyzer.flows();
    expect(all).toHaveLength(8);
    for (const f of all) expect(f.tls!.server, f.src.ip).toMatchObject({ via: 'hook', plaintext: true });
    expect((await flowsOnThreads({ files: [{ path }], json: true, filter: null }, 2)).rows).toEqual(all.map((x) => JSON.stringify(x)));
  });
});

const dir = mkdtempSync(join(tmpdir(), 'tsu-dtls-hooks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
