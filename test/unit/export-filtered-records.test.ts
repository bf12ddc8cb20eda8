// A filtered pcapng export (one flow handed to someone else) keeps the helper's records of that flow's processes and
// connections, and of the capture itself, not those of the capture's other processes: their command lines, executables
// and connections are not the recipient's. The exported flow still reads back with its process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';
import { parseBuffer } from '../../src/pcapng/reader.js';
import { analyzeFiles } from '../../src/flows/load.js';

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsr-filtrec-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

const A = { c: { ip: '10.63.0.1', port: 42001 }, s: { ip: '10.63.0.9', port: 80 } };
const B = { c: { ip: '10.63.0.2', port: 42002 }, s: { ip: '10.63.0.9', port: 8080 } };

describe('a filtered pcapng export', () => {
  it('keeps the exported flow\'s process and connection records and the capture\'s, drops the others\'', async () => {
    const b = new CaptureBuilder();
    b.record({ t: 'capture', v: 1, mode: 'ebpf', hostname: 'node-1' });
    b.record({ t: 'proc', pid: 10, ppid: 1, comm: 'curl', exe: '/usr/bin/curl', cmdline: 'curl http://10.63.0.9/a', cgroup: null, alive: true });
    b.record({ t: 'proc', pid: 20, ppid: 1, comm: 'secretjob', exe: '/opt/secret/job', cmdline: 'secretjob --customer acme', cgroup: null, alive: true });
    b.record({ t: 'hook', library: 'openssl', path: '/usr/lib/libssl.so.3', status: 'attached', pid: null });
    b.record({ t: 'hook', library: 'openssl', path: '/opt/secret/libssl.so', status: 'attached', pid: 20 });
    b.record({ t: 'conn', proto: 'tcp', local: A.c, remote: A.s, role: 'client', pid: 10, tid: 10, comm: 'curl', via: 'tracepoint' });
    b.record({ t: 'conn', proto: 'tcp', local: B.c, remote: B.s, role: 'client', pid: 20, tid: 20, comm: 'secretjob', via: 'tracepoint' });
    b.record({ t: 'conn', proto: 'udp', local: { ip: '0.0.0.0', port: 5353 }, remote: { ip: '0.0.0.0', port: 0 }, role: 'unknown', pid: 20, tid: 20, comm: 'secretjob', via: 'proc' });
    tcpConversation(b, A.c, A.s, [Buffer.from('GET /a HTTP/1.1\r\nHost: a\r\n\r\n')], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    tcpConversation(b, B.c, B.s, [Buffer.from('GET /b HTTP/1.1\r\nHost: b\r\n\r\n')], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
    const file = join(tmp, 'two.pcapng');
    writeFileSync(file, b.build());
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'store')) });
    const { id } = await svc.openFile({ path: file });
    const out = join(tmp, 'one.pcapng');
    await svc.exportSession({ sessionId: id, format: 'pcapng', path: out, filter: 'dst.port == 80' });
    const records = parseBuffer(readFileSync(out)).flatMap((x) => (x.type === 'custom' && x.json ? [x.json as Record<string, unknown>] : []));
    expect(records.map((r) => `${String(r.t)}:${String(r.pid ?? '')}`)).toEqual(['capture:', 'proc:10', 'hook:', 'conn:10']);
    expect(readFileSync(out).includes('secretjob')).toBe(false);
    // (the flow read back from the export has its process, as in the capture)
    const { analyzer } = await analyzeFiles([{ path: out }]);
    expect(analyzer.flows().map((f) => [f.dst.port, f.process?.comm, f.process?.exe])).toEqual([[80, 'curl', '/usr/bin/curl']]);
    // (unfiltered, every record goes)
    const all = join(tmp, 'all.pcapng');
    await svc.exportSession({ sessionId: id, format: 'pcapng', path: all });
    expect(parseBuffer(readFileSync(all)).filter((x) => x.type === 'custom')).toHaveLength(8);
  });
});
