// Text output of flows: the table renderer and one flow's row (shared by the one-thread and the threaded
// `tapscope flows`).
import type { Flow } from '../model/flow.js';
import { failedConnection, tcpStateText } from '../model/tcp-state.js';
import { flowTarget, keyLogText } from '../model/flow-target.js';
import { endpointText } from '../util/ip.js';
import { localClock } from '../util/time-text.js';
import { printable } from '../util/printable.js';

export const FLOW_HEADERS = ['TIME', 'PROTO', 'CLIENT', 'SERVER', 'APP', 'SNI/HOST', 'PKTS', 'BYTES', 'PROCESS', 'HTTP', 'TLS CLIENT'];
// (APP: room for "unknown (reset by server)" when a connection failed; the others keep the column narrow)
export const FLOW_WIDTHS = [12, 5, 46, 46, 25, 40, 8, 8, 24, 9, 120];

/** A text table; its cells (text from the wire among them) are made printable (see printable) in place. */
export function table(headers: string[], rows: string[][], maxWidths: number[] = []): string {
  // why: a loop, not Math.max(...column): spreading a million rows overflows the call stack
  const widths = headers.map((h) => h.length);
  for (const r of rows) {
    for (let i = 0; i < r.length; i++) r[i] = printable(r[i]!);
    for (let i = 0; i < widths.length; i++) {
      const n = (r[i] ?? '').length;
      if (n > widths[i]!) widths[i] = n;
    }
  }
  for (let i = 0; i < widths.length; i++) widths[i] = Math.min(maxWidths[i] ?? 200, widths[i]!);
  // why: a loop into one string per row, not map/join/padEnd (four arrays or strings per cell on a million rows)
  const line = (cells: string[]): string => {
    let s = '';
    for (let i = 0; i < cells.length; i++) {
      const w = widths[i] ?? 0;
      const c = cells[i]!;
      const v = c.length > w ? `${c.slice(0, Math.max(0, w - 1))}…` : c;
      if (i > 0) s += '  ';
      s += v;
      if (i < cells.length - 1 && v.length < w) s += spaces(w - v.length);
    }
    return s.trimEnd();
  };
  const lines = new Array<string>(rows.length + 2);
  lines[0] = line(headers);
  for (let i = 0; i < rows.length; i++) lines[i + 1] = line(rows[i]!);
  lines[rows.length + 1] = '';
  return lines.join('\n');
}

const SPACES = ' '.repeat(256);

function spaces(n: number): string {
  return n <= SPACES.length ? SPACES.slice(0, n) : ' '.repeat(n);
}

export function human(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}K`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)}M`;
  return `${(n / 1024 ** 3).toFixed(2)}G`;
}

/** " (refused)", " (no reply)", " (reset by server)": a TCP connection that failed or was cut, after the app's name. */
function failedText(f: Flow): string {
  return failedConnection(f.tcp) ? ` (${tcpStateText(f.tcp).short})` : '';
}

export function flowRow(f: Flow): string[] {
  const v = f.tls?.client;
  const server = f.tls?.server;
  // (the exchange may still be readable: an un-hooked client talking to a hooked server)
  const peer = !v?.plaintext && server?.plaintext ? `; plaintext from the server's ${server.library} hook` : '';
  // (plaintext no hook gave: the key log's; a key log that failed says why, one with no secrets for the flow is the
  // usual case and says nothing)
  const keyLog = f.tls?.keylog;
  const plain = v?.plaintext ? (v.plaintextFrom === 'keylog' ? 'plaintext (key log)' : 'plaintext') : 'encrypted';
  const failed = keyLog?.status === 'failed' ? `; key log: ${keyLogText(keyLog)}` : '';
  const tlsCol = f.tls
    ? `${v?.library ?? '?'}/${v?.via ?? '?'} ${plain}${!v?.plaintext && v?.reason ? ` (${v.reason})` : ''}${peer}${failed}`
    : '';
  const what = flowTarget(f);
  const proc = f.process ? `${f.process.comm}(${f.process.pid})` : '';
  // (a load balancer's connection: the client its PROXY header names)
  const client = f.proxy?.src ? `${endpointText(f.src)} for ${endpointText(f.proxy.src)}` : endpointText(f.src);
  return [
    localClock(f.firstSeen), f.transport, client, endpointText(f.dst), f.app + failedText(f), what, String(f.packets), human(f.bytes), proc,
    f.http.length ? `${f.http.length} http` : '', tlsCol,
  ];
}

/** The filter again, with ^~~ under the token a filter error points at (its 1-based position), as tshark shows it. */
export function filterMark(details: Record<string, unknown> | undefined): string {
  const filter = details?.filter;
  const pos = details?.position;
  if (typeof filter !== 'string' || typeof pos !== 'number' || pos < 1 || filter.includes('\n')) return '';
  const token = typeof details?.token === 'string' ? details.token : '';
  // (the mark under the filter as a terminal shows it: a tab stays a tab, a character outside the BMP is one column)
  const before = Array.from(filter.slice(0, pos - 1), (c) => (c === '\t' ? '\t' : ' ')).join('');
  const at = filter.slice(pos - 1);
  let span = token.length;
  if (at[0] === '"' || at[0] === "'") {
    // (a string's token is its text unescaped: the mark spans it as written, quotes and escapes included)
    let j = 1;
    while (j < at.length && at[j] !== at[0]) j += at[j] === '\\' ? 2 : 1;
    span = j + 1;
  }
  // (an unterminated string's token is the rest of the filter: a line of marks is enough)
  const columns = Math.min(Array.from(at.slice(0, span)).length, MARK_MAX);
  return `  ${filter}\n  ${before}^${'~'.repeat(Math.max(0, columns - 1))}\n`;
}

const MARK_MAX = 120;
