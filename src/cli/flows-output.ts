// Text output of flows: the table renderer and one flow's row (shared by the one-thread and the threaded
// `tapscope flows`).
import type { Flow } from '../model/flow.js';

export const FLOW_HEADERS = ['TIME', 'PROTO', 'CLIENT', 'SERVER', 'APP', 'SNI/HOST', 'PKTS', 'BYTES', 'PROCESS', 'HTTP', 'TLS CLIENT'];
export const FLOW_WIDTHS = [12, 5, 46, 46, 7, 40, 8, 8, 24, 9, 120];

export function table(headers: string[], rows: string[][], maxWidths: number[] = []): string {
  // why: a loop, not Math.max(...column): spreading a million rows overflows the call stack
  const widths = headers.map((h) => h.length);
  for (const r of rows) {
    for (let i = 0; i < widths.length; i++) {
      const n = (r[i] ?? '').length;
      if (n > widths[i]!) widths[i] = n;
    }
  }
  for (let i = 0; i < widths.length; i++) widths[i] = Math.min(maxWidths[i] ?? 200, widths[i]!);
  const clip = (s: string, w: number): string => (s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s);
  const line = (cells: string[]): string => cells.map((c, i) => {
    const w = widths[i] ?? 0;
    const v = clip(c, w);
    return i === cells.length - 1 ? v : v.padEnd(w);
  }).join('  ').trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

export function human(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}K`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)}M`;
  return `${(n / 1024 ** 3).toFixed(2)}G`;
}

function endpoint(e: { ip: string; port: number }): string {
  return e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

export function flowRow(f: Flow): string[] {
  const v = f.tls?.client;
  const tlsCol = f.tls
    ? `${v?.library ?? '?'}/${v?.via ?? '?'} ${v?.plaintext ? 'plaintext' : 'encrypted'}${!v?.plaintext && v?.reason ? ` (${v.reason})` : ''}`
    : '';
  const what = f.tls?.sni ?? f.http[0]?.host ?? f.dns?.[0]?.query ?? '';
  const proc = f.process ? `${f.process.comm}(${f.process.pid})` : '';
  return [
    new Date(f.firstSeen).toISOString().slice(11, 23), f.transport, endpoint(f.src), endpoint(f.dst), f.app, what, String(f.packets), human(f.bytes), proc,
    f.http.length ? `${f.http.length} http` : '', tlsCol,
  ];
}
