// Smoke run of the flows benchmark on a small generated capture: both tools run, and tapscope finds exactly
// the TCP conversations tshark finds, also with the flows interleaved. (The full run is `npm run bench`; it prints ratios, never gates.)
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCapture, generateHookedFlows, runFlowsBench } from '../bench/flows-bench.js';
import { CASES, runHostileBench } from '../bench/hostile-bench.js';
import { analyzeFiles } from '../../src/flows/load.js';

const dir = mkdtempSync(join(tmpdir(), 'tsc-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('flows benchmark (smoke size)', () => {
  it('runs tapscope flows and tshark conv,tcp on the same capture and agrees on the TCP conversations', () => {
    const prev = process.env.BENCH_FROM_SOURCE;
    process.env.BENCH_FROM_SOURCE = '1';
    try {
      const r = runFlowsBench(6, { dir, lighter: true, interleave: 64, hooked: 40 });
      expect(r.tapscope.code).toBe(0);
      expect(r.tshark.code).toBe(0);
      expect(r.capture.tcpFlows).toBeGreaterThan(100);
      expect(r.tapscopeTcpFlows).toBe(r.capture.tcpFlows);
      expect(r.tsharkConversations).toBe(r.capture.tcpFlows);
      expect(r.tapscope.rssMb).toBeGreaterThan(0);
      expect(r.tshark.wallS).toBeGreaterThan(0);
      expect(r.lighter!.capture.flows).toBe(r.capture.flows);
      // the interleaved capture: the same flows, mixed; both tools still find every TCP conversation
      const x = r.interleaved!;
      expect(x.capture.flows).toBe(r.capture.flows);
      expect(x.capture.packets).toBe(r.capture.packets);
      expect(x.tapscopeTcpFlows).toBe(r.capture.tcpFlows);
      expect(x.tsharkConversations).toBe(r.capture.tcpFlows);
      // the hooked capture: every flow once, in both tools
      expect([r.hooked!.tapscopeFlows, r.hooked!.tsharkConversations]).toEqual([40, 40]);
    } finally {
      if (prev === undefined) delete process.env.BENCH_FROM_SOURCE;
      else process.env.BENCH_FROM_SOURCE = prev;
    }
  });

  it('hostile-bench: both tools read every case, and find the same TCP conversations', () => {
    const prev = process.env.BENCH_FROM_SOURCE;
    process.env.BENCH_FROM_SOURCE = '1';
    try {
      const rows = runHostileBench(0.02, 1, dir);
      expect(rows.map((r) => r.name)).toEqual(CASES.map((c) => c.name));
      for (const r of rows) {
        expect([r.name, r.tapscope.code, r.tshark.code]).toEqual([r.name, 0, 0]);
        expect([r.name, r.tapscopeTcpFlows]).toEqual([r.name, r.tsharkConversations]);
      }
      // (every case's flows listed: the UDP ones too, whose conversations conv,tcp does not count)
      for (const r of rows) expect([r.name, r.tapscopeFlows > 0]).toEqual([r.name, true]);
      expect(rows.filter((r) => r.tapscopeTcpFlows > 0).map((r) => r.name)).toEqual(['dns-tcp-zeros', 'byte-segments', 'h2-big-frames', 'short-messages', 'h1-pipelined', 'same-tuple-time']);
    } finally {
      if (prev === undefined) delete process.env.BENCH_FROM_SOURCE;
      else process.env.BENCH_FROM_SOURCE = prev;
    }
  });

  it('finds the same flows in the interleaved captures, IPv4 and IPv6, as in the sequential one', async () => {
    const seq = generateCapture(join(dir, 'same-seq.pcapng'), 3);
    const mixed = generateCapture(join(dir, 'same-x32.pcapng'), 3, undefined, { interleave: 32 });
    const mixed6 = generateCapture(join(dir, 'same-x32-v6.pcapng'), 3, undefined, { interleave: 32, ipv6: true });
    // per flow what does not depend on addresses, ports or timing: app, SNI, JA4, HTTP, DNS, packets, bytes
    // (less the 20 more bytes of each IPv6 header)
    const summary = async (path: string, v6 = false): Promise<string[]> => {
      const { analyzer } = await analyzeFiles([{ path }], { details: false });
      return analyzer.flows().map((f) => JSON.stringify([
        f.app, f.tls?.sni, f.tls?.ja4, f.tls?.version, f.http, f.dns?.map((d) => [d.query, d.answers]), f.packets, f.bytes - (v6 ? 20 * f.packets : 0),
      ])).sort();
    };
    const a = await summary(seq.path);
    expect(a.length).toBe(seq.flows);
    expect(await summary(mixed.path)).toEqual(a);
    const { analyzer: six } = await analyzeFiles([{ path: mixed6.path }], { details: false });
    expect(six.flows().every((f) => f.src.ip.includes(':') && f.dst.ip.includes(':'))).toBe(true);
    expect(await summary(mixed6.path, true)).toEqual(a);
    // and the flows were really dissected: TLS with its JA4, HTTP with its status
    const kinds = Array.from({ length: seq.flows }, (_, i) => i % 10);
    expect(a.filter((x) => x.startsWith('["tls","localhost","t13d')).length).toBe(kinds.filter((k) => k < 6).length);
    expect(a.filter((x) => x.includes('"status":200')).length).toBe(kinds.filter((k) => k >= 6 && k < 9).length);
  });

  it('reads the hooked capture as ebpf mode means it: every flow with its plaintext captured and its HTTP from the records', async () => {
    const h = generateHookedFlows(join(dir, 'hooked-25.pcapng'), 25, 6);
    const { analyzer } = await analyzeFiles([{ path: h.path }], { details: false });
    const flows = analyzer.flows();
    expect(flows.length).toBe(25);
    for (const f of flows) {
      expect([f.app, f.tls?.sni, f.tls?.client?.library, f.tls?.client?.plaintext, f.process?.comm], f.id).toEqual(['tls', 'localhost', 'openssl', true, 'curl']);
      expect(f.http.map((x) => [x.method, x.host, x.status])).toEqual([['GET', 'api.bench.test', 200]]);
    }
  });
});
