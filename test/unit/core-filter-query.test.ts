// CoreService's filtered queries: filters over fields that are always current (ports, addresses, SNI,
// bytes) page over unresolved flows; stable filters (addresses, ports, transport) keep their matches as
// flows grow and only test new flows; other filters re-test every flow once anything changed. Every answer
// is checked against the predicate over all resolved flows.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';
import { compileFilter } from '../../src/filter/index.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { CaptureBuilder, ethernet, fixtureClientHello, ipPacket } from './core-packet-builder.js';
import type { Analyzer } from '../../src/flows/analyzer.js';

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsc-fq-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

const HELLO = fixtureClientHello();

/** Flows `from`..`to`-1: every third a TLS ClientHello to port 443 (every sixth), the rest UDP to 9000+i%4, each one packet of i%5*40 bytes. */
function capture(from: number, to: number, startMs: number): Buffer {
  const b = new CaptureBuilder(startMs);
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'fq' });
  for (let i = from; i < to; i++) {
    const src = `10.208.${(i >> 8) & 255}.${i & 255}`;
    const payload = Buffer.alloc(10 + (i % 5) * 40, 1);
    if (i % 3 === 0) b.packet(ethernet(ipPacket('tcp', { src, dst: '10.208.255.1', sport: 40000 + (i % 1000), dport: 443, seq: 1, flags: 0x18, payload: i % 6 === 0 ? HELLO : payload })));
    else b.packet(ethernet(ipPacket('udp', { src, dst: '10.208.255.2', sport: 40000 + (i % 1000), dport: 9000 + (i % 4), payload })));
  }
  return b.build();
}

/** More packets on existing UDP flows `from`..`to`-1 (same tuples): their bytes grow. */
function more(from: number, to: number, startMs: number): Buffer {
  const b = new CaptureBuilder(startMs);
  b.record({ t: 'capture', v: 1, mode: 'afpacket', reason: 'test', hostname: 'fq' });
  for (let i = from; i < to; i++) {
    if (i % 3 === 0) continue;
    const src = `10.208.${(i >> 8) & 255}.${i & 255}`;
    b.packet(ethernet(ipPacket('udp', { src, dst: '10.208.255.2', sport: 40000 + (i % 1000), dport: 9000 + (i % 4), payload: Buffer.alloc(300, 2) })));
  }
  return b.build();
}

function feed(a: Analyzer, buf: Buffer): void {
  const push = a.stream();
  for (const block of parseBuffer(buf)) push(block);
}

describe('filtered flow queries', () => {
  it('answer exactly like the predicate over every resolved flow, as flows are added and grow', async () => {
    const file = join(tmp, 'a.pcapng');
    writeFileSync(file, capture(0, 600, 1_700_000_000_000));
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'store')) });
    const s = await svc.openFile({ path: file });
    const { analyzer } = await svc.load(s.id);
    const filters = ['tls && !tls.client', 'process', 'dst.port == 443', 'port in {9001 9002} && ip == 10.208.1.0/24', 'bytes > 250', 'transport == "udp" && packets >= 2', 'tls.sni contains "o"', 'port != 443 && src.port in {40100..40300 40555}', '!(dst.port > 9001)', 'transport == "tcp" || transport matches "^U" && bytes < 100', 'transport != "udp"', 'transport contains "cp"', 'transport in {"udp" "sctp"}'];
    const check = async (): Promise<void> => {
      // why: query before anything resolves every flow, so a filter on verdicts/processes that skipped
      // resolving would answer from stale flows and differ
      const firstPages = new Map<string, { total: number; ids: string[] }>();
      for (const filter of filters) {
        const got = await svc.queryFlows({ sessionId: s.id, filter, offset: 0, limit: 10_000 });
        firstPages.set(filter, { total: got.total, ids: got.rows.map((f) => f.id) });
      }
      const all = analyzer.flows();
      for (const filter of filters) {
        const want = all.filter(compileFilter(filter)).map((f) => f.id);
        expect(firstPages.get(filter), filter).toEqual({ total: want.length, ids: want });
        for (const [offset, limit] of [[0, 50], [50, 1000], [want.length - 3, 10]] as const) {
          const got = await svc.queryFlows({ sessionId: s.id, filter, offset: Math.max(0, offset), limit });
          expect(got.total, filter).toBe(want.length);
          expect(got.rows.map((f) => f.id), `${filter} @${offset}`).toEqual(want.slice(Math.max(0, offset), Math.max(0, offset) + limit));
        }
        const desc = await svc.queryFlows({ sessionId: s.id, filter, offset: 0, limit: 5, sort: { field: 'bytes', dir: 'desc' } });
        expect(desc.total, filter).toBe(want.length);
      }
    };
    await check();
    // new flows after the first scan: a stable filter tests only these
    feed(analyzer, capture(600, 900, 1_700_000_100_000));
    await check();
    // existing flows grow: filters on bytes/packets must re-test them
    feed(analyzer, more(0, 400, 1_700_000_200_000));
    const grown = await svc.queryFlows({ sessionId: s.id, filter: 'transport == "udp" && packets >= 2', offset: 0, limit: 1 });
    expect(grown.total).toBeGreaterThan(0);
    await check();
    await svc.close();
  });
});
