// Session store (crash safety, multi-node merge, CRUD), exports checked by tshark (pcapng, filter, redaction),
// HAR structure, JSON Lines, CoreService queries, and the CLI's parse errors and exit codes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { parseCommand } from '../../src/cli/args.js';
import { isTapscopeError } from '../../src/errors.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import { frame, str } from './export-h2-frames.js';
import type { ApiEvents } from '../../src/api/contract.js';
import { newFraming, wholeBlocks } from '../../src/pcapng/framing.js';

interface HarNv { name: string; value: string }
interface HarEntry {
  startedDateTime: string;
  request: { url: string; headers: HarNv[]; cookies: HarNv[]; queryString: HarNv[] };
  response: { cookies: HarNv[]; content: { text?: string } };
  timings: unknown;
  cache: unknown;
}

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
const ROOT = join(import.meta.dirname, '../..');
let tmp: string;

beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsc-store-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

function tshark(args: string[]): { status: number | null; stdout: string; warnings: string[] } {
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, warnings: r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Running as user')) };
}

/** A node's helper stream: capture record, two HTTP flows, a hooked TLS flow with secrets in its plaintext. */
function nodeStream(node: string, octet: number): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'ebpf', reason: 'auto: test', hostname: `${node}-host` });
  const c = { ip: `10.202.${octet}.1`, port: 40001 };
  tcpConversation(b, c, { ip: `10.202.${octet}.2`, port: 80 },
    [Buffer.from('GET /plain HTTP/1.1\r\nHost: plain.test\r\nAuthorization: Basic dXNlcjpwdw==\r\nCookie: sid=abc123\r\n\r\n')],
    [Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: sid=newsecret; Path=/\r\nContent-Length: 2\r\n\r\nok')]);
  tcpConversation(b, { ip: c.ip, port: 40002 }, { ip: `10.202.${octet}.3`, port: 8080 },
    [Buffer.from('GET /other HTTP/1.1\r\nHost: other.test\r\n\r\n')], [Buffer.from('HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n')]);
  const tc = { ip: c.ip, port: 40003 };
  const ts = { ip: `10.202.${octet}.4`, port: 443 };
  b.record({ t: 'conn', proto: 'tcp', local: tc, remote: ts, role: 'client', pid: 321, comm: 'curl' });
  b.tls(tc, ts, 'out', Buffer.from('GET /api HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer topsecret\r\n\r\n'), { pid: 321, comm: 'curl', lib: 'openssl' });
  tcpConversation(b, tc, ts, [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x01])], [Buffer.from([0x16, 0x03, 0x03, 0x00, 0x01, 0x02])]);
  b.tls(ts, tc, 'in', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone'), { pid: 321, comm: 'curl', lib: 'openssl' });
  return b.build();
}

describe('session store', () => {
  it('reopens a capture killed while a block was half received with every complete block, the half one never written', async () => {
    const store = new SessionStore(join(tmp, 'crash'));
    const rec = store.create({ target: 'local', requestedMode: 'auto' });
    const w = store.nodeWriter(rec.id, 'node-a');
    w.beginStream();
    const bytes = nodeStream('node-a', 10);
    const blocks = parseBuffer(bytes);
    const last = blocks[blocks.length - 1]!;
    // the stream arrives in odd chunks and dies half-way through its last block (as after SIGKILL)
    const cut = last.offset + 10;
    for (let i = 0; i < cut; i += 333) w.write(bytes.subarray(i, Math.min(cut, i + 333)));
    w.sync();
    // no close(), no finish(): a new process finds the session as the killed one left it
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'crash')) });
    const list = await svc.listSessions();
    expect(list).toHaveLength(1);
    const s = list[0]!;
    expect(s.nodes).toEqual(['node-a']);
    // (the half block waited in memory for the rest of it: the file ends with the last whole one, as tshark needs, and
    // reading it finds no block cut short)
    const file = readFileSync(store.get(s.id).file);
    expect(wholeBlocks(file, 0, newFraming())).toBe(file.length);
    expect(s.notes).toEqual([]);
    const expectedPackets = blocks.filter((b) => b.type === 'epb' && b.offset < last.offset && b.iface.linkType !== 252).length;
    expect(s.packets).toBe(expectedPackets);
    const { rows } = await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 100 });
    expect(rows.map((f) => f.node)).toEqual(['node-a', 'node-a', 'node-a']);
    expect(rows.map((f) => f.http.map((h) => `${h.path} ${h.status}`))).toEqual([['/plain 200'], ['/other 503'], ['/api null']]);
    // finishing later (recovery) keeps the same data in the capture file
    await svc.store.finish(s.id);
    w.close();
  });

  it('merges per-node files into one multi-section capture that tshark reads, keeping node names', async () => {
    const store = new SessionStore(join(tmp, 'multi'));
    const rec = store.create({ target: 'k8s://test' });
    for (const [node, octet] of [['node-a', 20], ['node-b', 21]] as const) {
      const w = store.nodeWriter(rec.id, node);
      w.beginStream();
      w.write(nodeStream(node, octet));
      w.close();
    }
    expect(existsSync(store.get(rec.id).nodeFiles['node-b']!)).toBe(true);
    const done = await store.finish(rec.id, { notes: ['test note'] });
    expect(Object.keys(done.nodeFiles)).toEqual([]);
    expect(existsSync(join(tmp, 'multi', rec.id, 'capture.node-b.pcapng'))).toBe(false);
    const t = tshark(['-r', done.file, '-q', '-z', 'conv,tcp']);
    expect(t.status).toBe(0);
    expect(t.warnings).toEqual([]);
    expect(parseBuffer(readFileSync(done.file)).filter((b) => b.type === 'shb')).toHaveLength(2);
    const svc = new CoreService({ store });
    const { rows, total } = await svc.queryFlows({ sessionId: rec.id, offset: 0, limit: 10, sort: { field: 'firstSeen', dir: 'asc' } });
    expect(total).toBe(6);
    expect(new Set(rows.map((f) => f.node))).toEqual(new Set(['node-a', 'node-b']));
    const summary = (await svc.listSessions())[0]!;
    expect(summary.notes).toContain('test note');
    expect(summary.mode).toBe('ebpf');
  });

  it('records a lost and resumed stream in the file itself, and reopens it as one note per gap', async () => {
    const store = new SessionStore(join(tmp, 'gap'));
    const rec = store.create({ target: 'ssh://node-a' });
    const w = store.nodeWriter(rec.id, 'node-a');
    w.beginStream();
    w.write(nodeStream('node-a', 30));
    const fromMs = Date.now() - 5000;
    w.gapOpened(fromMs, 'connection lost');
    w.beginStream();
    w.write(nodeStream('node-a', 31));
    w.close();
    const file = store.get(rec.id).nodeFiles['node-a']!;
    const gaps = parseBuffer(readFileSync(file)).flatMap((b) => (b.type === 'custom' && b.json?.t === 'gap' ? [b.json] : []));
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ fromMs, reason: 'connection lost' });
    expect(gaps[0]!.toMs as number).toBeGreaterThanOrEqual(fromMs);
    const t = tshark(['-r', file, '-q']);
    expect([t.status, t.warnings]).toEqual([0, []]);
    // the live notes (open, then closed) and the file's own record are one gap in the reopened session
    const from = new Date(fromMs).toISOString();
    await store.finish(rec.id, { notes: [`node-a: stream gap from ${from} (connection lost)`, `node-a: stream gap from ${from} to ${new Date(fromMs + 10).toISOString()} (connection lost)`] });
    const svc = new CoreService({ store });
    await svc.queryFlows({ sessionId: rec.id, offset: 0, limit: 1 });
    const notes = (await svc.listSessions())[0]!.notes.filter((n) => n.includes('stream gap'));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(new RegExp(`^node-a: stream gap from ${from.replace(/[.]/g, '\\.')} to \\S+ \\(connection lost\\)$`));
  });

  it('keeps the pods seen during a Kubernetes capture for flow.pod when the session is reopened', async () => {
    const store = new SessionStore(join(tmp, 'pods'));
    const file = join(tmp, 'pods.pcapng');
    writeFileSync(file, nodeStream('node-p', 60));
    const rec = store.create({ target: 'k8s://test', file, existing: true });
    store.writePods(rec, new Map([['10.202.60.2', { namespace: 'shop', name: 'web-1', workload: 'Deployment/web' }]]));
    const svc = new CoreService({ store });
    const { rows } = await svc.queryFlows({ sessionId: rec.id, offset: 0, limit: 10 });
    const byServer = new Map(rows.map((f) => [f.dst.ip, f.pod]));
    expect(byServer.get('10.202.60.2')).toEqual({ namespace: 'shop', name: 'web-1', workload: 'Deployment/web' });
    expect(byServer.get('10.202.60.3')).toBeNull();
  });

  it('lists, renames and deletes sessions', async () => {
    const store = new SessionStore(join(tmp, 'crud'));
    const a = store.create({ target: 'local' });
    const b = store.create({ target: 'ssh://x' });
    const svc = new CoreService({ store });
    const changed: ApiEvents['sessionChanged'][] = [];
    svc.on('sessionChanged', (s) => changed.push(s));
    expect((await svc.renameSession({ sessionId: a.id, name: '  my capture ' })).name).toBe('my capture');
    expect(changed.map((s) => s.name)).toEqual(['my capture']);
    await svc.deleteSession({ sessionId: b.id });
    expect(store.list().map((r) => r.id)).toEqual([a.id]);
    await expect(svc.openSession({ sessionId: b.id })).rejects.toMatchObject({ code: 'E_SESSION_NOT_FOUND' });
    await expect(svc.renameSession({ sessionId: a.id, name: ' ' })).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});

describe('a capture filter in the session summary', () => {
  it('is what the capture records say, with what the nodes counted as left out, before and after the index is built', async () => {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'afpacket requested', filter: 'tcp port 443' });
    tcpConversation(b, { ip: '10.0.0.1', port: 40000 }, { ip: '10.0.0.2', port: 443 }, [Buffer.from('hi')], [Buffer.from('ho')]);
    b.record({ t: 'stats', final: true, packets: 6, filtered: 12 });
    const file = join(tmp, 'filtered.pcapng');
    writeFileSync(file, b.build());
    const store = new SessionStore(join(tmp, 'filtered'));
    const s = await new CoreService({ store }).openFile({ path: file });
    expect(s).toMatchObject({ captureFilter: 'tcp port 443', filtered: 12 });
    // a new service reads the summary from the index the first one wrote
    expect((await new CoreService({ store }).listSessions()).find((x) => x.id === s.id)).toMatchObject({ captureFilter: 'tcp port 443', filtered: 12 });
    // a capture without one
    const plain = join(tmp, 'plain.pcapng');
    writeFileSync(plain, nodeStream('node-p', 2));
    expect(await new CoreService({ store }).openFile({ path: plain })).toMatchObject({ captureFilter: null, filtered: 0 });
  });

  it('refuses pods on a target that is not Kubernetes, before creating a session', async () => {
    const store = new SessionStore(join(tmp, 'pods-refused'));
    await expect(new CoreService({ store }).startCapture({ target: 'local', mode: 'auto', ifaces: [], pods: ['shop/web'] }))
      .rejects.toMatchObject({ code: 'E_USAGE', message: expect.stringMatching(/pods are captured on a Kubernetes target/) });
    expect(store.list()).toEqual([]);
  });
});

describe('CoreService queries', () => {
  it('filters, sorts and pages flows; details, libraries, filter check; export progress', async () => {
    const file = join(tmp, 'q.pcapng');
    writeFileSync(file, nodeStream('node-q', 30));
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'q')) });
    const s = await svc.openFile({ path: file });
    expect(s.flows).toBe(3);
    const byBytes = await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 2, sort: { field: 'bytes', dir: 'desc' } });
    expect(byBytes.total).toBe(3);
    expect(byBytes.rows).toHaveLength(2);
    expect(byBytes.rows[0]!.bytes).toBeGreaterThanOrEqual(byBytes.rows[1]!.bytes);
    const page2 = await svc.queryFlows({ sessionId: s.id, offset: 2, limit: 2, sort: { field: 'bytes', dir: 'desc' } });
    expect(page2.rows).toHaveLength(1);
    const five = await svc.queryFlows({ sessionId: s.id, filter: 'http.status >= 500', offset: 0, limit: 10 });
    expect(five.rows.map((f) => f.http[0]?.path)).toEqual(['/other']);
    await expect(svc.queryFlows({ sessionId: s.id, filter: 'http.status >=', offset: 0, limit: 1 })).rejects.toMatchObject({ code: 'E_FILTER_SYNTAX' });
    expect(await svc.checkFilter({ filter: 'port == 443' })).toEqual({ ok: true });
    expect((await svc.checkFilter({ filter: 'port ==' })).ok).toBe(false);
    const tlsFlow = (await svc.queryFlows({ sessionId: s.id, filter: 'tls', offset: 0, limit: 1 })).rows[0]!;
    const d = await svc.flowDetail({ sessionId: s.id, flowId: tlsFlow.id });
    expect(d.exchanges[0]).toMatchObject({ source: 'decrypted', path: '/api', status: 200, responseBody: 'done' });
    expect(d.clientBytesHex).toBe('160301000101');
    await expect(svc.flowDetail({ sessionId: s.id, flowId: 'nope' })).rejects.toMatchObject({ code: 'E_FLOW_NOT_FOUND' });
    const libs = await svc.libraries({ sessionId: s.id });
    expect(libs.sides.find((r) => r.side === 'client')).toMatchObject({ library: 'openssl', flows: 1, plaintextFlows: 1 });
    const progress: ApiEvents['exportProgress'][] = [];
    svc.on('exportProgress', (p) => progress.push(p));
    const out = join(tmp, 'q-export.pcapng');
    const r = await svc.exportSession({ sessionId: s.id, format: 'pcapng', path: out });
    expect(r.bytes).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ sessionId: s.id });
    expect(progress.at(-1)!.done).toBe(progress.at(-1)!.total);
  });
});

describe('exports', () => {
  const src = join(FIX, 'loopback-mix.pcapng');

  it('writes pcapng that tshark reads without warnings, redacting Authorization and Cookie by default', async () => {
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'exp')) });
    const s = await svc.openFile({ path: src });
    const red = join(tmp, 'red.pcapng');
    await svc.exportSession({ sessionId: s.id, format: 'pcapng', path: red });
    const t = tshark(['-r', red, '-Y', 'http.request', '-T', 'fields', '-e', 'http.request.uri', '-e', 'http.authorization', '-e', 'http.cookie']);
    expect(t.status).toBe(0);
    expect(t.warnings).toEqual([]);
    expect(t.stdout.split('\n').filter(Boolean).sort()).toEqual(['/\txxxxxxxxxxxxxxxx\txxx', '/nonexist\t\t']);
    const all = join(tmp, 'all.pcapng');
    await svc.exportSession({ sessionId: s.id, format: 'pcapng', path: all, includeSecrets: true });
    const t2 = tshark(['-r', all, '-Y', 'http.authorization', '-T', 'fields', '-e', 'http.authorization']);
    expect(t2.stdout.trim()).toBe('Bearer secret123');
    // same packets as the source
    expect(tshark(['-r', all, '-q', '-z', 'io,stat,0']).stdout).toBe(tshark(['-r', src, '-q', '-z', 'io,stat,0']).stdout);
  });

  it('keeps only the matching flows\' packets with a filter, and the decrypted-plaintext interface', async () => {
    const file = join(tmp, 'f.pcapng');
    writeFileSync(file, nodeStream('node-f', 40));
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'f')) });
    const s = await svc.openFile({ path: file });
    const tlsOnly = join(tmp, 'tls-only.pcapng');
    await svc.exportSession({ sessionId: s.id, format: 'pcapng', path: tlsOnly, filter: 'tls' });
    const flows = (await svc.queryFlows({ sessionId: s.id, filter: 'tls', offset: 0, limit: 10 })).rows;
    expect(flows).toHaveLength(1);
    // why: tshark 4 also lists custom blocks as records; count the packets and decrypted records only
    const frames = tshark(['-r', tlsOnly, '-Y', 'tcp || exported_pdu', '-T', 'fields', '-e', 'frame.number']).stdout.trim().split('\n');
    expect(frames).toHaveLength(flows[0]!.packets + 2); // wire packets + 2 decrypted records
    const ports = tshark(['-r', tlsOnly, '-Y', 'tcp', '-T', 'fields', '-e', 'tcp.dstport']).stdout.trim().split('\n');
    expect(new Set(ports)).toEqual(new Set(['443', '40003']));
    const http = tshark(['-r', tlsOnly, '-Y', 'http.request', '-T', 'fields', '-e', 'http.host', '-e', 'http.authorization']);
    expect(http.warnings).toEqual([]);
    expect(http.stdout.trim()).toBe(`api.test\t${'x'.repeat('Bearer topsecret'.length)}`);
  });

  it('writes HAR 1.2 with redaction on and off, and JSON Lines of flows', async () => {
    const file = join(tmp, 'h.pcapng');
    writeFileSync(file, nodeStream('node-h', 50));
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'h')) });
    const s = await svc.openFile({ path: file });
    const harPath = join(tmp, 'x.har');
    await svc.exportSession({ sessionId: s.id, format: 'har', path: harPath });
    const har = JSON.parse(readFileSync(harPath, 'utf8')) as { log: { version: string; creator: { name: string }; entries: HarEntry[] } };
    expect(har.log.version).toBe('1.2');
    expect(har.log.creator.name).toBe('tapscope');
    expect(har.log.entries).toHaveLength(3);
    for (const e of har.log.entries) {
      expect(typeof e.startedDateTime).toBe('string');
      expect(Number.isNaN(Date.parse(e.startedDateTime))).toBe(false);
      expect(e.request).toMatchObject({ method: expect.any(String), url: expect.stringMatching(/^https?:\/\//), httpVersion: expect.any(String), headersSize: -1 });
      expect(Array.isArray(e.request.headers) && Array.isArray(e.request.cookies) && Array.isArray(e.request.queryString)).toBe(true);
      expect(e.response).toMatchObject({ status: expect.any(Number), content: { size: expect.any(Number), mimeType: expect.any(String) }, redirectURL: expect.any(String) });
      // (the packets' times: the request taken as sent at once, then the wait for the answer and its receiving)
      expect(e.timings).toMatchObject({ send: 0, wait: expect.any(Number), receive: expect.any(Number) });
      expect(e.cache).toEqual({});
    }
    const plain = har.log.entries.find((e) => e.request.url === 'http://plain.test/plain')!;
    const hdr = (list: { name: string; value: string }[], n: string) => list.find((h) => h.name.toLowerCase() === n)?.value;
    expect(hdr(plain.request.headers, 'authorization')).toBe('[redacted]');
    expect(plain.request.cookies).toEqual([{ name: 'sid', value: '[redacted]' }]);
    expect(plain.response.cookies).toEqual([{ name: 'sid', value: '[redacted]' }]);
    expect(plain.response.content.text).toBe('ok');
    const api = har.log.entries.find((e) => e.request.url === 'https://api.test/api')!;
    expect(hdr(api.request.headers, 'authorization')).toBe('[redacted]');
    expect(JSON.stringify(har)).not.toMatch(/topsecret|dXNlcjpwdw|abc123|newsecret/);
    await svc.exportSession({ sessionId: s.id, format: 'har', path: harPath, includeSecrets: true });
    const text = readFileSync(harPath, 'utf8');
    expect(text).toMatch(/Bearer topsecret/);
    expect(text).toMatch(/sid=abc123/);
    const jl = join(tmp, 'x.jsonl');
    await svc.exportSession({ sessionId: s.id, format: 'json', path: jl, filter: 'http.status == 503' });
    const lines = readFileSync(jl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { http: { status: number }[] });
    expect(lines.map((l) => l.http[0]?.status)).toEqual([503]);
  });
});

describe('CLI parsing and exit codes', () => {
  it('parses every command and rejects bad usage with E_USAGE', () => {
    expect(parseCommand(['help', 'filter'])).toEqual({ cmd: 'help', topic: 'filter' });
    expect(parseCommand(['help'])).toEqual({ cmd: 'help' });
    // -Y, as tshark spells its display filter option
    expect(parseCommand(['flows', 'x.pcapng', '-Y', 'tcp.port == 443'])).toMatchObject({ cmd: 'flows', file: 'x.pcapng', filter: 'tcp.port == 443' });
    expect(parseCommand(['export', 'x.pcapng', '--format', 'har', '--out', 'y', '-Y', 'http'])).toMatchObject({ cmd: 'export', filter: 'http' });
    expect(parseCommand(['capture', '--out', 'x.pcapng', '--iface', 'eth0', '--iface', 'lo', '--duration', '3'])).toMatchObject({
      cmd: 'capture', target: 'local', mode: 'auto', ifaces: ['eth0', 'lo'], duration: 3, out: 'x.pcapng', acceptNewHostKey: false,
    });
    expect(parseCommand(['capture', '--target', 'k8s://prod', '--image', 'mirror.local/busybox:1.36', '--namespace', 'ops', '--out', 'x'])).toMatchObject({
      target: 'k8s://prod', k8s: { image: 'mirror.local/busybox:1.36', namespace: 'ops' },
    });
    expect(parseCommand(['capture', '--out', 'x', '--capture-filter', ' tcp port 443 and not host 10.0.0.5 '])).toMatchObject({ captureFilter: 'tcp port 443 and not host 10.0.0.5' });
    expect(parseCommand(['capture', '--out', 'x'])).toMatchObject({ captureFilter: undefined, keylogs: [] });
    expect(parseCommand(['capture', '--out', 'x', '--keylog', 'a.keys', '--keylog', 'b.keys'])).toMatchObject({ keylogs: ['a.keys', 'b.keys'] });
    expect(parseCommand(['capture', '--out', 'x'])).toMatchObject({ nodeKeylogs: [] });
    expect(parseCommand(['capture', '--out', 'x', '--node-keylog', '/var/keys.log', '--node-keylog', '/tmp/k'])).toMatchObject({ nodeKeylogs: ['/var/keys.log', '/tmp/k'] });
    expect(() => parseCommand(['capture', '--out', 'x', '--node-keylog', 'keys.log'])).toThrow(/absolute path on the node/);
    expect(parseCommand(['clean', '--target', 'k8s://prod', '--kubeconfig', '/k'])).toEqual({ cmd: 'clean', target: 'k8s://prod', kubeconfig: '/k', force: false });
    expect(parseCommand(['clean', '--target', 'k8s://prod', '--force'])).toEqual({ cmd: 'clean', target: 'k8s://prod', kubeconfig: undefined, force: true });
    expect(parseCommand(['flows', 'f.pcapng', '--json', '--filter', 'tls'])).toEqual({ cmd: 'flows', file: 'f.pcapng', json: true, filter: 'tls', keylogs: [] });
    expect(parseCommand(['flows', 'f.pcapng', '--keylog', 'a.keys', '--keylog', 'b.keys'])).toMatchObject({ keylogs: ['a.keys', 'b.keys'] });
    expect(parseCommand(['libraries', 'f.pcapng', '--keylog', 'a.keys'])).toMatchObject({ cmd: 'libraries', keylogs: ['a.keys'] });
    expect(parseCommand(['export', 'f.pcapng', '--format', 'har', '--out', 'x', '--keylog', 'a.keys'])).toMatchObject({ cmd: 'export', keylogs: ['a.keys'] });
    expect(parseCommand(['export', 'f', '--format', 'har', '--out', 'o.har', '--include-secrets'])).toMatchObject({ format: 'har', includeSecrets: true });
    expect(parseCommand(['serve', '--port', '0'])).toEqual({ cmd: 'serve', port: 0, session: undefined });
    expect(parseCommand(['--version'])).toEqual({ cmd: 'version' });
    expect(parseCommand(['check'])).toEqual({ cmd: 'check', target: 'local', json: false, acceptNewHostKey: false, k8s: {} });
    expect(parseCommand(['check', '--target', 'k8s://prod', '--kubeconfig', '/k', '--json'])).toMatchObject({ target: 'k8s://prod', json: true, k8s: { kubeconfig: '/k' } });
    const bad: string[][] = [
      ['capture'], ['capture', '--out', 'x', '--mode', 'magic'], ['capture', '--out', 'x', '--duration', '-1'], ['flows'], ['flows', 'a', 'b'],
      ['export', 'f', '--format', 'xml', '--out', 'o'], ['export', 'f', '--format', 'har'], ['clean', '--target', 'ssh://x'], ['frobnicate'],
      ['capture', '--out', 'x', '--image', 'busybox'], ['capture', '--target', 'ssh://h', '--namespace', 'n', '--out', 'x'],
      ['flows', 'f', '--jsn'], ['serve', '--port', '70000'], ['capture', '--out', 'x', '--capture-filter', ' '], ['check', 'extra'], ['check', '--target', 'ssh://h', '--image', 'busybox'],
    ];
    for (const argv of bad) {
      let e: unknown;
      try { parseCommand(argv); } catch (x) { e = x; }
      expect(isTapscopeError(e, 'E_USAGE'), argv.join(' ')).toBe(true);
    }
  });

  const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'cli') } });

  it('check: reports this machine as the local target captures it (helper, privilege, BTF), and exits 1 on a problem', () => {
    const r = run(['check', '--json']);
    expect([r.status, r.stderr]).toEqual([0, '']);
    const [report, ...more] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(more).toEqual([]);
    expect(report).toMatchObject({ arch: 'x86_64', btf: true, helperVersion: expect.stringMatching(/^tapscope-helper \d+\.\d+\.\d+/), problems: [] });
    if (process.getuid?.() === 0) expect(report!.privileged).toBe('root');
    const table = run(['check']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NODE +ARCH +KERNEL +BTF +PRIVILEGE +HELPER +PROBLEMS$/);
    expect(table.stdout.split('\n')[1]).toMatch(new RegExp(`^${report!.node as string} +x86_64 +\\S+ +yes +\\S+ +\\d+\\.\\d+\\.\\d+ +0$`));
    const missing = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'check'], {
      encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'cli'), TAPSCOPE_HELPER: join(tmp, 'no-helper') },
    });
    expect(missing.status).toBe(1);
    expect(missing.stdout).toContain(`${report!.node as string}: helper binary not found at ${join(tmp, 'no-helper')}`);
  });

  it('prints one error line with the code and exits 2 for usage, 1 for other errors', () => {
    const u = run(['flows']);
    expect(u.status).toBe(2);
    expect(u.stderr).toBe('tapscope: flows: FILE is required; see tapscope --help (E_USAGE)\n');
    const m = run(['flows', join(tmp, 'missing.pcapng')]);
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/^tapscope: .* \(E_FILE_NOT_FOUND\)\n$/);
    const bad = join(tmp, 'bad.pcapng');
    const fd = openSync(bad, 'w');
    writeSync(fd, Buffer.from('definitely not a capture'));
    closeSync(fd);
    const x = run(['flows', bad]);
    expect(x.status).toBe(1);
    expect(x.stderr).toMatch(/^tapscope: not a pcapng or pcap file .* at offset 0 \(E_PCAPNG_MALFORMED\)\n$/);
    const v = run(['--version']);
    expect(v.stdout).toMatch(/^tapscope \d+\.\d+\.\d+\n$/);
    const j = run(['flows', join(FIX, 'loopback-mix.pcapng'), '--json', '--filter', 'app == "tls"']);
    expect(j.status).toBe(0);
    expect(j.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { tls: { sni: string } }).tls.sni)).toEqual(['localhost', 'localhost']);
  });
});

describe('a capture damaged in the middle', () => {
  // node-a's stream with one block in its middle damaged (an interface id no interface block defined): what
  // comes before it is a capture of its own, the prefix
  const whole = nodeStream('node-a', 10);
  const blocks = parseBuffer(whole);
  const bad = blocks.filter((b) => b.type === 'epb')[12]!;
  const damaged = Buffer.from(whole);
  damaged.writeUInt32LE(7, bad.offset + 8);
  const ifaces = blocks.filter((b) => b.type === 'idb' && b.offset < bad.offset).length;
  const message = `enhanced packet block refers to interface 7 but the section defines ${ifaces} at offset ${bad.offset}`;
  let damagedPath: string;
  let prefixPath: string;
  beforeAll(() => {
    damagedPath = join(tmp, 'damaged.pcapng');
    prefixPath = join(tmp, 'prefix.pcapng');
    writeFileSync(damagedPath, damaged);
    writeFileSync(prefixPath, whole.subarray(0, bad.offset));
  });
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'cli-damaged') } });

  it('opens in the app with the flows before the damage and a note that names it', async () => {
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'damaged-store')) });
    const s = await svc.openFile({ path: damagedPath });
    expect(s.notes).toEqual([`${damagedPath} is damaged: ${message}; it was read up to that block, nothing from it on`]);
    expect(s.losses).toEqual(s.notes);
    const p = await svc.openFile({ path: prefixPath });
    expect(s.packets).toBe(p.packets);
    expect(s.packets).toBeGreaterThan(10);
    const { rows } = await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 100 });
    const { rows: expected } = await svc.queryFlows({ sessionId: p.id, offset: 0, limit: 100 });
    expect(rows.map((f) => `${f.id} ${f.packets} ${f.http.map((h) => h.path).join(',')}`)).toEqual(expected.map((f) => `${f.id} ${f.packets} ${f.http.map((h) => h.path).join(',')}`));
    expect(rows.length).toBeGreaterThan(1);
  });

  it('flows, libraries and export print or write what came before the damage, then fail with it (exit 1), as tshark does', () => {
    const error = `tapscope: ${damagedPath} is damaged: ${message}; it was read up to that block, nothing from it on (E_PCAPNG_MALFORMED)\n`;
    const f = cli(['flows', damagedPath, '--json']);
    expect(f.stderr).toBe(error);
    expect(f.status).toBe(1);
    const expected = cli(['flows', prefixPath, '--json']);
    expect(expected.status).toBe(0);
    expect(f.stdout).toBe(expected.stdout);
    expect(f.stdout.trim().split('\n').length).toBeGreaterThan(1);
    const l = cli(['libraries', damagedPath, '--json']);
    expect([l.status, l.stderr, l.stdout]).toEqual([1, error, cli(['libraries', prefixPath, '--json']).stdout]);
    const out = join(tmp, 'damaged-export.pcapng');
    const x = cli(['export', damagedPath, '--format', 'pcapng', '--out', out]);
    expect(x.status).toBe(1);
    expect(x.stderr).toMatch(new RegExp(`^wrote ${out} .*\\n${error.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    // the export holds what the prefix holds, read by tshark without a warning
    const frames = (path: string): string => tshark(['-r', path, '-T', 'fields', '-e', 'frame.len', '-e', 'frame.protocols']).stdout;
    expect(tshark(['-r', out]).warnings).toEqual([]);
    expect(frames(out)).toBe(frames(prefixPath));
    expect(frames(out).trim().split('\n').length).toBeGreaterThan(10);
  });
});

describe('HTTP/2 redaction in decrypted records', () => {
  const raw = (s: string): Buffer => str(s, false);

  it('overwrites secret HPACK literals (raw and Huffman) and keeps the other headers decodable', async () => {
    const block = Buffer.concat([
      Buffer.from([0x82, 0x84, 0x87]), // :method GET, :path /, :scheme https
      Buffer.from([0x41]), raw('api.test'), // :authority, incremental indexing
      Buffer.from([0x0f, 0x08]), raw('Bearer h2secret'), // authorization (static 23), without indexing
      Buffer.from([0x60, 0x89]), Buffer.from('25a849e95bb8e8b4bf', 'hex'), // cookie (static 32) = Huffman "custom-value"
      Buffer.from([0x00]), raw('proxy-authorization'), raw('Basic zzz'), // literal name
      Buffer.from([0x00]), raw('x-trace'), raw('keepme'),
    ]);
    const client = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, block)]);
    const server = Buffer.concat([frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, Buffer.concat([Buffer.from([0x88, 0x0f, 0x28]), raw('sid=topsecret')]))]);
    const b = new CaptureBuilder();
    const c = { ip: '10.202.70.1', port: 41000 };
    const sv = { ip: '10.202.70.2', port: 443 };
    b.tls(c, sv, 'out', client, { pid: 5, comm: 'client', lib: 'openssl', proto: 'http2' });
    b.tls(sv, c, 'in', server, { pid: 5, comm: 'client', lib: 'openssl', proto: 'data' });
    const file = join(tmp, 'h2.pcapng');
    writeFileSync(file, b.build());
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'h2')) });
    const s = await svc.openFile({ path: file });
    const before = (await svc.flowDetail({ sessionId: s.id, flowId: (await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 1 })).rows[0]!.id })).exchanges[0]!;
    expect(before.requestHeaders).toContainEqual(['cookie', 'custom-value']);
    const out = join(tmp, 'h2-red.pcapng');
    await svc.exportSession({ sessionId: s.id, format: 'pcapng', path: out });
    expect(tshark(['-r', out]).warnings).toEqual([]);
    const again = await svc.openFile({ path: out });
    const e = (await svc.flowDetail({ sessionId: again.id, flowId: (await svc.queryFlows({ sessionId: again.id, offset: 0, limit: 1 })).rows[0]!.id })).exchanges[0]!;
    const h = new Map(e.requestHeaders);
    expect(h.get('authorization')).toBe('x'.repeat('Bearer h2secret'.length));
    expect(h.get('cookie')).toBe('-'.repeat('custom-value'.length));
    expect(h.get('proxy-authorization')).toBe('xxxxxxxxx');
    expect(h.get('x-trace')).toBe('keepme');
    expect(h.get(':authority')).toBe('api.test');
    expect(new Map(e.responseHeaders).get('set-cookie')).toBe('x'.repeat('sid=topsecret'.length));
    expect(e.status).toBe(200);
    expect(readFileSync(out).includes('h2secret')).toBe(false);
    expect(readFileSync(out).includes('topsecret')).toBe(false);
  });
});
