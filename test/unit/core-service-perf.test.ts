// CoreService query cost at many flows: the first page in arrival order (firstSeen ascending) must not sort
// or resolve every flow, other orders are cached until the flows change, and libraries() is cached per
// session version; a filter on always-current fields pages over unresolved flows (ports from typed columns)
// and caches its matches. Prints the figures; gates only on ratios against the old full resolve + sort done in
// the same test on the same flows (CORE_PERF_FLOWS sets the count, default 100k; 1M needs ~4 GB of heap).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SessionStore } from '../../src/store/session-store.js';
import { CoreService } from '../../src/service/core-service.js';
import { libraryBreakdown } from '../../src/flows/libraries.js';
import { analyzeFiles } from '../../src/flows/load.js';
import { compileFilter } from '../../src/filter/index.js';
import { CaptureBuilder, ethernet, fixtureClientHello, ipPacket } from './core-packet-builder.js';
import type { Flow } from '../../src/model/flow.js';

const N = Number(process.env.CORE_PERF_FLOWS ?? 100_000);
const HELLO = fixtureClientHello();
let tmp: string;

beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsc-perf-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** N one-packet flows in arrival order: every tenth a TLS ClientHello, the rest UDP datagrams. */
function bigCapture(n: number, shuffleTs = false): Buffer {
  const b = new CaptureBuilder();
  b.record({ t: 'capture', v: 1, mode: 'ebpf', reason: 'auto: test', hostname: 'perf' });
  for (let i = 0; i < n; i++) {
    const src = `10.207.${(i >> 16) & 255}.${(i >> 8) & 255}`;
    const sport = 1024 + (i & 255) * 200 + (i % 7);
    if (shuffleTs) b.ts = 1_732_620_000_000 + ((i * 7919) % n) * 3;
    const payload = Buffer.alloc(20 + (i % 13) * 10, i & 255);
    if (i % 10 === 0) b.packet(ethernet(ipPacket('tcp', { src, dst: '10.207.255.1', sport, dport: 443, seq: 1, flags: 0x18, payload: HELLO })));
    else b.packet(ethernet(ipPacket('udp', { src, dst: '10.207.255.2', sport, dport: 9000 + (i % 5), payload })));
  }
  return b.build();
}


/** Best of three runs of a repeatable (cached or cache-free) call: one GC pause or a busy neighbour on a
 *  shared machine must not decide a ratio of a few milliseconds. */
async function bestOf3<T>(call: () => Promise<T>): Promise<{ result: T; ms: number }> {
  let best = Infinity;
  let result!: T;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    result = await call();
    best = Math.min(best, ms(t0));
  }
  return { result, ms: best };
}

function ms(t0: number): number {
  return Math.round((performance.now() - t0) * 10) / 10;
}

describe('CoreService at many flows', () => {
  it('pages in arrival order without sorting, caches other orders and the library breakdown', async () => {
    const file = join(tmp, 'big.pcapng');
    writeFileSync(file, bigCapture(N));
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'store')) });
    let t0 = performance.now();
    const s = await svc.openFile({ path: file });
    const loadMs = ms(t0);
    expect(s.flows).toBe(N);

    const { result: first, ms: firstMs } = await bestOf3(() => svc.queryFlows({ sessionId: s.id, offset: 0, limit: 200 }));
    const { result: deep, ms: deepMs } = await bestOf3(() => svc.queryFlows({ sessionId: s.id, offset: N - 100, limit: 200 }));

    // the old path, on a second analysis of the same file (nothing resolved yet): resolve every flow, copy, sort
    const fresh = (await analyzeFiles([{ path: file }])).analyzer;
    t0 = performance.now();
    const old = fresh.flows().slice().sort((a, b) => (a.firstSeen - b.firstSeen) || (a.id < b.id ? -1 : 1));
    const oldMs = ms(t0);
    expect(first.total).toBe(N);
    expect(first.rows.map((f) => f.id)).toEqual(old.slice(0, 200).map((f) => f.id));
    expect(deep.rows.map((f) => f.id)).toEqual(old.slice(N - 100).map((f) => f.id));
    expect(first.rows[0]!.tls?.client).not.toBeNull();

    t0 = performance.now();
    const byBytes = await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 200, sort: { field: 'bytes', dir: 'desc' } });
    const bytesColdMs = ms(t0);
    const { result: byBytes2, ms: bytesWarmMs } = await bestOf3(() => svc.queryFlows({ sessionId: s.id, offset: 200, limit: 200, sort: { field: 'bytes', dir: 'desc' } }));
    const maxBytes = old.reduce((m, f) => Math.max(m, f.bytes), 0);
    expect(byBytes.rows[0]!.bytes).toBe(maxBytes);
    expect(byBytes2.rows[0]!.bytes).toBeLessThanOrEqual(byBytes.rows[199]!.bytes);

    // the old libraries(): every flow brought up to date (already resolved: a walk) and broken down
    t0 = performance.now();
    const oldLibs = libraryBreakdown(fresh.flows());
    const oldLibsMs = ms(t0);
    t0 = performance.now();
    const libs = await svc.libraries({ sessionId: s.id });
    const libsColdMs = ms(t0);
    const { result: libs2, ms: libsWarmMs } = await bestOf3(() => svc.libraries({ sessionId: s.id }));
    expect(libs).toEqual(oldLibs);
    expect(libs2).toEqual(oldLibs);
    expect(libs.sides.reduce((n, r) => n + r.flows, 0)).toBe(2 * Math.ceil(N / 10));

    // filtered queries: the first page, the next page and the exact total, against the old path (every flow
    // brought up to date, then the predicate over all of them) on the second analysis of the same flows
    const sni = first.rows[0]!.tls!.sni ?? 'x';
    const filterFigures: string[] = [];
    const filterRatios: { expr: string; firstMs: number; nextMs: number; oldMs: number }[] = [];
    for (const expr of [`tls.sni contains "${sni.slice(1, 3)}"`, 'dst.port == 443', 'transport == "udp" && bytes > 100']) {
      // why: best of three for both paths, so one GC pause or a busy neighbour on a shared machine does not
      // decide a ratio of a few milliseconds; each new-path try is cold (extra parentheses make a new cache key)
      let oldFilterMs = Infinity;
      let want: Flow[] = [];
      let coldMs = Infinity;
      let page1 = { total: 0, rows: [] as Flow[] };
      for (let attempt = 0; attempt < 3; attempt++) {
        t0 = performance.now();
        want = fresh.flows().filter(compileFilter(expr));
        oldFilterMs = Math.min(oldFilterMs, ms(t0));
        t0 = performance.now();
        page1 = await svc.queryFlows({ sessionId: s.id, filter: `${'('.repeat(attempt)}${expr}${')'.repeat(attempt)}`, offset: 0, limit: 200 });
        coldMs = Math.min(coldMs, ms(t0));
      }
      const { result: page2, ms: warmMs } = await bestOf3(() => svc.queryFlows({ sessionId: s.id, filter: expr, offset: 200, limit: 200 }));
      expect(want.length).toBeGreaterThan(0);
      expect(page1.total).toBe(want.length);
      expect(page2.total).toBe(want.length);
      expect(page1.rows.map((f) => f.id)).toEqual(want.slice(0, 200).map((f) => f.id));
      expect(page2.rows.map((f) => f.id)).toEqual(want.slice(200, 400).map((f) => f.id));
      filterFigures.push(`[${expr}] matches=${want.length} old=${oldFilterMs}ms firstPage=${coldMs}ms nextPage=${warmMs}ms`);
      filterRatios.push({ expr, firstMs: coldMs, nextMs: warmMs, oldMs: oldFilterMs });
    }

    const filtered = await svc.queryFlows({ sessionId: s.id, filter: 'tls', offset: 0, limit: 5 });
    expect(filtered.total).toBe(Math.ceil(N / 10));
    expect(filtered.rows.map((f) => f.id)).toEqual(old.filter((f) => f.tls).slice(0, 5).map((f) => f.id));

    console.log(`[core-service-perf] flows=${N} load=${loadMs}ms firstPage=${firstMs}ms deepPage=${deepMs}ms `
      + `oldResolveAndSort=${oldMs}ms bytesSortCold=${bytesColdMs}ms bytesSortWarm=${bytesWarmMs}ms `
      + `librariesOld=${oldLibsMs}ms librariesCold=${libsColdMs}ms librariesWarm=${libsWarmMs}ms`);
    for (const line of filterFigures) console.log(`[core-service-perf] filter ${line}`);
    // why: ratios against the old path on the same flows in the same process, never absolute times
    expect(firstMs).toBeLessThan(oldMs / 5);
    expect(deepMs).toBeLessThan(oldMs / 5);
    expect(bytesWarmMs).toBeLessThan(oldMs / 5);
    expect(libsWarmMs).toBeLessThan(oldLibsMs / 5 + 1);
    for (const r of filterRatios) {
      // why: the next page and the total come from the cached matches, never from another scan
      expect(r.nextMs, r.expr).toBeLessThan(r.oldMs / 5 + 1);
      // a port filter reads the analyzer's port columns, not a million Flow objects
      if (r.expr.startsWith('dst.port')) expect(r.firstMs, r.expr).toBeLessThan(r.oldMs / 2 + 2);
    }
    await svc.close();
  }, 120_000);

  it('sorts by firstSeen when packets did not arrive in time order', async () => {
    const file = join(tmp, 'shuffled.pcapng');
    writeFileSync(file, bigCapture(500, true));
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'store2')) });
    const s = await svc.openFile({ path: file });
    const asc = await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 10_000 });
    const desc = await svc.queryFlows({ sessionId: s.id, offset: 0, limit: 10_000, sort: { field: 'firstSeen', dir: 'desc' } });
    const ts = (rows: Flow[]) => rows.map((f) => f.firstSeen);
    expect(ts(asc.rows)).toEqual(ts(asc.rows).slice().sort((a, b) => a - b));
    expect(ts(desc.rows)).toEqual(ts(asc.rows).slice().reverse());
    expect(asc.total).toBe(500);
    await svc.close();
  });
});
