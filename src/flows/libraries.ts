// The per-library breakdown of TLS flows: for each (library, side) how many flows and bytes, how many had
// their plaintext captured, and why the others did not (reasons counted without their per-flow numbers); and for
// each library its flows counted once, whichever side(s) it is on.
import type { LibraryBreakdown } from '../api/contract.js';
import type { Flow, LibraryBreakdownRow, LibraryTotal, TlsLibrary } from '../model/flow.js';
import { reasonGroup } from '../verdict/index.js';

/**
 * The flows' libraries, in one pass: per library and side (`sides`); and per library, the flows with it on either side
 * and their bytes, each flow once (`libraries`): a flow whose client and server both use the library is one flow, as
 * `tls.library == "X"` lists it (the per-side rows count it on both sides, and cannot be summed into this).
 */
export function libraryBreakdown(flows: Iterable<Flow>): LibraryBreakdown {
  const rows = new Map<string, LibraryBreakdownRow>();
  const by = new Map<TlsLibrary, LibraryTotal>();
  let all = 0;
  let allPlaintext = 0;
  for (const f of flows) {
    const client = f.tls?.client ?? null;
    const server = f.tls?.server ?? null;
    if (!client && !server) continue;
    all++;
    if (client?.plaintext || server?.plaintext) allPlaintext++;
    for (const side of ['client', 'server'] as const) {
      const v = side === 'client' ? client : server;
      if (!v) continue;
      const key = `${v.library}|${side}`;
      let row = rows.get(key);
      if (!row) {
        row = { library: v.library, side, flows: 0, bytes: 0, plaintextFlows: 0, reasons: {} };
        rows.set(key, row);
      }
      row.flows++;
      row.bytes += f.bytes;
      if (v.plaintext) row.plaintextFlows++;
      else if (v.reason) {
        const reason = reasonGroup(v.reason);
        row.reasons![reason] = (row.reasons![reason] ?? 0) + 1;
      }
      // (the server's library is counted with the client's when it is the same: once, plaintext on either side)
      if (side === 'server' && v.library === client?.library) continue;
      let t = by.get(v.library);
      if (!t) {
        t = { library: v.library, flows: 0, bytes: 0, plaintextFlows: 0 };
        by.set(v.library, t);
      }
      t.flows++;
      t.bytes += f.bytes;
      if (v.plaintext || (side === 'client' && server?.library === v.library && server.plaintext)) t.plaintextFlows++;
    }
  }
  return {
    sides: [...rows.values()].sort((a, b) => b.flows - a.flows || a.library.localeCompare(b.library) || a.side.localeCompare(b.side)),
    libraries: [...by.values()].sort((a, b) => b.flows - a.flows || a.library.localeCompare(b.library)),
    flows: all,
    plaintextFlows: allPlaintext,
  };
}
