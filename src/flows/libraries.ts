// The per-library breakdown of TLS flows: for each (library, side) how many flows and bytes, how many had
// their plaintext captured, and why the others did not (reasons counted without their per-flow numbers).
import type { Flow, LibraryBreakdownRow, TlsLibrary } from '../model/flow.js';
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
