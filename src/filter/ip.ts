// IP address and CIDR matching for the filter language. IPv4 is a uint32, IPv6 a bigint; IPv4-mapped
// IPv6 addresses (::ffff:a.b.c.d) compare as IPv4. Parsed flow addresses are memoised because the same
// few addresses repeat across a million flows.
import { isIPv4, isIPv6 } from 'node:net';

export type ParsedIp = { v: 4; n: number } | { v: 6; n: bigint };
export type IpMatcher = (ip: ParsedIp) => boolean;

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

function parseUncached(s: string): ParsedIp | null {
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
  if (slash < 0) return addr.v === 4 ? (ip) => ip.v === 4 && ip.n === addr.n : (ip) => ip.v === 6 && ip.n === addr.n;
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return null;
  let bits = Number(bitsText);
  // an IPv4-mapped network written in IPv6 form keeps its meaning for IPv4 addresses
  const mapped = addr.v === 4 && slash >= 0 && text.includes(':');
  if (mapped) bits -= 96;
  if (addr.v === 4) {
    if (bits < 0 || bits > 32) return null;
    if (bits === 0) return (ip) => ip.v === 4;
    const shift = 32 - bits;
    // why: JS shifts are mod 32, so a /0 mask cannot be built by shifting; it is handled above
    const base = addr.n >>> shift;
    return (ip) => ip.v === 4 && ip.n >>> shift === base;
  }
  if (bits < 0 || bits > 128) return null;
  const shift = BigInt(128 - bits);
  const base = addr.n >> shift;
  return (ip) => ip.v === 6 && ip.n >> shift === base;
}
