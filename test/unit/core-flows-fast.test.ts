// The load fast path (file read in reused buffers, packets walked in place without block objects) against
// the full path (every block decoded into an object and fed to Analyzer.stream): the same flows, details,
// counters and node metadata, byte for byte, on the fixtures and on a generated capture of several
// sections (both byte orders, VLAN, IPv6, TLS, HTTP/1 with bodies across segments, DNS, decrypted records,
// out-of-order segments), read with chunk sizes that split blocks everywhere.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { parseBuffer, readBlocks } from '../../src/pcapng/index.js';
import type { PacketBlock } from '../../src/pcapng/types.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { CaptureBuilder, ethernet, fixtureClientHello, ipPacket, prelogin, tcpConversation, tds } from './core-packet-builder.js';
import { buildExportedPdu } from '../../src/pcapng/exported-pdu.js';

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
const SERVER_HELLO = Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00, 0x00, 0x3c, 0x03, 0x03]), Buffer.alloc(0x3c, 7)]);

/** Text, except every fourth body: binary (shown as its size; the parser keeps only its sample) */
function httpBody(i: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let k = 0; k < n; k++) b[k] = i % 4 === 1 ? (k * 7919 + i) & 0xff : 0x41 + ((k * 7 + i) % 26);
  return b;
}

/** One little-endian section with every kind of flow the fast path must treat like the full path. */
function mixedSection(startMs: number, node: string): Buffer {
  const b = new CaptureBuilder(startMs).record({ t: 'node', node });
  const ch = fixtureClientHello();
  for (let i = 0; i < 12; i++) {
    const v6 = i % 3 === 0;
    const client = { ip: v6 ? `fd00::${i + 1}` : `10.1.${i}.2`, port: 40000 + i };
    const tls = { ip: v6 ? 'fd00::443' : '10.2.0.1', port: 443 };
    tcpConversation(b, client, tls, [ch, Buffer.from('\x17\x03\x03\x00\x05hello')], [SERVER_HELLO, Buffer.from('\x17\x03\x03\x00\x02ok')], { isnC: 100 * i, isnS: 7000 + i });
    const body = httpBody(i, 3000 + i * 500);
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`);
    // the response in several segments, so a body stays in the parser across reads of the file
    tcpConversation(b, { ...client, port: client.port + 1000 }, { ip: tls.ip, port: 80 },
      [Buffer.from(`GET /x/${i} HTTP/1.1\r\nHost: h${i}.test\r\n\r\n`)],
      [head, body.subarray(0, 1000), body.subarray(1000, 2000), body.subarray(2000)]);
    const q = dnsPacket.encode({ type: 'query', id: i, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `n${i}.test` }] });
    const r = dnsPacket.encode({ type: 'response', id: i, questions: [{ type: 'A', name: `n${i}.test` }], answers: [{ type: 'A', name: `n${i}.test`, data: '10.9.9.9' }] });
    const dns = { ip: v6 ? 'fd00::53' : '10.2.0.53', port: 53 };
    // VLAN-tagged DNS
    b.packet(ethernet(ipPacket('udp', { src: client.ip, dst: dns.ip, sport: client.port + 2000, dport: 53, payload: q }), 100 + i));
    b.packet(ethernet(ipPacket('udp', { src: dns.ip, dst: client.ip, sport: 53, dport: client.port + 2000, payload: r }), 100 + i));
  }
  // protocols that switch to TLS in place: Postgres (SSLRequest, 'S') and SMTP (STARTTLS after EHLO)
  tcpConversation(b, { ip: '10.1.20.2', port: 41000 }, { ip: '10.2.0.5', port: 5432 },
    [Buffer.from('0000000804d2162f', 'hex'), ch], [Buffer.from('S'), SERVER_HELLO]);
  tcpConversation(b, { ip: '10.1.20.2', port: 41001 }, { ip: '10.2.0.25', port: 587 },
    [null, Buffer.from('EHLO c.test\r\n'), Buffer.from('STARTTLS\r\n'), ch],
    [Buffer.from('220 mx.test ESMTP\r\n'), Buffer.from('250-mx.test\r\n250 STARTTLS\r\n'), Buffer.from('220 go ahead\r\n'), SERVER_HELLO]);
  // HTTPS through a proxy: the tunnel's hellos after the CONNECT's answer
  tcpConversation(b, { ip: '10.1.20.2', port: 41002 }, { ip: '10.2.0.80', port: 3128 },
    [Buffer.from('CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n'), ch],
    [Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n'), SERVER_HELLO]);
  // behind a load balancer: a PROXY protocol v1 header before TLS, and a v2 header (cut across segments) before HTTP
  tcpConversation(b, { ip: '10.1.20.3', port: 41003 }, { ip: '10.2.0.1', port: 443 },
    [Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.7 10.2.0.1 51234 443\r\n'), ch])], [SERVER_HELLO]);
  const v2 = Buffer.from('0d0a0d0a000d0a515549540a2111000cc6336407c0000201c8220050', 'hex');
  tcpConversation(b, { ip: '10.1.20.3', port: 41004 }, { ip: '10.2.0.1', port: 80 },
    [v2.subarray(0, 5), Buffer.concat([v2.subarray(5), Buffer.from('GET /lb HTTP/1.1\r\nHost: lb.test\r\n\r\n')])],
    [null, Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')]);
  // XMPP's <starttls/>, and SQL Server's hello inside a TDS PRELOGIN packet
  const xmppOpen = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='c.test' version='1.0'>";
  tcpConversation(b, { ip: '10.1.20.4', port: 41005 }, { ip: '10.2.0.6', port: 5222 },
    [Buffer.from(xmppOpen), Buffer.concat([Buffer.from("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), ch])],
    [Buffer.from(`${xmppOpen}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>`), Buffer.concat([Buffer.from("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), SERVER_HELLO])]);
  tcpConversation(b, { ip: '10.1.20.4', port: 41006 }, { ip: '10.2.0.7', port: 1433 },
    [tds(0x12, prelogin(1)), tds(0x12, ch)], [tds(0x04, prelogin(1)), tds(0x12, SERVER_HELLO)]);
  // TLS taken up in the middle (no SYN: open before the capture), and a record its hook could not place
  const rec = (n: number): Buffer => Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0, n]), Buffer.alloc(n, 0x61)]);
  b.tcp({ src: '10.1.20.5', dst: '10.2.0.8', sport: 41007, dport: 6443, seq: 9000, ack: 5000, flags: 0x18, payload: Buffer.concat([rec(40), rec(30)]) });
  b.tcp({ src: '10.2.0.8', dst: '10.1.20.5', sport: 6443, dport: 41007, seq: 5000, ack: 9080, flags: 0x18, payload: rec(90) });
  b.tls(null, null, 'in', Buffer.from('GET /unplaced HTTP/1.1\r\n\r\n'), { pid: 42, comm: 'curl', lib: 'openssl' });
  // out of order: the second segment first (the reassembler keeps a copy of it)
  const C = { src: '10.3.0.1', dst: '10.3.0.2', sport: 50000, dport: 8080 };
  const req = Buffer.from('POST /upload HTTP/1.1\r\nHost: ooo.test\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij');
  b.tcp({ ...C, seq: 1, flags: 0x02 });
  b.tcp({ ...C, seq: 2 + 30, flags: 0x18, payload: req.subarray(30) });
  b.tcp({ ...C, seq: 2, flags: 0x18, payload: req.subarray(0, 30) });
  // decrypted records (the record fast path) and packets with options (flags, comments)
  const rc = { ip: '10.1.1.2', port: 40001 };
  const rs = { ip: '10.2.0.1', port: 443 };
  b.tls(rc, rs, 'out', Buffer.from('GET /secret HTTP/1.1\r\nHost: s.test\r\n\r\n'), { pid: 42, comm: 'curl', lib: 'openssl' });
  b.tls(rs, rc, 'in', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello'), { pid: 42, comm: 'curl', lib: 'openssl' });
  b.tls(rs, rc, 'in', Buffer.from(' world!'), { pid: 42, comm: 'curl', lib: 'openssl' });
  // a pod's own loopback in another namespace (a hook-only flow of its own), and an IPv6 one
  b.tls({ ip: '127.0.0.1', port: 40555 }, { ip: '127.0.0.1', port: 15001 }, 'out', Buffer.from('GET /pod HTTP/1.1\r\nHost: p\r\n\r\n'), { pid: 20, comm: 'app', lib: 'boringssl', netns: 4026532300 });
  b.tls({ ip: 'fd00::7', port: 50000 }, { ip: 'fd00::8', port: 8443 }, 'out', Buffer.from('GET /six HTTP/1.1\r\nHost: six\r\n\r\n'), { pid: 21, comm: 'java', lib: 'java-jsse' });
  // a record with no attribution comment, and one that is not HTTP
  b.packet(buildExportedPdu('data', rc, rs, Buffer.from('x')), { linkType: 252, iface: 'tapscope-tls', flags: 2 });
  b.tls(rc, rs, 'out', Buffer.from([0, 1, 2, 3]), { pid: 42, comm: 'curl', lib: 'openssl' });
  b.packet(ethernet(ipPacket('udp', { src: '10.4.0.1', dst: '10.4.0.2', sport: 5000, dport: 6000, payload: Buffer.from('opts') })), { flags: 2, comments: ['a comment'] });
  b.packet(Buffer.from([1, 2, 3]), { stepMs: 0 }); // not IP
  return b.build();
}

interface Snapshot {
  flows: string;
  details: string;
  counters: string;
  nodes: string;
}

function snapshot(a: Analyzer): Snapshot {
  const flows = a.flows();
  return {
    flows: JSON.stringify(flows),
    details: JSON.stringify(flows.map((f) => a.detail(f.id))),
    counters: JSON.stringify([a.counters, a.firstTs, a.lastTs, a.flowCount]),
    nodes: JSON.stringify([...a.nodes].map(([n, m]) => [n, m.packets, m.bytes])),
  };
}

/** The full path: every block as an object through Analyzer.stream. */
function fullPath(buf: Buffer): Snapshot {
  const a = new Analyzer();
  const feed = a.stream();
  for (const blk of parseBuffer(buf)) feed(blk);
  return snapshot(a);
}

async function fastPath(path: string, readSize?: number): Promise<Snapshot> {
  const a = new Analyzer();
  const sink = a.sinks();
  await readBlocks(path, sink.block, { onPacket: sink.packet, onRecord: sink.record, readSize });
  return snapshot(a);
}

let dir = '';
const files: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tapscope-fast-'));
  const multi = join(dir, 'multi.pcapng');
  // sections: generated LE, the big-endian fixture, the real loopback capture, another generated one
  writeFileSync(multi, Buffer.concat([
    mixedSection(1_732_620_000_000, 'alpha'), readFileSync(join(FIX, 'lo-udp-be.pcapng')),
    readFileSync(join(FIX, 'loopback-mix.pcapng')), mixedSection(1_732_620_100_000, 'beta'),
  ]));
  files.push(multi, join(FIX, 'loopback-mix.pcapng'), join(FIX, 'lo-udp.pcapng'), join(FIX, 'lo-udp-be.pcapng'), join(FIX, 'lo-udp.pcap'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('load fast path equals the full path', () => {
  it('on every capture, with reads that split blocks at every kind of boundary', async () => {
    for (const f of files) {
      const want = fullPath(readFileSync(f));
      expect(JSON.parse(want.flows).length, f).toBeGreaterThan(0);
      // 13, 1000 and 65,541 are not multiples of 4: block headers and trailers straddle reads; 65,541 reads the
      // next bytes while the parser walks the last (the read-ahead of large reads)
      for (const size of [undefined, 65_541, 4096, 1000, 13]) {
        const got = await fastPath(f, size);
        expect(got.flows, `${f} read ${size ?? 'default'}`).toBe(want.flows);
        expect(got.details, `${f} read ${size ?? 'default'}`).toBe(want.details);
        expect(got.counters, `${f} read ${size ?? 'default'}`).toBe(want.counters);
        expect(got.nodes, `${f} read ${size ?? 'default'}`).toBe(want.nodes);
      }
    }
  });

  it('the generated capture exercises what it claims (so the comparison cannot pass vacuously)', () => {
    // (large enough for several read-ahead reads of 65,541 bytes)
    expect(statSync(files[0]!).size).toBeGreaterThan(3 * 65_541);
    const flows = JSON.parse(fullPath(readFileSync(files[0]!)).flows) as { app: string; node: string; dst: { ip: string; port: number }; http: unknown[]; tls: { sni: string | null; client: { plaintext: boolean } | null } | null }[];
    const apps = new Set(flows.map((f) => f.app));
    for (const app of ['tls', 'http', 'dns', 'postgres', 'smtp']) expect(apps).toContain(app);
    // (the in-place upgrades were read as TLS: their hellos' server name, in both generated sections)
    expect(flows.filter((f) => f.app === 'postgres' || f.app === 'smtp').map((f) => f.tls?.sni)).toEqual(Array(4).fill('localhost'));
    // (and a proxy's tunnel)
    expect(flows.filter((f) => f.dst.port === 3128).map((f) => [f.app, f.tls?.sni])).toEqual(Array(2).fill(['http', 'localhost']));
    // (and the flows behind a load balancer's PROXY header)
    const proxied = flows.filter((f) => (f as unknown as { proxy?: { version: number } }).proxy);
    expect(proxied.map((f) => [f.app, (f as unknown as { proxy: { version: number } }).proxy.version, f.tls?.sni ?? f.http.length])).toEqual(Array(2).fill([['tls', 1, 'localhost'], ['http', 2, 1]]).flat());
    // (and XMPP's and SQL Server's upgrades, and TLS taken up in the middle)
    expect(flows.filter((f) => f.app === 'xmpp' || f.app === 'mssql').map((f) => [f.app, f.tls?.sni])).toEqual(Array(2).fill([['xmpp', 'localhost'], ['mssql', 'localhost']]).flat());
    expect(flows.filter((f) => (f.tls as { midstream?: boolean } | null)?.midstream).map((f) => f.dst.port)).toEqual([6443, 6443]);
    expect(new Set(flows.map((f) => f.node))).toEqual(new Set(['alpha', 'beta', 'local']));
    expect(flows.some((f) => f.dst.ip.includes(':'))).toBe(true);
    expect(flows.some((f) => f.tls?.client?.plaintext === true)).toBe(true);
    // records gave HTTP to their flows, and a namespace's own loopback a hook-only flow
    expect(flows.filter((f) => (f as unknown as { seenBy: string }).seenBy === 'hook-only').length).toBeGreaterThanOrEqual(2 * 2);
    expect(flows.some((f) => JSON.stringify(f.http).includes('"status":200') && f.tls?.client?.plaintext === true)).toBe(true);
    const bodies = JSON.parse(fullPath(readFileSync(files[0]!)).details) as { exchanges: { responseBody: string | null }[] }[];
    expect(bodies.some((d) => d.exchanges.some((e) => (e.responseBody?.length ?? 0) > 3000))).toBe(true);
    // the binary body of flow 1 (3500 bytes), by its whole size though the parser kept only its first bytes
    expect(bodies.filter((d) => d.exchanges.some((e) => e.responseBody === '[3500 bytes of binary data]')).length).toBe(2);
  });

  it('analyzeFiles (the app and CLI load) gives the full path\'s flows', async () => {
    const f = files[0]!;
    const { analyzer, notes } = await analyzeFiles([{ path: f }]);
    expect(notes).toEqual([]);
    expect(snapshot(analyzer)).toEqual(fullPath(readFileSync(f)));
  });

  it('without details (what `flows` and `libraries` load) the flows are the same, the exchanges without headers or bodies', async () => {
    for (const f of files) {
      const full = snapshot((await analyzeFiles([{ path: f }])).analyzer);
      const { analyzer } = await analyzeFiles([{ path: f }], { details: false });
      const lean = snapshot(analyzer);
      expect(lean.flows, f).toBe(full.flows);
      expect(lean.counters, f).toBe(full.counters);
      type Ex = { requestHeaders: unknown[]; responseHeaders: unknown[]; requestBody: unknown; responseBody: unknown; status: number | null; path: string | null };
      const fullEx = (JSON.parse(full.details) as { exchanges: Ex[] }[]).flatMap((d) => d.exchanges);
      const leanEx = (JSON.parse(lean.details) as { exchanges: Ex[] }[]).flatMap((d) => d.exchanges);
      expect(leanEx.map((e) => [e.path, e.status]), f).toEqual(fullEx.map((e) => [e.path, e.status]));
      for (const e of leanEx) expect([e.requestHeaders, e.responseHeaders, e.requestBody, e.responseBody]).toEqual([[], [], null, null]);
      if (f === files[0]) expect(fullEx.filter((e) => e.requestHeaders.length > 0 && e.responseHeaders.length > 0).length).toBeGreaterThan(20);
    }
  });
});

describe('load fast path equals the full path on damaged captures (fuzz smoke)', () => {
  it('mutated packets, records, options and headers: the same flows, or the same error at the same offset', async () => {
    const base = mixedSection(1_732_620_000_000, 'alpha');
    // where the bytes a dissector or the record parser reads are: packet data, decrypted records (their tags and
    // text), and the options after the data (flags, comments)
    const epbs = parseBuffer(base).filter((b): b is PacketBlock => b.type === 'epb');
    const span = (b: (typeof epbs)[number], from: number, to: number): readonly [number, number] => [b.offset + from, b.offset + to];
    const size = (b: (typeof epbs)[number]): number => base.readUInt32LE(b.offset + 4);
    const optionsAt = (b: (typeof epbs)[number]): number => 28 + ((b.capLen + 3) & ~3);
    const areas = [
      epbs.map((b) => span(b, 28, 28 + b.capLen)),
      epbs.filter((b) => b.iface.linkType === 252).map((b) => span(b, 28, 28 + b.capLen)),
      epbs.filter((b) => size(b) > optionsAt(b) + 4).map((b) => span(b, optionsAt(b), size(b) - 4)),
    ];
    expect(areas.map((a) => a.length > 0)).toEqual([true, true, true]);
    let seed = 77;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const outcomes = new Set<string>();
    const f = join(dir, 'fuzz.pcapng');
    for (let i = 0; i < 150; i++) {
      const b = Buffer.from(base);
      for (let m = 1 + rnd(6); m > 0; m--) {
        // mostly inside blocks (flows differ, both paths must agree); sometimes anywhere (a block's framing)
        const area = areas[rnd(areas.length)]!;
        const [from, to] = rnd(8) > 0 ? area[rnd(area.length)]! : [0, b.length];
        b[from + rnd(to - from)] = rnd(256);
      }
      writeFileSync(f, b);
      const want = await Promise.resolve().then(() => fullPath(b)).catch((e: unknown) => e);
      const got = await fastPath(f, [undefined, 1000, 13][i % 3]).catch((e: unknown) => e);
      if (want instanceof Error) {
        expect(got, `mutation ${i}: ${want.message}`).toMatchObject({ code: (want as { code?: string }).code, message: want.message });
        outcomes.add((want as { code?: string }).code ?? 'not a TapscopeError');
      } else {
        expect(got, `mutation ${i}`).toEqual(want);
        outcomes.add('flows');
      }
    }
    // both outcomes happened, and every error was one of ours
    expect(outcomes).toContain('flows');
    expect([...outcomes].filter((o) => o !== 'flows' && !o.startsWith('E_PCAPNG'))).toEqual([]);
  });
});

describe('flows on several threads equal the one-thread flows', () => {
  it('JSON lines and table rows, with and without a filter, for 2 and 3 partitions (worker threads)', async () => {
    const { flowsOnThreads } = await import('../../src/cli/flows-parallel.js');
    const { flowRow } = await import('../../src/cli/flows-output.js');
    const { compileFilter } = await import('../../src/filter/index.js');
    for (const f of files) {
      // the one-thread analysis, as the CLI renders it without threads
      const { analyzer, notes, damaged } = await analyzeFiles([{ path: f }]);
      const all = analyzer.flows();
      const packets = analyzer.counters.packets;
      expect(all.length, f).toBeGreaterThan(0);
      const job = { files: [{ path: f }], json: true, filter: null };
      for (const threads of [2, 3]) {
        expect(await flowsOnThreads(job, threads), `${f} on ${threads} threads`).toEqual({ rows: all.map((x) => JSON.stringify(x)), total: all.length, packets, notes, damaged });
      }
      const filter = 'transport == "tcp"';
      const kept = all.filter(compileFilter(filter));
      expect(await flowsOnThreads({ ...job, json: false, filter }, 2), `${f} table`).toEqual({ rows: kept.map(flowRow), total: all.length, packets, notes, damaged });
    }
  }, 60_000);

  it('the partitions of the generated capture each hold flows, interleaved in creation order', async () => {
    const { renderPartition } = await import('../../src/cli/flows-parallel.js');
    const job = { files: [{ path: files[0]! }], json: true, filter: null };
    const [a, b] = [await renderPartition(job, 0, 2), await renderPartition(job, 1, 2)];
    expect(a.ends.length).toBeGreaterThan(10);
    expect(b.ends.length).toBeGreaterThan(10);
    // interleaved: neither partition's flows all come before the other's
    expect(a.origins[0]! < b.origins[b.origins.length - 1]! && b.origins[0]! < a.origins[a.origins.length - 1]!).toBe(true);
    expect(a.packets + b.packets).toBe((await renderPartition(job, 0, 1)).packets);
  });

  it('one TLS session on two connections in two partitions (NAT\'s legs): the threads give way to one, so the legs stay linked', async () => {
    const { flowsOnThreads, renderPartition, sessionsCross } = await import('../../src/cli/flows-parallel.js');
    const { partitionOf, ipKeyPart } = await import('../../src/flows/analyzer.js');
    const b = new CaptureBuilder();
    const svc = { ip: '10.96.0.10', port: 443 };
    const backend = { ip: '10.244.2.7', port: 8443 };
    const crossing: number[] = [];
    for (let i = 0; i < 6; i++) {
      const pod = { ip: '10.244.1.5', port: 40000 + i };
      const ch = Buffer.from(fixtureClientHello());
      ch.fill(i + 1, 11, 43);
      tcpConversation(b, pod, svc, [ch], [Buffer.from('\x16\x03\x03\x00\x00')], { fin: false });
      tcpConversation(b, pod, backend, [ch], [Buffer.from('\x16\x03\x03\x00\x00')], { fin: false });
      b.tls(pod, svc, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: s\r\n\r\n'), { pid: 42, comm: 'curl', lib: 'openssl' });
      const part = (dst: { ip: string; port: number }) => partitionOf(ipKeyPart(pod.ip), pod.port, ipKeyPart(dst.ip), dst.port, 2);
      if (part(svc) !== part(backend)) crossing.push(i);
    }
    expect(crossing.length, 'some pair\'s legs fall in two partitions').toBeGreaterThan(0);
    const path = join(dir, 'nat-legs.pcapng');
    writeFileSync(path, b.build());
    const { analyzer } = await analyzeFiles([{ path }]);
    const all = analyzer.flows();
    expect(all.filter((f) => f.tls?.sameSessionAs).length).toBe(12);
    const job = { files: [{ path }], json: true, filter: null };
    expect(sessionsCross([await renderPartition(job, 0, 2), await renderPartition(job, 1, 2)])).toBe(true);
    expect((await flowsOnThreads(job, 2)).rows).toEqual(all.map((x) => JSON.stringify(x)));
  });

  it('DNAT\'s legs (by their conn record) in two partitions: the threads give way to one, so the legs stay linked', async () => {
    const { flowsOnThreads } = await import('../../src/cli/flows-parallel.js');
    const { partitionOf, ipKeyPart } = await import('../../src/flows/analyzer.js');
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', requestedMode: 'auto', reason: 'auto', hostname: 'node-1', addrs: ['127.0.0.1', '10.30.0.1'] });
    const svc = { ip: '10.96.17.10', port: 443 };
    // (a backend port whose tuples fall in the other partition than the service's: for two partitions that depends
    // on the two ends the legs do not share)
    const part = (from: { ip: string; port: number }, dst: { ip: string; port: number }) => partitionOf(ipKeyPart(from.ip), from.port, ipKeyPart(dst.ip), dst.port, 2);
    let backendPort = 8443;
    while (part({ ip: '10.30.0.1', port: 41100 }, svc) === part({ ip: '10.30.0.1', port: 41100 }, { ip: '10.244.2.7', port: backendPort })) backendPort++;
    const backend = { ip: '10.244.2.7', port: backendPort };
    let crossing = 0;
    for (let i = 0; i < 6; i++) {
      const node = { ip: '10.30.0.1', port: 41100 + i };
      b.record({ t: 'conn', proto: 'tcp', local: node, remote: svc, role: 'client', pid: 100, tid: 100, comm: 'curl', via: 'tracepoint' });
      const ch = Buffer.from(fixtureClientHello());
      ch.fill(0x40 + i, 11, 43);
      tcpConversation(b, node, backend, [ch], [Buffer.from('\x16\x03\x03\x00\x00')], { fin: false });
      b.tls(node, svc, 'out', Buffer.from('GET / HTTP/1.1\r\nHost: s\r\n\r\n'), { pid: 100, comm: 'curl', lib: 'openssl' });
      if (part(node, svc) !== part(node, backend)) crossing++;
    }
    expect(crossing, 'some connection\'s legs fall in two partitions').toBeGreaterThan(0);
    const path = join(dir, 'dnat-legs.pcapng');
    writeFileSync(path, b.build());
    const { analyzer } = await analyzeFiles([{ path }]);
    const all = analyzer.flows();
    expect(all.filter((f) => f.process?.comm === 'curl' && f.seenBy === 'packets').length).toBe(6);
    expect((await flowsOnThreads({ files: [{ path }], json: true, filter: null }, 2)).rows).toEqual(all.map((x) => JSON.stringify(x)));
  });

  it('an id two partitions share (a 64-bit hash collision) is detected, so the threads give way to one', async () => {
    const { idsCollide, renderPartition } = await import('../../src/cli/flows-parallel.js');
    const job = { files: [{ path: files[0]! }], json: true, filter: null };
    const parts = [await renderPartition(job, 0, 2), await renderPartition(job, 1, 2)];
    expect(idsCollide(parts)).toBe(false);
    const clash = { ...parts[1]!, idKeys: Float64Array.from([...parts[1]!.idKeys, parts[0]!.idKeys[3]!]) };
    expect(idsCollide([parts[0]!, clash])).toBe(true);
  });

  it('a capture damaged in the middle gives on threads the one-thread flows before the damage, and the damage', async () => {
    const { flowsOnThreads } = await import('../../src/cli/flows-parallel.js');
    const bad = join(dir, 'bad.pcapng');
    const good = readFileSync(join(FIX, 'loopback-mix.pcapng'));
    const at = blockAt(good, 40);
    const broken = Buffer.from(good);
    broken.writeUInt32LE(8, at + 4);
    writeFileSync(bad, broken);
    const job = { files: [{ path: bad }], json: true, filter: null };
    const threads = await flowsOnThreads(job, 2);
    const one = await flowsOnThreads(job, 1);
    expect(threads.damaged).toEqual([{ path: bad, offset: at, message: `block length 8 is less than 12 at offset ${at}` }]);
    expect(threads.rows).toEqual(one.rows);
    expect(threads.rows.length).toBeGreaterThan(0);
    // a file that is no capture at all still fails
    writeFileSync(bad, Buffer.from('definitely not a capture'));
    await expect(flowsOnThreads(job, 2)).rejects.toMatchObject({ code: 'E_PCAPNG_MALFORMED', details: { offset: 0 } });
  });
});

/** File offset of the n-th block of a little-endian pcapng. */
function blockAt(buf: Buffer, n: number): number {
  let o = 0;
  for (let i = 0; i < n; i++) o += buf.readUInt32LE(o + 4);
  return o;
}

describe('the flow table index', () => {
  it('finds a tuple from both directions, per node and transport, through growth; set replaces', async () => {
    const { TupleIndex } = await import('../../src/flows/tuple-index.js');
    const idx = new TupleIndex<number>();
    const n = 20_000;
    const ip = (i: number): number => (0x0a000000 + i * 7919) >>> 0;
    for (let i = 0; i < n; i++) idx.set(i % 2 ? 'a' : 'b', i % 3 === 0, ip(i), 1000 + (i % 50000), ip(i + 1), 443, i);
    for (let i = 0; i < n; i++) {
      const node = i % 2 ? 'a' : 'b';
      expect(idx.get(node, i % 3 === 0, ip(i), 1000 + (i % 50000), ip(i + 1), 443)).toBe(i);
      expect(idx.get(node, i % 3 === 0, ip(i + 1), 443, ip(i), 1000 + (i % 50000))).toBe(i);
      expect(idx.get(node, i % 3 !== 0, ip(i), 1000 + (i % 50000), ip(i + 1), 443)).toBeUndefined();
      expect(idx.get(i % 2 ? 'b' : 'a', i % 3 === 0, ip(i), 1000 + (i % 50000), ip(i + 1), 443)).toBeUndefined();
    }
    // same address both ends: the ports order the tuple
    idx.set('a', true, 5, 80, 5, 81, -1);
    expect(idx.get('a', true, 5, 81, 5, 80)).toBe(-1);
    idx.set('a', true, 5, 81, 5, 80, -2);
    expect(idx.get('a', true, 5, 80, 5, 81)).toBe(-2);
    // addresses on both sides of 2^31 and ports above 32767: keys whose int32 forms are negative
    const high = (i: number): number => (0x7ffff000 + i * 613) | 0;
    for (let i = 0; i < 5000; i++) idx.set('h', true, high(i), 32768 + i, high(i + 1), 65535 - i, 100_000 + i);
    for (let i = 0; i < 5000; i++) {
      expect(idx.get('h', true, high(i + 1), 65535 - i, high(i), 32768 + i)).toBe(100_000 + i);
      // the unsigned form of an address is the same key
      expect(idx.get('h', true, high(i) >>> 0, 32768 + i, high(i + 1) >>> 0, 65535 - i)).toBe(100_000 + i);
      expect(idx.get('h', true, high(i), 32768 + i, high(i + 1), 65534 - i)).toBeUndefined();
    }
    // setting through the unsigned form replaces the entry of the signed one
    idx.set('h', true, high(7) >>> 0, 65535 - 6, high(6) >>> 0, 32768 + 6, -7);
    expect(high(6)).toBeGreaterThan(0);
    expect(high(7)).toBeLessThan(0);
    expect(idx.get('h', true, high(6), 32768 + 6, high(7), 65535 - 6)).toBe(-7);
    idx.set('a', false, 'fd00::1', 5353, 'fd00::2', 53, 6);
    expect(idx.get('a', false, 'fd00::2', 53, 'fd00::1', 5353)).toBe(6);
    expect(idx.get('a', true, 'fd00::2', 53, 'fd00::1', 5353)).toBeUndefined();
  });

  it('keys IPv6 tuples by their bytes: text and packet forms find the same entry, both directions, through growth', async () => {
    const { TupleIndex } = await import('../../src/flows/tuple-index.js');
    const { ipToBytes } = await import('../../src/util/ip.js');
    const idx = new TupleIndex<number>();
    const a = (i: number): string => `2001:db8:${(i >> 16).toString(16)}::${(i & 0xffff).toString(16)}`;
    const b = (i: number): string => `fd00::${(i % 300).toString(16)}`;
    // a packet's 32 address bytes, source then destination, at offset 3 of a larger buffer
    const packet = (src: string, dst: string): Buffer => Buffer.concat([Buffer.from([9, 9, 9]), ipToBytes(src)!, ipToBytes(dst)!]);
    const n = 5000;
    for (let i = 0; i < n; i++) {
      if (i % 2) idx.set('n', true, a(i), 40000 + (i % 20000), b(i), 443, i);
      else idx.set6('n', true, packet(b(i), a(i)), 3, 443, 40000 + (i % 20000), i);
    }
    for (let i = 0; i < n; i++) {
      expect(idx.get6('n', true, packet(a(i), b(i)), 3, 40000 + (i % 20000), 443)).toBe(i);
      expect(idx.get6('n', true, packet(b(i), a(i)), 3, 443, 40000 + (i % 20000))).toBe(i);
      expect(idx.get('n', true, b(i), 443, a(i), 40000 + (i % 20000))).toBe(i);
      expect(idx.get6('n', false, packet(a(i), b(i)), 3, 40000 + (i % 20000), 443)).toBeUndefined();
      expect(idx.get6('m', true, packet(a(i), b(i)), 3, 40000 + (i % 20000), 443)).toBeUndefined();
      expect(idx.get6('n', true, packet(a(i), b(i)), 3, 40000 + (i % 20000), 444)).toBeUndefined();
    }
    // the same address both ends: the ports order the tuple; set replaces
    idx.set6('n', true, packet('::1', '::1'), 3, 80, 81, -1);
    expect(idx.get('n', true, '::1', 81, '::1', 80)).toBe(-1);
    idx.set('n', true, '0:0::1', 81, '::1', 80, -2);
    expect(idx.get6('n', true, packet('::1', '::1'), 3, 80, 81)).toBe(-2);
    // addresses that differ only in their last bits, the same port both ends: the addresses order the tuple
    for (let i = 0; i < 200; i++) {
      const x = `fd00:1:2:3:4:5:6:${(2 * i).toString(16)}`;
      const y = `fd00:1:2:3:4:5:6:${(2 * i + 1).toString(16)}`;
      idx.set6('n', false, packet(y, x), 3, 5353, 5353, 10_000 + i);
      expect(idx.get6('n', false, packet(x, y), 3, 5353, 5353)).toBe(10_000 + i);
      expect(idx.get('n', false, x, 5353, y, 5353)).toBe(10_000 + i);
      // the same tuple on another transport and another node: entries of their own
      idx.set('n', true, x, 5353, y, 5353, 20_000 + i);
      idx.set6('m', false, packet(x, y), 3, 5353, 5353, 30_000 + i);
    }
    for (let i = 0; i < 200; i++) {
      const x = `fd00:1:2:3:4:5:6:${(2 * i).toString(16)}`;
      const y = `fd00:1:2:3:4:5:6:${(2 * i + 1).toString(16)}`;
      expect([idx.get('n', false, y, 5353, x, 5353), idx.get('n', true, y, 5353, x, 5353), idx.get('m', false, y, 5353, x, 5353)]).toEqual([10_000 + i, 20_000 + i, 30_000 + i]);
    }
    // an endpoint that is no address at all still works, apart from the byte-keyed ones
    idx.set('n', true, 'not-an-ip', 1, 'fd00::1', 2, -3);
    expect(idx.get('n', true, 'fd00::1', 2, 'not-an-ip', 1)).toBe(-3);
  });

  it('the id set adds once, through growth, and keeps each id\'s number', async () => {
    const { PairSet } = await import('../../src/flows/tuple-index.js');
    const s = new PairSet();
    const added = (): boolean[] => Array.from({ length: 50_000 }, (_, i) => s.add(Math.imul(i, 0x9e3779b1), i, i * 3));
    expect(added().every((x) => x)).toBe(true);
    expect(added().some((x) => x)).toBe(false);
    expect(s.add(0xffffffff, 0xffffffff, 7)).toBe(true);
    expect(s.add(-1, -1, 8)).toBe(false);
    // (the first number stays: a second add changes nothing)
    expect(Array.from({ length: 50_000 }, (_, i) => s.get(Math.imul(i, 0x9e3779b1), i)).every((v, i) => v === i * 3)).toBe(true);
    expect([s.get(-1, -1), s.get(1, 0x12345), s.get(0, 1)]).toEqual([7, -1, -1]);
  });

  it('a reused tuple at the same timestamp gets a fresh id (the collision path), and both are found by id', () => {
    const b = new CaptureBuilder();
    const C = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
    b.tcp({ ...C, seq: 1, flags: 0x02 });
    b.tcp({ ...C, seq: 2, flags: 0x11 });
    b.packet(ethernet(ipPacket('tcp', { ...C, seq: 9, flags: 0x02 })), { stepMs: 0 });
    const a = new Analyzer();
    const feed = a.stream();
    for (const blk of parseBuffer(b.build())) feed(blk);
    const flows = a.flows();
    expect(flows).toHaveLength(2);
    expect(flows[0]!.firstSeen).not.toBe(flows[1]!.firstSeen);
    const c = new CaptureBuilder();
    c.tcp({ ...C, seq: 1, flags: 0x02 });
    c.packet(ethernet(ipPacket('tcp', { ...C, seq: 2, flags: 0x04 })), { stepMs: 0 });
    c.packet(ethernet(ipPacket('tcp', { ...C, seq: 9, flags: 0x02 })), { stepMs: 0 });
    const a2 = new Analyzer();
    const feed2 = a2.stream();
    for (const blk of parseBuffer(c.build())) feed2(blk);
    const [f1, f2] = a2.flows();
    expect(f1!.firstSeen).toBe(f2!.firstSeen);
    expect(f1!.id).not.toBe(f2!.id);
    expect(f2!.id).toMatch(/^[0-9a-f]{16}$/);
    expect(a2.flowById(f1!.id)).toBe(f1);
    expect(a2.flowById(f2!.id)).toBe(f2);
    // (no flow: an id of another capture, one upper-cased, cut short or not hex)
    const others = ['0123456789abcdef', f1!.id.toUpperCase(), f1!.id.slice(0, 15), `${f1!.id.slice(0, 15)}g`, `${f1!.id}0`].filter((id) => id !== f1!.id && id !== f2!.id);
    for (const id of others) expect(a2.flowById(id), id).toBeNull();
  });
});

describe('tapscope flows into a reader that stops early', () => {
  it('exits 0 without a message when the pipe closes (like `| head`), on one thread and on two', async () => {
    const { spawn } = await import('node:child_process');
    const many = new CaptureBuilder();
    // ~3000 flows: far more output than a pipe buffers, so writes fail after the reader is gone
    for (let i = 0; i < 3000; i++) many.tcp({ src: `10.5.${i >> 8}.${i & 255}`, dst: '10.6.0.1', sport: 30000 + i, dport: 443, seq: i, flags: 0x02 });
    const path = join(dir, 'many.pcapng');
    writeFileSync(path, many.build());
    const cli = join(import.meta.dirname, '../../src/cli/main.ts');
    for (const [threads, args] of [['1', ['--json']], ['1', []], ['2', ['--json']]] as const) {
      const child = spawn(process.execPath, ['--import', 'tsx', cli, 'flows', path, ...args], { env: { ...process.env, TAPSCOPE_THREADS: threads } });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      // the first bytes, then the read end closes, as `head -1` does
      await new Promise<void>((res) => child.stdout.once('data', () => { child.stdout.destroy(); res(); }));
      const code = await new Promise<number | null>((res) => child.on('close', res));
      expect([code, stderr.replace(/^\d+ flows, \d+ packets\n$/, '')], `threads ${threads} ${args.join(' ')}`).toEqual([0, '']);
    }
  }, 60_000);
});

describe('flows table rendering', () => {
  it('clock() is the ISO time of day for years 0-9999 (4-digit ISO years): fractions, before the epoch, midnight', async () => {
    const { clock } = await import('../../src/util/time-text.js');
    let seed = 7;
    const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32; };
    const times = [0, -1, -0.5, 0.999, 86_399_999.9, 86_400_000, -86_400_000.5, 1_732_620_000_719.752, -62_167_219_200_000, 253_402_300_799_999.9];
    for (let i = 0; i < 20_000; i++) times.push((rnd() - 0.3) * 4e12 + (i % 3 === 0 ? rnd() : 0));
    for (let i = 0; i < 2000; i++) times.push(-62_167_219_200_000 + rnd() * 315_569_520_000_000);
    for (const t of times) expect(clock(t), String(t)).toBe(new Date(t).toISOString().slice(11, 23));
  });
  it('localClock() and localDateTime() give the local time, as tcpdump, Wireshark and the app show it', async () => {
    const { localClock, localDateTime } = await import('../../src/util/time-text.js');
    const tz = process.env.TZ;
    try {
      // (Node follows TZ set at run time; a time zone with a half-hour offset and one with daylight saving)
      process.env.TZ = 'Asia/Kolkata';
      expect(localClock(Date.UTC(2026, 10, 28, 20, 15, 58, 266))).toBe('01:45:58.266');
      expect(localDateTime(Date.UTC(2026, 10, 28, 20, 15, 58, 266))).toBe('2026-11-29 01:45:58');
      process.env.TZ = 'Europe/Berlin';
      // the night daylight saving ended (03:00 CEST -> 02:00 CET, 01:00 UTC), each side of it, and a winter afternoon
      expect(localClock(Date.UTC(2026, 9, 25, 0, 59, 59, 999))).toBe('02:59:59.999');
      expect(localClock(Date.UTC(2026, 9, 25, 1, 0, 0, 0))).toBe('02:00:00.000');
      expect(localClock(Date.UTC(2027, 0, 15, 13, 0, 0, 5))).toBe('14:00:00.005');
      // (another quarter hour: localClock keeps a quarter hour's offset, and the zone changed under it)
      process.env.TZ = 'UTC';
      expect(localClock(Date.UTC(2027, 0, 16, 13, 0, 0, 5))).toBe('13:00:00.005');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
  it('table(): columns padded to the widest cell within the limit, long cells cut with an ellipsis, no trailing blanks', async () => {
    const { table } = await import('../../src/cli/flows-output.js');
    expect(table(['A', 'BB', 'C'], [['xyz', '', 'last'], ['1', 'toolongcell', ''], ['q', 'w']], [5, 6])).toBe(
      'A    BB      C\nxyz          last\n1    toolo…\nq    w\n',
    );
    expect(table(['H'], [])).toBe('H\n');
  });
});
