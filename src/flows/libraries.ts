// The per-library breakdown of TLS flows: for each (library, side) how many flows and bytes, how many had
// their plaintext captured, and why the others did not (reasons counted without their per-flow numbers); and for
// each library its flows counted once, whichever side(s) it is on.
import type { Flow, LibraryBreakdownRow, LibraryTotal, LibraryTotals, TlsLibrary } from '../model/flow.js';
import { reasonGroup } from '../verdict/index.js';

export function libraryBreakdown(flows: Iterable<Flow>): LibraryBreakdownRow[] {
  const rows = new Map<string, LibraryBreakdownRow>();
  for (const f of flows) {
    if (!f.tls) continue;
    for (const side of ['client', 'server'] as const) {
      const v = f.tls[side];
      if (!v) continue;
      const key = `${v.library}|${side}`;
      let row = rows.get(key);
      if (!row) {
        row = { library: v.library as TlsLibrary, side, flows: 0, bytes: 0, plaintextFlows: 0, reasons: {} };
        rows.set(key, row);
      }
      row.flows++;
      row.bytes += f.bytes;
      if (v.plaintext) row.plaintextFlows++;
      else if (v.reason) {
        const reason = reasonGroup(v.reason);
        row.reasons![reason] = (row.reasons![reason] ?? 0) + 1;
      }
    }
  }
  return [...rows.values()].sort((a, b) => b.flows - a.flows || a.library.localeCompare(b.library) || a.side.localeCompare(b.side));
}

/**
 * Per library, the flows with it on either side and their bytes, each flow once: a flow whose client and server both
 * use the library is one flow, as `tls.library == "X"` lists it (the per-side rows above count it on both sides, and
 * cannot be summed into this).
 */
export function libraryTotals(flows: Iterable<Flow>): LibraryTotals {
  const by = new Map<TlsLibrary, LibraryTotal>();
  let all = 0;
  let allPlaintext = 0;
  for (const f of flows) {
    const sides = [f.tls?.client, f.tls?.server].filter((v) => v != null);
    if (sides.length === 0) continue;
    all++;
    if (sides.some((v) => v.plaintext)) allPlaintext++;
    for (const library of new Set(sides.map((v) => v.library))) {
      let t = by.get(library);
      if (!t) {
        t = { library, flows: 0, bytes: 0, plaintextFlows: 0 };
        by.set(library, t);
      }
      t.flows++;
      t.bytes += f.bytes;
      if (sides.some((v) => v.library === library && v.plaintext)) t.plaintextFlows++;
    }
  }
  const libraries = [...by.values()].sort((a, b) => b.flows - a.flows || a.library.localeCompare(b.library));
  return { libraries, flows: all, plaintextFlows: allPlaintext };
}
