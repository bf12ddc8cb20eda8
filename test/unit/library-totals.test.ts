// Each TLS library's flows counted once (libraryBreakdown's totals, and the `libraries` call the app's TLS libraries view makes):
// a flow with the library on both sides is one flow with its bytes once, as `tls.library == "X"` lists it, while the
// per-side rows (`tapscope libraries --json`) keep counting it on each side.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libraryBreakdown } from '../../src/flows/libraries.js';
import type { Flow, TlsSideVerdict } from '../../src/model/flow.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsc-libtotals-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

function side(library: string, plaintext: boolean): TlsSideVerdict {
  return { library, via: 'hook', confidence: 1, plaintext, reason: plaintext ? null : 'no hook', version: null } as TlsSideVerdict;
}

function flow(bytes: number, client: TlsSideVerdict | null, server: TlsSideVerdict | null): Flow {
  return { bytes, tls: { client, server } } as unknown as Flow;
}

describe('libraryBreakdown: the totals', () => {
  it.each([
    {
      name: 'the same library on both sides: one flow, its bytes once',
      flows: [flow(100, side('openssl', true), side('openssl', true))],
      libraries: [{ library: 'openssl', flows: 1, bytes: 100, plaintextFlows: 1 }], all: [1, 1],
    },
    {
      name: 'two libraries on one flow: the flow is each library\'s, and one TLS flow in all',
      flows: [flow(100, side('openssl', false), side('go-crypto-tls', true))],
      libraries: [{ library: 'go-crypto-tls', flows: 1, bytes: 100, plaintextFlows: 1 }, { library: 'openssl', flows: 1, bytes: 100, plaintextFlows: 0 }],
      all: [1, 1],
    },
    {
      name: 'plaintext counts for a library only on a side it made',
      flows: [flow(10, side('openssl', false), side('openssl', true)), flow(20, side('openssl', false), null), flow(30, null, side('openssl', false))],
      libraries: [{ library: 'openssl', flows: 3, bytes: 60, plaintextFlows: 1 }], all: [3, 1],
    },
    {
      name: 'a flow with no TLS, or no library on either side, is no library\'s',
      flows: [flow(10, null, null), { bytes: 5, tls: null } as unknown as Flow, flow(7, side('gnutls', false), null)],
      libraries: [{ library: 'gnutls', flows: 1, bytes: 7, plaintextFlows: 0 }], all: [1, 0],
    },
  ])('$name', ({ flows, libraries, all }) => {
    const t = libraryBreakdown(flows);
    expect(t.libraries).toEqual(libraries);
    expect([t.flows, t.plaintextFlows]).toEqual(all);
  });

  it('keeps the per-side rows counting a both-sides flow on each side', () => {
    const flows = [flow(100, side('openssl', true), side('openssl', true))];
    const b = libraryBreakdown(flows);
    expect(b.sides.map((r) => [r.side, r.flows, r.bytes])).toEqual([['client', 1, 100], ['server', 1, 100]]);
    expect(b.libraries.map((t) => [t.flows, t.bytes])).toEqual([[1, 100]]);
  });
});

describe('the libraries call', () => {
  it('gives per library the flows and bytes its filter lists, and the sides as `tapscope libraries` does', async () => {
    // (curl to node over loopback, both ends hooked: openssl on both sides of most flows)
    const svc = new CoreService({ store: new SessionStore(join(tmp, 'store')) });
    try {
      const s = await svc.openFile({ path: join(FIX, 'ebpf-lo-hooks.pcapng') });
      const got = await svc.libraries({ sessionId: s.id });
      expect(got.libraries.map((t) => t.library)).toEqual(['openssl', 'gnutls']);
      for (const t of got.libraries) {
        const listed = (await svc.queryFlows({ sessionId: s.id, filter: `tls.library == "${t.library}"`, offset: 0, limit: 10_000 })).rows;
        expect(t, t.library).toEqual({
          library: t.library,
          flows: listed.length,
          bytes: listed.reduce((n, f) => n + f.bytes, 0),
          plaintextFlows: listed.filter((f) => [f.tls!.client, f.tls!.server].some((v) => v?.library === t.library && v.plaintext)).length,
        });
      }
      // (the openssl flows: 8, of which 7 have openssl on both sides; the sides sum to 15, more than the flows)
      expect(got.libraries[0]).toMatchObject({ flows: 8, bytes: 32022, plaintextFlows: 7 });
      expect(got.sides.filter((r) => r.library === 'openssl').map((r) => [r.side, r.flows])).toEqual([['server', 8], ['client', 7]]);
      const all = (await svc.queryFlows({ sessionId: s.id, filter: 'tls.library', offset: 0, limit: 10_000 })).rows;
      expect([got.flows, got.plaintextFlows]).toEqual([all.length, all.filter((f) => f.tls!.client?.plaintext || f.tls!.server?.plaintext).length]);
      expect(got.sides).toEqual(libraryBreakdown((await svc.queryFlows({ sessionId: s.id, filter: 'tls', offset: 0, limit: 10_000 })).rows).sides);
    } finally {
      await svc.close();
    }
  });
});
