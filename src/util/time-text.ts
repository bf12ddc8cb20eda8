// Times as text without a Date per call where it counts: the flows table's (the CLI), the app's rows and sessions.

const DAY_MS = 86_400_000;

/**
 * The UTC time of day of `ms` as HH:MM:SS.mmm: what new Date(ms).toISOString().slice(11, 23) gives for the
 * years 0 to 9999 (milliseconds truncated toward zero, days counted from the epoch down for times before it),
 * without a Date object and an ISO string per row.
 */
export function clock(ms: number): string {
  const t = Math.trunc(ms);
  const d = ((t % DAY_MS) + DAY_MS) % DAY_MS;
  const h = Math.floor(d / 3_600_000);
  const m = Math.floor(d / 60_000) % 60;
  const sec = Math.floor(d / 1000) % 60;
  const milli = d % 1000;
  return `${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}:${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}`;
}

let zoneSlot = NaN;
let zoneOffsetMs = 0;

/**
 * The local time of day of `ms` as HH:MM:SS.mmm, as tcpdump and Wireshark show a packet's time and the app its flows'
 * (the time zone's offset looked up once per quarter hour of timestamps, not a Date per row: offsets change on
 * quarter hours).
 */
export function localClock(ms: number): string {
  const slot = Math.floor(ms / 900_000);
  if (slot !== zoneSlot) {
    zoneSlot = slot;
    zoneOffsetMs = -new Date(ms).getTimezoneOffset() * 60_000;
  }
  return clock(ms + zoneOffsetMs);
}

/** The local date and time of `ms` as YYYY-MM-DD HH:MM:SS. */
export function localDateTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
