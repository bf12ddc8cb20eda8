// IP address and CIDR matching for the filter language. IPv4 is a uint32, IPv6 a bigint; IPv4-mapped
// IPv6 addresses (::ffff:a.b.c.d) compare as IPv4. Parsed flow addresses are memoised because the same
// few addresses repeat across a million flows.
import { isIPv4, isIPv6 } from 'node:net';

export type ParsedIp = { v: 4; n: number } | { v: 6; n: bigint };
/** Tests an address given as text (the form flows carry). */
export type IpMatcher = (ip: string) => boolean;

const cache = new Map<string, ParsedIp | null>();
const CACHE_MAX = 1 << 16;

function v4(s: string): number {
  const p = s.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

function v6(s: string): bigint {
  let text = s;
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const maybeV4 = text.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    const n = v4(maybeV4);
    tail = [n >>> 16, n & 0xffff];
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const groups = [...h, ...Array<string>(fill).fill('0'), ...r].map((g) => parseInt(g, 16));
  if (tail.length === 2) {
    groups[6] = tail[0]!;
    groups[7] = tail[1]!;
  }
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(g);
  return n;
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** Dotted-quad fast path (no regex, no allocation); null if `s` is not exactly a.b.c.d. */
function quickV4(s: string): number | null {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return null;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return null;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return n * 256 + part;
}

function parseUncached(s: string): ParsedIp | null {
  const q = quickV4(s);
  if (q !== null) return { v: 4, n: q };
  if (isIPv4(s)) return { v: 4, n: v4(s) };
  if (isIPv6(s)) {
    const n = v6(s);
    if (n >> 32n === 0xffffn) return { v: 4, n: Number(n - MAPPED_PREFIX) };
    return { v: 6, n };
  }
  return null;
}

export function parseIp(s: string): ParsedIp | null {
  let r = cache.get(s);
  if (r !== undefined) return r;
  r = parseUncached(s);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(s, r);
  return r;
}

/** "10.0.0.1", "10.0.0.0/8", "fe80::1", "fe80::/10" -> matcher, or null if not an address. */
export function parseIpOrCidr(text: string): IpMatcher | null {
  const slash = text.indexOf('/');
  const addr = parseUncached(slash < 0 ? text : text.slice(0, slash));
  if (!addr) return null;
  let bits = addr.v === 4 ? 32 : 128;
  if (slash >= 0) {
    const bitsText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bitsText)) return null;
    bits = Number(bitsText);
    // an IPv4-mapped network written in IPv6 form keeps its meaning for IPv4 addresses
    if (addr.v === 4 && text.includes(':')) bits -= 96;
  }
  if (addr.v === 4) {
    if (bits < 0 || bits > 32) return null;
    // why: JS shifts are mod 32, so /0 cannot be built by shifting; it matches every IPv4 address
    const shift = 32 - bits;
    const base = bits === 0 ? 0 : addr.n >>> shift;
    const test = (n: number): boolean => bits === 0 || n >>> shift === base;
    return (s) => {
      // hot path: plain dotted quads need neither allocation nor the memo
      const q = quickV4(s);
      if (q !== null) return test(q);
      const ip = parseIp(s);
      return ip !== null && ip.v === 4 && test(ip.n);
    };
  }
  if (bits < 0 || bits > 128) return null;
  const shift = BigInt(128 - bits);
  const base = addr.n >> shift;
  return (s) => {
    const ip = parseIp(s);
    return ip !== null && ip.v === 6 && ip.n >> shift === base;
  };
}
