// The flow table's index: the value (flow) using each transport 5-tuple, per node. Both directions of a
// tuple find the same entry. Tuples are keyed by their numbers in open-addressing tables, IPv4 and IPv6 apart:
// no key string per packet, no string hashing, no Map growth (a million flows spent most of their load time in
// Map lookups of fresh key strings; IPv6 traffic, keyed by its address text, took twice as long as IPv4).
// Only endpoints that are not addresses (no such tuple comes from packets) are keyed by strings.
import { ipToBytes } from '../util/ip.js';
import { be32s } from '../pcapng/bytes.js';

/** A tuple's endpoints as the analyzer keys them: an IPv4 address as its 32-bit number (signed, see table), else the text. */
export type KeyIp = number | string;

/** Words per IPv4 slot: entry + 1 (0: empty), the canonical tuple (x, y, packed ports), the node/transport tag, the hash. */
const SLOT = 8;
/** Words per IPv6 slot (one 64-byte cache line): entry + 1, x (4 words), y (4 words), packed ports, tag, hash. */
const SLOT6 = 16;

export class TupleIndex<T> {
  private mask = (1 << 12) - 1;
  // why the keys in the slots: a lookup reads one slot (32 bytes, one cache line) instead of a slot and four
  // key columns; with many flows' packets interleaved every packet is a lookup, and each line was a cache miss.
  // Keys are int32 (IPv4 as DecodedPacket.src4 gives them, signed; ports packed with <<), so every value
  // read back stays a small integer.
  private table = new Int32Array((this.mask + 1) * SLOT);
  private count = 0;
  private mask6 = (1 << 8) - 1;
  private table6 = new Int32Array((this.mask6 + 1) * SLOT6);
  private count6 = 0;
  /** the hash find() or find6() computed last: a new entry's slot keeps it, so growing does not hash again */
  private lastHash = 0;
  /** an IPv6 tuple's two addresses (8 words, as given) while it is looked up */
  private readonly key6 = new Int32Array(8);
  private values: T[] = [];
  private readonly nodes = new Map<string, number>();
  private lastNode = '';
  private lastNodeTag = 0;
  private readonly other = new Map<string, T>();

  get(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number): T | undefined {
    if (typeof a !== 'number' || typeof b !== 'number') {
      if (!this.text6(a, b)) return this.other.get(textKey(node, tcp, a, ap, b, bp));
      return this.value(this.table6[this.find6(this.tag(node, tcp), ap, bp)]!);
    }
    return this.value(this.table[this.find(this.tag(node, tcp), a | 0, ap, b | 0, bp)]!);
  }

  /** get() for an IPv6 packet: its source and destination addresses are the 32 bytes at data[addrOffset]. */
  get6(node: string, tcp: boolean, data: Uint8Array, addrOffset: number, ap: number, bp: number): T | undefined {
    const k = this.key6;
    for (let i = 0; i < 8; i++) k[i] = be32s(data, addrOffset + 4 * i);
    return this.value(this.table6[this.find6(this.tag(node, tcp), ap, bp)]!);
  }

  /** set() for an IPv6 packet's tuple (addresses as in get6), without the addresses' text. */
  set6(node: string, tcp: boolean, data: Uint8Array, addrOffset: number, ap: number, bp: number, value: T): void {
    const k = this.key6;
    for (let i = 0; i < 8; i++) k[i] = be32s(data, addrOffset + 4 * i);
    this.put6(this.tag(node, tcp), ap, bp, value);
  }

  private value(entry: number): T | undefined {
    return entry === 0 ? undefined : this.values[entry - 1];
  }

  /** Makes `value` the one using the tuple (replacing any earlier one). */
  set(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number, value: T): void {
    if (typeof a !== 'number' || typeof b !== 'number') {
      if (this.text6(a, b)) this.put6(this.tag(node, tcp), ap, bp, value);
      else this.other.set(textKey(node, tcp, a, ap, b, bp), value);
      return;
    }
    // (an unsigned address above 2^31 is the same key as its signed form)
    a |= 0;
    b |= 0;
    const tag = this.tag(node, tcp);
    const s = this.find(tag, a, ap, b, bp);
    const t = this.table;
    if (t[s] !== 0) {
      this.values[t[s]! - 1] = value;
      return;
    }
    const aFirst = a < b || (a === b && ap <= bp);
    this.values.push(value);
    t[s] = this.values.length;
    t[s + 1] = aFirst ? a : b;
    t[s + 2] = aFirst ? b : a;
    t[s + 3] = aFirst ? (ap << 16) | bp : (bp << 16) | ap;
    t[s + 4] = tag;
    t[s + 5] = this.lastHash;
    // why: at most half full, so probes stay short
    if (++this.count * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
  }

  /** Puts two IPv6 address texts in key6; false when either is not an IPv6 address. */
  private text6(a: KeyIp, b: KeyIp): boolean {
    const x = typeof a === 'string' ? ipToBytes(a) : null;
    const y = typeof b === 'string' ? ipToBytes(b) : null;
    if (x?.length !== 16 || y?.length !== 16) return false;
    for (let i = 0; i < 4; i++) {
      this.key6[i] = be32s(x, 4 * i);
      this.key6[4 + i] = be32s(y, 4 * i);
    }
    return true;
  }

  private put6(tag: number, ap: number, bp: number, value: T): void {
    const s = this.find6(tag, ap, bp);
    const t = this.table6;
    if (t[s] !== 0) {
      this.values[t[s]! - 1] = value;
      return;
    }
    const k = this.key6;
    const aFirst = first6(k, ap, bp);
    this.values.push(value);
    t[s] = this.values.length;
    for (let i = 0; i < 4; i++) {
      t[s + 1 + i] = k[aFirst ? i : 4 + i]!;
      t[s + 5 + i] = k[aFirst ? 4 + i : i]!;
    }
    t[s + 9] = aFirst ? (ap << 16) | bp : (bp << 16) | ap;
    t[s + 10] = tag;
    t[s + 11] = this.lastHash;
    if (++this.count6 * 2 > this.mask6 + 1) this.rehash6((this.mask6 + 1) * 2);
  }

  private tag(node: string, tcp: boolean): number {
    if (node !== this.lastNode) {
      let t = this.nodes.get(node);
      if (t === undefined) {
        t = this.nodes.size;
        this.nodes.set(node, t);
      }
      this.lastNode = node;
      this.lastNodeTag = t;
    }
    return this.lastNodeTag * 2 + (tcp ? 1 : 0);
  }

  /** The table offset of the tuple's slot, or of the empty slot where it would go. */
  private find(tag: number, a: number, ap: number, b: number, bp: number): number {
    const aFirst = a < b || (a === b && ap <= bp);
    const x = aFirst ? a : b;
    const y = aFirst ? b : a;
    const p = aFirst ? (ap << 16) | bp : (bp << 16) | ap;
    const t = this.table;
    const mask = this.mask;
    const h = hash(x, y, p, tag);
    this.lastHash = h;
    let i = h & mask;
    for (;;) {
      const s = i * SLOT;
      if (t[s] === 0 || (t[s + 1] === x && t[s + 2] === y && t[s + 3] === p && t[s + 4] === tag)) return s;
      i = (i + 1) & mask;
    }
  }

  /** find() for the IPv6 tuple whose addresses are in key6 (a then b). */
  private find6(tag: number, ap: number, bp: number): number {
    const k = this.key6;
    const aFirst = first6(k, ap, bp);
    const x = aFirst ? 0 : 4;
    const y = aFirst ? 4 : 0;
    const p = aFirst ? (ap << 16) | bp : (bp << 16) | ap;
    const t = this.table6;
    const mask = this.mask6;
    const h = hash6(k[x]!, k[x + 1]!, k[x + 2]!, k[x + 3]!, k[y]!, k[y + 1]!, k[y + 2]!, k[y + 3]!, p, tag);
    this.lastHash = h;
    let i = h & mask;
    for (;;) {
      const s = i * SLOT6;
      if (t[s] === 0) return s;
      if (t[s + 9] === p && t[s + 10] === tag && t[s + 1] === k[x] && t[s + 2] === k[x + 1] && t[s + 3] === k[x + 2] && t[s + 4] === k[x + 3]
        && t[s + 5] === k[y] && t[s + 6] === k[y + 1] && t[s + 7] === k[y + 2] && t[s + 8] === k[y + 3]) return s;
      i = (i + 1) & mask;
    }
  }

  private rehash(size: number): void {
    const old = this.table;
    this.mask = size - 1;
    const t = (this.table = new Int32Array(size * SLOT));
    for (let o = 0; o < old.length; o += SLOT) {
      if (old[o] === 0) continue;
      let i = old[o + 5]! & this.mask;
      while (t[i * SLOT] !== 0) i = (i + 1) & this.mask;
      t.set(old.subarray(o, o + SLOT), i * SLOT);
    }
  }

  private rehash6(size: number): void {
    const old = this.table6;
    this.mask6 = size - 1;
    const t = (this.table6 = new Int32Array(size * SLOT6));
    for (let o = 0; o < old.length; o += SLOT6) {
      if (old[o] === 0) continue;
      let i = old[o + 11]! & this.mask6;
      while (t[i * SLOT6] !== 0) i = (i + 1) & this.mask6;
      t.set(old.subarray(o, o + SLOT6), i * SLOT6);
    }
  }
}

/** True when address k[0..3] (port ap) orders before k[4..7] (port bp): the tuple's canonical direction. */
function first6(k: Int32Array, ap: number, bp: number): boolean {
  for (let i = 0; i < 4; i++) if (k[i] !== k[4 + i]) return k[i]! < k[4 + i]!;
  return ap <= bp;
}

function hash(x: number, y: number, p: number, tag: number): number {
  let h = Math.imul(x ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15) ^ y, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 13) ^ p, 0x27d4eb2f);
  h ^= tag;
  return (h ^ (h >>> 16)) >>> 0;
}

function hash6(x0: number, x1: number, x2: number, x3: number, y0: number, y1: number, y2: number, y3: number, p: number, tag: number): number {
  let h = Math.imul(x0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15) ^ x1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 13) ^ x2, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15) ^ x3, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ y0, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 15) ^ y1, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 13) ^ y2, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15) ^ y3, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 13) ^ p, 0x27d4eb2f);
  h ^= tag;
  return (h ^ (h >>> 16)) >>> 0;
}

function textKey(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number): string {
  const aFirst = a < b || (a === b && ap <= bp);
  const t = tcp ? 't' : 'u';
  return aFirst ? `${node}\0${t}${a}:${ap}/${b}:${bp}` : `${node}\0${t}${b}:${bp}/${a}:${ap}`;
}

/** A set of 64-bit values given as two 32-bit halves (already hashes, e.g. flow ids): open addressing on numbers. */
export class PairSet {
  private mask = (1 << 12) - 1;
  /** slot s holds halves keys[2s], keys[2s + 1] when used[s] */
  private keys = new Uint32Array((this.mask + 1) * 2);
  private used = new Uint8Array(this.mask + 1);
  private size = 0;

  /** Adds (h, l); false when it was there already. */
  add(h: number, l: number): boolean {
    h >>>= 0;
    l >>>= 0;
    let s = (h ^ Math.imul(l, 0x9e3779b1)) & this.mask;
    while (this.used[s]) {
      if (this.keys[2 * s] === h && this.keys[2 * s + 1] === l) return false;
      s = (s + 1) & this.mask;
    }
    this.used[s] = 1;
    this.keys[2 * s] = h;
    this.keys[2 * s + 1] = l;
    // why: at most half full, so probes stay short
    if (++this.size * 2 > this.mask + 1) this.grow();
    return true;
  }

  private grow(): void {
    const { keys, used } = this;
    this.mask = used.length * 2 - 1;
    this.keys = new Uint32Array((this.mask + 1) * 2);
    this.used = new Uint8Array(this.mask + 1);
    this.size = 0;
    for (let s = 0; s < used.length; s++) if (used[s]) this.add(keys[2 * s]!, keys[2 * s + 1]!);
  }
}
