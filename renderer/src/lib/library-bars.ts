// Per-library bars for the TLS libraries chart and table: each library's flows counted once (the core's totals), with
// its per-side rows beside them and the reasons plaintext was not captured, by side.
import type { LibraryBreakdown } from '../../../src/api/contract.js';
import type { LibraryBreakdownRow, TlsLibrary } from '../../../src/model/flow.js';

export interface LibraryBar {
  library: TlsLibrary;
  /** flows with this library on either side, each once, their bytes, and those with plaintext on its side(s) */
  flows: number;
  bytes: number;
  plaintextFlows: number;
  /** the library's client and server rows, as `tapscope libraries` lists them (a flow with it on both sides is in both) */
  sides: LibraryBreakdownRow[];
  /** why plaintext was not captured: side, reason, how many flows, most first */
  reasons: [LibraryBreakdownRow['side'], string, number][];
}

/** One bar per library, in the core's order (most flows first). */
export function libraryBars(breakdown: LibraryBreakdown | null): LibraryBar[] {
  if (!breakdown) return [];
  return breakdown.libraries.map((t) => {
    const sides = breakdown.sides.filter((r) => r.library === t.library).sort((a, b) => a.side.localeCompare(b.side));
    const reasons = sides
      .flatMap((r) => Object.entries(r.reasons ?? {}).map(([reason, n]): LibraryBar['reasons'][number] => [r.side, reason, n]))
      .sort((x, y) => y[2] - x[2]);
    return { ...t, sides, reasons };
  });
}

/** The flow filter that selects one library's flows (the core's filter language). */
export function libraryFilter(library: TlsLibrary): string {
  return `tls.library == "${library}"`;
}
