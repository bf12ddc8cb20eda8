// The JSON Lines writer of flow records (src/model/flow-json.ts) against JSON.stringify, byte for byte: the
// flows of every fixture capture and of a generated one (TLS with processes, HTTP, DNS, netns), flows whose
// optional fields arrive in every order, strings and numbers JSON.stringify escapes or formats, values it
// treats specially (toJSON, undefined, bigint, cycles), records across chunk boundaries, and the CLI and export
// that use it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import dnsPacket from 'dns-packet';
import { FlowJsonLines } from '../../src/model/flow-json.js';
import type { Flow } from '../../src/model/flow.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { exportCapture } from '../../src/export/index.js';
import { CaptureBuilder, fixtureClientHello, ipPacket, ethernet, tcpConversation } from './core-packet-builder.js';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const SERVER_HELLO = Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00, 0x00, 0x3c, 0x03, 0x03]), Buffer.alloc(0x3c, 7)]);

/** What the writer must produce: one JSON.stringify line per record. */
function expected(records: unknown[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join('');
}

/** All records through one writer, taking a chunk whenever it is full. */
function written(records: unknown[], chunkBytes?: number): { text: string; lines: FlowJsonLines } {
  const lines = new FlowJsonLines(chunkBytes);
  const chunks: Buffer[] = [];
  for (const r of records) {
    lines.add(r as Flow);
    if (lines.full) chunks.push(Buffer.from(lines.take()));
  }
  chunks.push(lines.take());
  return { text: Buffer.concat(chunks).toString('utf8'), lines };
}

function captures(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.pcap(ng)?$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** TLS flows whose processes are known (conn + proc records, decrypted records), HTTP, DNS, a hook-only flow. */
function generatedCapture(flowsOfEach: number): Buffer {
  const b = new CaptureBuilder().record({ t: 'node', node: 'gen-node' });
  b.record({ t: 'capture', mode: 'ebpf', netns: 4026531840 });
  b.record({ t: 'proc', pid: 4242, comm: 'curl', exe: '/usr/bin/curl', cgroup: '/system.slice/a "quoted" \\ unit', containerId: 'c0ffee', tls: { library: 'openssl', via: 'maps', evidence: '/lib/libssl.so.3', version: '3.0.2' } });
  b.record({ t: 'proc', pid: 7, comm: 'nginx: wörker', exe: '/usr/sbin/nginx', tls: { library: 'openssl', via: 'maps', evidence: '/lib/libssl.so.3', version: '3.0.2' } });
  const hello = fixtureClientHello();
  for (let i = 0; i < flowsOfEach; i++) {
    const client = { ip: `10.1.${i >> 8}.${i & 255}`, port: 40000 + (i % 20000) };
    const server = { ip: '10.2.0.1', port: 443 };
    // (every fourth odd one with the server's process only: processSide "server")
    if (i % 4 !== 3) b.record({ t: 'conn', proto: 'tcp', local: client, remote: server, role: 'client', pid: 4242, comm: 'curl' });
    if (i % 2 === 0 || i % 4 === 3) b.record({ t: 'conn', proto: 'tcp', local: server, remote: client, role: 'server', pid: 7, comm: 'nginx' });
    tcpConversation(b, client, server, [hello], [SERVER_HELLO]);
    if (i % 3 === 0) b.tls(client, server, 'out', Buffer.from(`GET /p/${i}?q="x" HTTP/1.1\r\nHost: h${i}.test\r\n\r\n`), { pid: 4242, comm: 'curl', lib: 'openssl' });
    const web = { ip: client.ip, port: client.port + 1 };
    tcpConversation(b, web, { ip: '10.3.0.1', port: 80 }, [Buffer.from(`GET /é/${i}\\t HTTP/1.1\r\nHost: w${i}.test\r\n\r\n`)], [Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')]);
    const q = dnsPacket.encode({ type: 'query', id: i, questions: [{ type: 'A', name: `n${i}.test` }] });
    const r = dnsPacket.encode({ type: 'response', id: i, questions: [{ type: 'A', name: `n${i}.test` }], answers: [{ type: 'A', name: `n${i}.test`, data: '10.9.9.9' }] });
    b.packet(ethernet(ipPacket('udp', { src: client.ip, dst: '10.2.0.53', sport: 50000 + (i % 10000), dport: 53, payload: q })));
    b.packet(ethernet(ipPacket('udp', { src: '10.2.0.53', dst: client.ip, sport: 53, dport: 50000 + (i % 10000), payload: r })));
  }
  // a pod's own loopback, known only from hooks in another namespace (flow.netns, seenBy hook-only)
  b.tls({ ip: '127.0.0.1', port: 5555 }, { ip: '127.0.0.1', port: 8443 }, 'out', Buffer.from('GET /pod HTTP/1.1\r\nHost: pod\r\n\r\n'), { pid: 4242, comm: 'curl', lib: 'openssl', netns: 4026532999 });
  return b.build();
}

let dir = '';
let generated = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tapscope-flow-json-'));
  generated = join(dir, 'generated.pcapng');
  writeFileSync(generated, generatedCapture(2000));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('flow records as JSON lines', () => {
  it('equal JSON.stringify on every flow of every fixture capture and of a generated capture, by templates', async () => {
    const files = [...captures(FIXTURES), generated];
    expect(files.length).toBeGreaterThanOrEqual(5);
    let templated = 0;
    for (const f of files) {
      const { analyzer } = await analyzeFiles([{ path: f }]);
      const flows = analyzer.flows();
      expect(flows.length, f).toBeGreaterThan(0);
      const { text, lines } = written(flows);
      expect(text, f).toBe(expected(flows));
      expect(lines.counts.stringified, f).toBe(0);
      templated += lines.counts.templated;
    }
    // the generated capture has every kind of flow the analyzer makes; check it has the fields that matter
    const flows = (await analyzeFiles([{ path: generated }])).analyzer.flows();
    expect(flows.some((f) => f.process?.containerId === 'c0ffee' && f.processSide === 'client' && f.peerProcess?.comm === 'nginx: wörker')).toBe(true);
    expect(flows.some((f) => f.process?.comm === 'nginx: wörker' && f.processSide === 'server' && f.peerProcess === null)).toBe(true);
    expect(flows.some((f) => f.tls?.client?.version === '3.0.2')).toBe(true);
    expect(flows.some((f) => f.dns?.[0]?.answers.length === 1)).toBe(true);
    expect(flows.some((f) => f.netns === 4026532999 && f.seenBy === 'hook-only')).toBe(true);
    expect(flows.some((f) => f.http.some((h) => h.path?.includes('"')))).toBe(true);
    // flows as the analyzer makes them take the templates (a change of its field order would show here)
    expect(templated).toBeGreaterThan(3000);
  }, 60_000);

  it('follow each object\'s own key order when optional fields arrive in any order (or base fields move)', async () => {
    const base = (await analyzeFiles([{ path: generated }])).analyzer.flows().find((f) => f.tls?.client && f.process && f.peerProcess)!;
    const optional: [string, (f: Flow) => void][] = [
      ['netns', (f) => { f.netns = 4026532111; }],
      ['dns', (f) => { f.dns = [{ id: 1, query: 'a.test', type: 'AAAA', rcode: null, answers: ['AAAA ::1', 'CNAME b.test'] }]; }],
      // entries in another key order, with a key more, not objects; no list at all
      ['dnsOdd', (f) => { f.dns = [{ query: 'q', id: 2 }, null, { id: 3, query: null, type: null, rcode: null, answers: [], ttl: 5 }, 'x'] as unknown as Flow['dns']; }],
      ['dnsText', (f) => { (f as unknown as Record<string, unknown>).dns = 'not a list'; }],
      ['httpOmitted', (f) => { f.httpOmitted = 3; }],
      ['negotiatedAlpn', (f) => { f.tls!.negotiatedAlpn = 'h2'; }],
      ['peerProcess', (f) => { delete f.peerProcess; f.peerProcess = { pid: 1, comm: 'x', exe: null }; }],
      ['sideVersion', (f) => { delete f.tls!.client!.version; }],
      ['pod', (f) => { f.pod = { namespace: 'ns', name: 'p' }; f.pod.workload = 'deploy/w'; }],
      ['process', (f) => { f.process = { pid: 2, comm: 'y', exe: '/y' }; f.process.containerId = 'abc'; }],
      ['seenBy', (f) => { delete f.seenBy; f.seenBy = 'hook-only'; }],
      ['id', (f) => { const id = f.id; delete (f as Partial<Flow>).id; f.id = id; }],
      ['src', (f) => { const ip = f.src.ip; delete (f.src as Partial<Flow['src']>).ip; f.src.ip = ip; }],
    ];
    const records: Flow[] = [];
    // every order of every 3 of them, and all of them in two orders
    for (const a of optional) for (const b of optional) for (const c of optional) {
      if (a === b || b === c || a === c) continue;
      const f = structuredClone(base);
      for (const [, add] of [a, b, c]) add(f);
      records.push(f);
    }
    for (const order of [optional, [...optional].reverse()]) {
      const f = structuredClone(base);
      for (const [, add] of order) add(f);
      records.push(f);
    }
    const { text, lines } = written(records);
    expect(text).toBe(expected(records));
    // each has a key the templates do not expect where they are: written (at least partly) by the key walk
    expect(lines.counts).toEqual({ templated: 0, walked: records.length, stringified: 0 });
  });

  it('write strings as JSON.stringify does: quotes, backslashes, control characters, non-ASCII, lone surrogates', () => {
    const strings = [
      '', 'plain', 'a"b', 'back\\slash', '\u0000\u0001\u001f', 'tab\there\nnew\rline\b\f', '\u007f del', 'é', 'ünïcödé', '日本語', '😀 emoji',
      '\ud800', 'lone \udfff trail', '\udbff\udfff', 'x'.repeat(40), `${'long "quoted" '.repeat(5)}`, `${'é'.repeat(40)}`, '\u2028\u2029', '</script>',
    ];
    const records = strings.flatMap((s) => [{ id: s, node: s }, { [s]: s }, { tls: { ja3: s, alpn: [s, s] } }, { id: s.repeat(3) }]);
    // long strings again: the second time from the encoded cache
    const { text } = written([...records, ...records]);
    expect(text).toBe(expected([...records, ...records]));
  });

  it('write long strings seen before from their encoded bytes, also escaped and non-ASCII ones, across chunks and cache evictions', () => {
    const kinds = [(i: number) => `ascii string number ${i} of the cache test`, (i: number) => `needs "escapes" \\ \n ${i} ${'x'.repeat(20)}`, (i: number) => `nön-ÄSCII ${i} 日本語 😀 ${'y'.repeat(20)}`, (i: number) => `lone \ud800 surrogate ${i} ${'z'.repeat(20)}`];
    const strings = Array.from({ length: 3000 }, (_, i) => kinds[i % kinds.length]!(i));
    const records: unknown[] = [];
    // each string twice in a row (the second from the cache); then the last ones again, still cached though the
    // chunks they were first written in were written over since; then the first ones, evicted since (more than
    // the cache holds came in between) and encoded anew
    for (const s of strings) records.push({ id: s, tls: { ja3: s } });
    for (const s of [...strings.slice(-500), ...strings.slice(0, 500)]) records.push({ node: s });
    const lines = new FlowJsonLines(4096);
    const chunks: Buffer[] = [];
    for (const r of records) {
      lines.add(r as Flow);
      if (!lines.full) continue;
      // a copy, then the buffer is handed back and written over: cached bytes must not live in it
      const chunk = lines.take();
      chunks.push(Buffer.from(chunk));
      lines.reuse(chunk);
    }
    chunks.push(lines.take());
    expect(Buffer.concat(chunks).toString('utf8')).toBe(expected(records));
    // bounded: 3000 distinct strings went in, far fewer stay
    expect(lines.cachedStrings).toBeGreaterThan(0);
    expect(lines.cachedStrings).toBeLessThan(2100);
  });

  it('copy the bytes of TLS parameters, verdicts and processes like the last ones, and write any change anew', async () => {
    const base = (await analyzeFiles([{ path: generated }])).analyzer.flows().find((f) => f.tls?.client && f.tls.server && f.process && f.peerProcess)!;
    const sparse = ['h2', , 'x']; // eslint-disable-line no-sparse-arrays
    const changes: ((f: Flow, i: number) => void)[] = [
      () => {},
      (f) => { f.tls!.sni = 'other.test'; },
      (f) => { f.tls!.alpn = ['h2']; },
      (f) => { f.tls!.alpn = ['h2', 'http/1.0']; },
      (f) => { f.tls!.alpn = Object.assign(['h2', 'http/1.1'], { toJSON: () => 'alpn' }); },
      (f) => { f.tls!.alpn = sparse as string[]; },
      (f) => { f.tls!.alpn = [{ id: 'h2' }] as unknown as string[]; },
      (f) => { f.tls!.cipher = { name: 'x' } as unknown as string; },
      (f) => { f.tls!.ja3 = `${f.tls!.ja3!}-0`; },
      (f) => { f.tls!.server!.reason = 'another "reason"'; },
      (f) => { f.tls!.client!.confidence = -0; },
      (f) => { f.tls!.client!.confidence = NaN; },
      (f) => { f.tls!.client!.plaintext = true; },
      (f) => { f.tls!.client!.version = ['3', '0'] as unknown as string; },
      (f) => { Object.assign(f.tls!.server!, { extra: 1 }); },
      (f) => { const c = f.tls!.client!; const via = c.via; delete (c as Partial<typeof c>).via; c.via = via; },
      (f) => { f.tls!.client = null; },
      (f) => { f.tls!.negotiatedAlpn = 'h2'; },
      (f) => { f.pod = { namespace: 'ns', name: 'p' }; },
      (f) => { f.pod = { namespace: 'ns', name: 'p', workload: 'deploy/w' }; },
      (f) => { f.pod = { name: 'p', namespace: 'ns' }; },
      (f) => { f.pod = { namespace: 'ns', name: 'q', workload: null }; },
      (f) => { f.process!.pid += 1; },
      (f) => { f.process!.exe = null; },
      (f) => { f.peerProcess = null; },
    ];
    const records: Flow[] = [];
    const add = (change: (f: Flow, i: number) => void, times: number): void => {
      for (let i = 0; i < times; i++) {
        const f = structuredClone(base);
        change(f, records.length);
        records.push(f);
      }
    };
    // from every change to every other (runs of three: the first anew, the others copies), then a new SNI each time
    for (const a of changes) for (const b of changes) { add(a, 3); add(b, 3); }
    add((f, i) => { f.tls!.sni = `host-${i}.test`; }, 300);
    add(changes[0]!, 3);
    const { text, lines } = written(records);
    expect(text).toBe(expected(records));
    expect(lines.copied).toBeGreaterThan(records.length);
  });

  it('write an object changed in place since it was last written anew, and one after a record that threw', async () => {
    const base = (await analyzeFiles([{ path: generated }])).analyzer.flows().find((f) => f.tls?.client && f.tls.server && f.tls.alpn.length > 0)!;
    const scenarios: ((f: Flow, add: (record: object) => void) => void)[] = [
      (f, add) => { f.tls!.alpn.push('http/1.0'); add(f); },
      (f, add) => { f.tls!.alpn[0] = 'h3'; add(f); },
      (f, add) => { f.tls!.client!.reason = 'changed'; add(f); },
      // objects where plain values are expected (written by the key walk)
      (f, add) => { const cipher = { name: 'c1' }; f.tls!.cipher = cipher as unknown as string; add(f); add(f); cipher.name = 'c2'; add(f); },
      (f, add) => { const alpn = { id: 'h2' }; f.tls!.alpn = [alpn] as unknown as string[]; add(f); add(f); alpn.id = 'h3'; add(f); },
      // the client side is written (its memo now holds the new one), then the server (its fields as before) makes the
      // record JSON.stringify's; the next record has that client with the TLS fields written before it: the TLS
      // bytes kept are not its own
      (f, add) => {
        const other = { ...f.tls!.client!, reason: 'other' };
        add({ ...f, tls: { ...f.tls!, client: other, server: { ...f.tls!.server!, toJSON: () => 'server' } } });
        add({ ...f, tls: { ...f.tls!, client: other } });
      },
    ];
    for (const [i, scenario] of scenarios.entries()) {
      const flow = structuredClone(base);
      const lines = new FlowJsonLines();
      let want = '';
      const add = (record: object): void => {
        want += `${JSON.stringify(record)}\n`;
        lines.add(record as Flow);
      };
      add(flow);
      add(flow);
      scenario(flow, add);
      add(flow);
      expect(lines.take().toString(), `scenario ${i}`).toBe(want);
      expect(lines.copied, `scenario ${i}`).toBeGreaterThan(0);
    }
  });

  it('write numbers as JSON.stringify does: integers, timestamps, floats, huge, negative, -0, NaN, Infinity', () => {
    let seed = 11;
    const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32; };
    const numbers = [
      0, -0, 1, -1, 9, 10, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 4026531840, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 53 + 2, 1e21, 1.5e300, -1e21,
      NaN, Infinity, -Infinity, 0.5, 0.1, 1e-7, 5e-324, 2.5, 3.14159, 1732620000000.01, 1732620000000.1802, 1732620000000.6106, -1732620000000.5,
      1732620000000.5, 4503599627370495.5, 1.0000000000000002, 2.0000000000000004, 1e15 + 0.3, 123456789.12345679, 0.85, 99.99999999999999,
      // exponent forms, the edges of the safe integers and of the doubles, fractions next to an integer
      1e-7, -1.5e-10, 123e-20, 1e20, 1e22, -1e300, 2 ** 60, -(2 ** 60), 2 ** 53 + 1, -(2 ** 53) - 2, 2 ** 64, Number.MAX_VALUE, -Number.MAX_VALUE,
      Number.MIN_VALUE, Number.EPSILON, 2 ** 52 + 0.5, 2 ** 51 + 0.25, 2 ** 51 + 0.75, 2 - 2 ** -51, 2 + 2 ** -51, 1732620000000 + 2 ** -12,
      1732620000001 - 2 ** -12, -1732620000000.0002, 1e308 * 10, -(1e308 * 10), 0 / 0,
    ];
    for (let i = 0; i < 20_000; i++) {
      const t = 1_732_620_000_000 + Math.floor(rnd() * 1e9);
      numbers.push(t + Math.floor(rnd() * 1e4) / 1e4, (t * 1e6 + Math.floor(rnd() * 1e6)) / 1e6, t + rnd(), rnd() * 2 ** (rnd() * 70), -rnd() * 1e6, Math.floor(rnd() * 2 ** 52) + 0.5, Math.floor(rnd() * 1e12) / 8);
    }
    const records = [];
    for (let i = 0; i < numbers.length; i += 8) records.push({ firstSeen: numbers[i], n: numbers.slice(i, i + 8) });
    const { text, lines } = written(records);
    expect(text).toBe(expected(records));
    expect(lines.counts.stringified).toBe(0);
  });

  it('leave to JSON.stringify what it treats specially: toJSON, undefined, functions, class instances, bigint, cycles, prototypes', () => {
    class Point { constructor(readonly x: number) {} }
    const hidden = Object.defineProperty({ a: 1 }, 'b', { value: 2, enumerable: false });
    const withSymbol = { a: 1, [Symbol('s')]: 2 };
    const getter = { get g(): number { return 5; } };
    const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
    const listWithJson = Object.assign([1, 2], { toJSON: () => 'list' });
    const records: unknown[] = [
      { a: 1, toJSON: () => ({ replaced: true }) }, { a: undefined, b: 1 }, { f: () => 1, b: 2 }, { d: new Date(0) }, { p: new Point(3) },
      { m: new Map([[1, 2]]) }, { nullProto: Object.assign(Object.create(null) as object, { x: 1 }) }, { list: [undefined, () => 1, Symbol('x'), null] },
      hidden, withSymbol, getter, { sparse }, { listWithJson }, { nested: { deeper: { toJSON: () => 7 } } }, { 2: 'b', 1: 'a', z: 0, 10: 'c' },
      { boxed: new String('s') }, { http: [{ method: 'GET', host: null, path: '/', status: 200, extra: undefined }] },
    ];
    const { text, lines } = written(records);
    expect(text).toBe(expected(records));
    expect(lines.counts.stringified).toBeGreaterThanOrEqual(12);
    const big = { n: 1n };
    expect(() => new FlowJsonLines().add(big as unknown as Flow)).toThrow(TypeError);
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = { back: cycle };
    expect(() => new FlowJsonLines().add(cycle as unknown as Flow)).toThrow(/circular/i);
    // a record that throws (as JSON.stringify would) leaves nothing of itself behind
    const after = new FlowJsonLines();
    after.add({ a: 1 } as unknown as Flow);
    expect(() => after.add({ b: 2, get c(): number { throw new RangeError('getter'); } } as unknown as Flow)).toThrow(RangeError);
    after.add({ d: 3 } as unknown as Flow);
    expect(after.take().toString()).toBe('{"a":1}\n{"d":3}\n');
  });

  it('see inherited enumerable keys and toJSON on the built-in prototypes as JSON.stringify does', () => {
    const records = [{ a: 1, b: [1, 2] }];
    const proto = Object.prototype as Record<string, unknown>;
    const arrayProto = Array.prototype as unknown as Record<string, unknown>;
    try {
      proto.polluted = 'yes';
      expect(written(records).text).toBe(expected(records));
      delete proto.polluted;
      arrayProto.toJSON = function toJSON(this: unknown[]) { return this.length; };
      expect(written(records).text).toBe(expected(records));
    } finally {
      delete proto.polluted;
      delete arrayProto.toJSON;
    }
    expect(written(records).lines.counts.walked).toBe(1);
  });

  it('write records across chunk boundaries: a record larger than what is left (or than a chunk) grows the buffer', async () => {
    const flows = (await analyzeFiles([{ path: generated }])).analyzer.flows().slice(0, 300);
    const huge = { ...flows[0]!, node: 'n'.repeat(5000), http: [{ method: 'GET', host: 'é'.repeat(3000), path: null, status: null }] };
    const records = [flows[0]!, huge, ...flows, huge];
    for (const chunkBytes of [1, 16, 300, 831, 4096, 100_000]) {
      const { text } = written(records, chunkBytes);
      expect(text, `chunks of ${chunkBytes}`).toBe(expected(records));
    }
  });

  it('reuses a taken chunk\'s buffer once handed back, never one still out or handed back twice', () => {
    const lines = new FlowJsonLines(64);
    const rec = { id: 'x'.repeat(70) } as unknown as Flow;
    lines.add(rec);
    const a = lines.take();
    const b = lines.take();
    lines.reuse(a);
    lines.reuse(a);
    lines.add(rec);
    const c = lines.take();
    const d = lines.take();
    expect(c.toString()).toBe(`${JSON.stringify(rec)}\n`);
    // a grew past its size, so it is not reused; b's buffer is the one still being written
    expect(c.buffer).not.toBe(a.buffer);
    lines.reuse(d);
    lines.reuse(d);
    lines.take();
    const e = lines.take();
    const f = lines.take();
    expect(new Set([e.buffer, f.buffer, b.buffer]).size).toBe(3);
    expect(e.buffer === d.buffer || f.buffer === d.buffer).toBe(true);
    expect(e.buffer === d.buffer && f.buffer === d.buffer).toBe(false);
  });
});

describe('the CLI and the export write flow JSON lines with it', () => {
  async function cliJson(path: string, threads: string): Promise<Buffer> {
    const cli = join(import.meta.dirname, '../../src/cli/main.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'flows', path, '--json'], { env: { ...process.env, TAPSCOPE_THREADS: threads } });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect([code, stderr]).toEqual([0, '']);
    return Buffer.concat(out);
  }

  it('`flows --json` on one and on two threads, several chunks through a pipe; `export --format json`', async () => {
    const { analyzer } = await analyzeFiles([{ path: generated }]);
    const want = expected(analyzer.flows());
    expect(want.length).toBeGreaterThan(3 << 20);
    for (const threads of ['1', '2']) expect((await cliJson(generated, threads)).toString('utf8'), `${threads} threads`).toBe(want);
    const out = join(dir, 'flows.jsonl');
    const res = await exportCapture([{ path: generated }], analyzer, { format: 'json', out });
    expect(readFileSync(out, 'utf8')).toBe(want);
    expect(res.bytes).toBe(Buffer.byteLength(want));
  }, 120_000);
});
