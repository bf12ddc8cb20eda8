// Small formatters shared by the views: sizes, counts, times, endpoints.
import type { Endpoint } from '../../../src/model/flow.js';
import { endpointText } from '../../../src/util/ip.js';
import { localClock, localDateTime } from '../../../src/util/time-text.js';
import { printable } from '../../../src/util/printable.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** The local time of day, HH:MM:SS.mmm (as the CLI's flows table gives it). */
export const formatTime: (ms: number) => string = localClock;

/** The local date and time to the minute, YYYY-MM-DD HH:MM. */
export function formatDateTime(ms: number): string {
  return localDateTime(ms).slice(0, 16);
}

export const formatEndpoint: (e: Endpoint) => string = endpointText;

/**
 * Text from the wire or a node (a host, path, header, body, SNI, process or pod name, a note) as the views show
 * it: its control characters and bidirectional overrides as escapes (see printable), so a peer cannot make it read as
 * something else (an override reversing a host name's tail) or hide bytes in it. `block`: a body, keeping its line
 * breaks and tabs.
 */
export function wire(s: string | null | undefined, block = false): string {
  return s == null ? '' : printable(s, block ? 'layout' : 'none');
}

/** Pretty-prints a body when it is JSON; returns null otherwise. */
export function prettyJson(body: string | null): string | null {
  if (!body) return null;
  const t = body.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return null;
  }
}

export { hexLines } from '../../../src/model/stream-text.js';
