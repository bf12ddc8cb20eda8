// Display strings of one flow-table row, computed once per Flow object and memoized, so scrolling and
// page arrivals re-render rows by comparing strings instead of re-formatting times, endpoints and verdicts.
import { flowTarget } from '../../../src/model/flow-target.js';
import type { Flow, TlsSideVerdict } from '../../../src/model/flow.js';
import { formatBytes, formatEndpoint, formatTime, wire } from './format.js';
import { failedConnection, tcpStateText } from '../../../src/model/tcp-state.js';

export interface RowTls {
  /** the client's library, else the server's */
  library: string;
  /** the exchange's plaintext was captured, on either side */
  plaintext: boolean;
  /** plaintext captured only on the side whose library is not the one shown (e.g. an un-hooked Java client talking to a hooked server) */
  otherSide: boolean;
  /** the plaintext came only from a key log (the packets decrypted with its secrets), no hook read it */
  keylog: boolean;
  /** SVG path of the lock or unlock icon (the Icon component's 16px grid). */
  icon: string;
}

export interface RowView {
  time: string;
  node: string;
  owner: string;
  src: string;
  dst: string;
  proto: string;
  host: string;
  tls: RowTls | null;
  /** Hover text of the TLS cell: a line per side, its library, how it was identified, and why no plaintext. */
  tlsTitle: string;
  bytes: string;
  /** a TCP connection that failed or was cut (refused, no reply, reset): its words and sentence; else null */
  conn: { text: string; title: string } | null;
}

const LOCK = 'M4.5 7.5h7v6h-7zM6 7.5V5.5a2 2 0 0 1 4 0v2';
const UNLOCK = 'M4.5 7.5h7v6h-7zM6 7.5V5.5a2 2 0 0 1 3.9-.6';

// why: rows come from a bounded page cache; a WeakMap lets evicted flows and their strings be collected together.
const memo = new WeakMap<Flow, RowView>();

export function rowView(f: Flow): RowView {
  let v = memo.get(f);
  if (!v) {
    v = build(f);
    memo.set(f, v);
  }
  return v;
}

const sideLine = (role: string, v: TlsSideVerdict): string =>
  `${role} ${v.library} (via ${v.via}, ${Math.round(v.confidence * 100)}%) — ${v.plaintext ? plaintextWords(v) : `no plaintext: ${v.reason ?? 'unknown reason'}`}`;

/** How a side's plaintext was captured: by its library's hook, or decrypted with a key log. */
export function plaintextWords(v: TlsSideVerdict): string {
  return v.plaintextFrom === 'keylog' ? 'plaintext decrypted with the key log' : 'plaintext captured by its hook';
}

const byHook = (v: TlsSideVerdict | null | undefined): boolean => !!v?.plaintext && v.plaintextFrom !== 'keylog';

function connView(tcp: NonNullable<Flow['tcp']>): { text: string; title: string } {
  const t = tcpStateText(tcp);
  // (a word that fits the protocol's column; who reset it is in the title)
  return tcp.state === 'reset' ? { text: 'reset', title: `${t.short}: ${t.long}` } : { text: t.short, title: t.long };
}

function build(f: Flow): RowView {
  const shown = f.tls ? (f.tls.client ?? f.tls.server) : null;
  const plaintext = !!f.tls && !!(f.tls.client?.plaintext || f.tls.server?.plaintext);
  const sides = f.tls ? [['client', f.tls.client], ['server', f.tls.server]] as const : [];
  const lines = sides.flatMap(([role, v]) => (v ? [sideLine(role, v)] : []));
  const tlsTitle = lines.length ? lines.join('\n') : f.tls ? 'TLS, library not identified' : 'not TLS';
  return {
    time: formatTime(f.firstSeen),
    // (text from the wire and the nodes with its control characters escaped: a bidirectional override in a host name
    // must not reorder what the row shows)
    node: wire(f.node),
    owner: wire(f.pod ? `${f.pod.namespace}/${f.pod.name}` : f.process ? `${f.process.comm} (${f.process.pid})` : '—'),
    src: formatEndpoint(f.src),
    dst: formatEndpoint(f.dst),
    proto: f.app === 'unknown' ? f.transport : f.app,
    host: wire(flowTarget(f)),
    tls: f.tls ? {
      library: shown?.library ?? 'unknown', plaintext, otherSide: plaintext && !shown?.plaintext, icon: plaintext ? UNLOCK : LOCK,
      keylog: plaintext && !byHook(f.tls.client) && !byHook(f.tls.server),
    } : null,
    tlsTitle,
    bytes: formatBytes(f.bytes),
    conn: failedConnection(f.tcp) ? connView(f.tcp) : null,
  };
}
