// Per-library bars for the TLS libraries chart, merged from the core's per-side breakdown rows.
import type { LibraryBreakdownRow, TlsLibrary } from '../../../src/model/flow.js';

export interface LibraryBar {
  library: TlsLibrary;
  flows: number;
  bytes: number;
  plaintextFlows: number;
  sides: ('client' | 'server')[];
  reasons: [string, number][];
}

/** Merges the client/server rows of each library, biggest first. */
export function mergeRows(rows: LibraryBreakdownRow[]): LibraryBar[] {
  const by = new Map<TlsLibrary, LibraryBar & { reasonMap: Map<string, number> }>();
  for (const r of rows) {
    let b = by.get(r.library);
    if (!b) {
      b = { library: r.library, flows: 0, bytes: 0, plaintextFlows: 0, sides: [], reasons: [], reasonMap: new Map() };
      by.set(r.library, b);
    }
    b.flows += r.flows;
    b.bytes += r.bytes;
    b.plaintextFlows += r.plaintextFlows;
    if (!b.sides.includes(r.side)) b.sides.push(r.side);
    for (const [reason, n] of Object.entries(r.reasons ?? {})) b.reasonMap.set(reason, (b.reasonMap.get(reason) ?? 0) + n);
  }
  return [...by.values()]
    .map(({ reasonMap, ...b }) => ({ ...b, reasons: [...reasonMap.entries()].sort((x, y) => y[1] - x[1]) }))
    .sort((a, b) => b.flows - a.flows || a.library.localeCompare(b.library));
}

/** The flow filter that selects one library's flows (the core's filter language). */
export function libraryFilter(library: TlsLibrary): string {
  return `tls.library == "${library}"`;
}
