// Short latin1 strings decoded from packet bytes, shared. Header names and most values, ALPN names and
// server names repeat across messages and flows (and flows keep them): one string each instead of one per
// message keeps the per-flow heap, and the garbage collector's work, smaller. Looked up by the bytes
// themselves (a hash, then a compare), so a known string costs no decoding and no allocation.

const SLOTS = 4096;
const SHARED_LEN = 64;
// why: a direct-mapped table, not a Map: a lookup needs no string, and a collision only costs a fresh copy
const SHARED: (string | undefined)[] = new Array<string | undefined>(SLOTS);

/** buf[start, end) as latin1 text; a short one is the one shared copy (a fresh flat string, never a slice). */
export function sharedLatin1(buf: Buffer, start: number, end: number): string {
  if (end - start > SHARED_LEN) return buf.toString('latin1', start, end);
  let h = end - start;
  for (let i = start; i < end; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  const slot = (h ^ (h >>> 13)) & (SLOTS - 1);
  const known = SHARED[slot];
  if (known !== undefined && sameLatin1(known, buf, start, end)) return known;
  const own = buf.toString('latin1', start, end);
  SHARED[slot] = own;
  return own;
}

function sameLatin1(s: string, buf: Buffer, start: number, end: number): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}
