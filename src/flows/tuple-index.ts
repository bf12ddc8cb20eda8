// The flow table's index: the value (flow) using each transport 5-tuple, per node. Both directions of a
// tuple find the same entry. Tuples are keyed by their numbers in open-addressing tables, IPv4 and IPv6 apart:
// no key string per packet, no string hashing, no Map growth (a million flows spent most of their load time in
// Map lookups of fresh key strings; IPv6 traffic, keyed by its address text, took twice as long as IPv4).
// Only endpoints that are not addresses (no such tuple comes from packets) are keyed by strings.
import { ipToBytes } from '../util/ip.js';
import { be32s } from '../pcapng/bytes.js';

/** A tuple's endpoints as the analyzer keys them: an IPv4 address as its 32-bit number (signed, see table), else the text. */
export type KeyIp = number | string;

/** Words per IPv4 key: the canonical tuple (x, y, packed ports) and the node/transport tag. */
const KEY = 4;
/** Words per IPv6 key: x (4 words), y (4 words), packed ports, tag (and two unused: 48 bytes). */
const KEY6 = 12;

/**
 * One open-addressing table: slots hold entry + 1 (0: empty); each entry's key words lie together in `keys`,
 * in the order the entries came. A lookup reads a slot and one key (two cache lines; separate key columns were
 * five, with many flows' packets interleaved every packet is a lookup). Growing rehashes the small slots from
 * the keys read in order; keys stored in the slots made a million flows' table too large to grow quickly.
 * Keys are int32 (IPv4 as DecodedPacket.src4 gives them, signed; ports packed with <<), so every value read
 * back stays a small integer.
 */
class Table<T> {
  mask = (1 << 10) - 1;
  slots = new Int32Array(this.mask + 1);
  keys: Int32Array;
  readonly values: T[] = [];

  constructor(readonly width: number) {
    this.keys = new Int32Array(256 * width);
  }

  /** Adds the key in keys[at, at + width) of `from` for a new entry, or replaces the value at slot s. */
  put(s: number, from: Int32Array, at: number, value: T): void {
    const e = this.slots[s]!;
    if (e !== 0) {
      this.values[e - 1] = value;
      return;
    }
    const n = this.values.length;
    const w = this.width;
    if ((n + 1) * w > this.keys.length) {
      const grown = new Int32Array(this.keys.length * 2);
      grown.set(this.keys);
      this.keys = grown;
    }
    for (let i = 0; i < w; i++) this.keys[n * w + i] = from[at + i]!;
    this.values.push(value);
    this.slots[s] = n + 1;
    // why: at most half full, so probes stay short
    if ((n + 1) * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
  }

  private rehash(size: number): void {
    this.mask = size - 1;
    const slots = (this.slots = new Int32Array(size));
    const k = this.keys;
    const w = this.width;
    for (let e = 0; e < this.values.length; e++) {
      let i = (w === KEY ? hash(k[e * w]!, k[e * w + 1]!, k[e * w + 2]!, k[e * w + 3]!) : hash6At(k, e * w)) & this.mask;
      while (slots[i] !== 0) i = (i + 1) & this.mask;
      slots[i] = e + 1;
    }
  }
}

export class TupleIndex<T> {
  private readonly t4 = new Table<T>(KEY);
  private readonly t6 = new Table<T>(KEY6);
  /** the key being looked up: IPv4 (x, y, p, tag) */
  private readonly key4 = new Int32Array(KEY);
  /** an IPv6 tuple's two addresses (8 words, as given) while it is looked up, then its key (x, y, p, tag) */
  private readonly key6 = new Int32Array(KEY6);
  private readonly nodes = new Map<string, number>();
  private lastNode = '';
  private lastNodeTag = 0;
  private readonly other = new Map<string, T>();

  get(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number): T | undefined {
    if (typeof a !== 'number' || typeof b !== 'number') {
      if (!this.text6(a, b)) return this.other.get(textKey(node, tcp, a, ap, b, bp));
      return value(this.t6, this.find6(this.tag(node, tcp), ap, bp));
    }
    return value(this.t4, this.find(this.tag(node, tcp), a | 0, ap, b | 0, bp));
  }

  /** get() for an IPv6 packet: its source and destination addresses are the 32 bytes at data[addrOffset]. */
  get6(node: string, tcp: boolean, data: Uint8Array, addrOffset: number, ap: number, bp: number): T | undefined {
    this.load6(data, addrOffset, data, addrOffset + 16);
    return value(this.t6, this.find6(this.tag(node, tcp), ap, bp));
  }

  /** Makes `value` the one using the tuple (replacing any earlier one). */
  set(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number, value: T): void {
    if (typeof a !== 'number' || typeof b !== 'number') {
      if (this.text6(a, b)) this.t6.put(this.find6(this.tag(node, tcp), ap, bp), this.key6, 0, value);
      else this.other.set(textKey(node, tcp, a, ap, b, bp), value);
      return;
    }
    // (an unsigned address above 2^31 is the same key as its signed form)
    this.t4.put(this.find(this.tag(node, tcp), a | 0, ap, b | 0, bp), this.key4, 0, value);
  }

  /** set() for an IPv6 packet's tuple (addresses as in get6), without the addresses' text. */
  set6(node: string, tcp: boolean, data: Uint8Array, addrOffset: number, ap: number, bp: number, value: T): void {
    this.load6(data, addrOffset, data, addrOffset + 16);
    this.t6.put(this.find6(this.tag(node, tcp), ap, bp), this.key6, 0, value);
  }

  /** Puts two IPv6 address texts in key6; false when either is not an IPv6 address. */
  private text6(a: KeyIp, b: KeyIp): boolean {
    const x = typeof a === 'string' ? ipToBytes(a) : null;
    const y = typeof b === 'string' ? ipToBytes(b) : null;
    if (x?.length !== 16 || y?.length !== 16) return false;
    this.load6(x, 0, y, 0);
    return true;
  }

  /** Puts the IPv6 addresses at x[xo] and y[yo] (16 bytes each) in key6, a then b. */
  private load6(x: Uint8Array, xo: number, y: Uint8Array, yo: number): void {
    const k = this.key6;
    for (let i = 0; i < 4; i++) {
      k[i] = be32s(x, xo + 4 * i);
      k[4 + i] = be32s(y, yo + 4 * i);
    }
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

  /** The slot of the tuple, or the empty slot where it would go; key4 then holds its key. */
  private find(tag: number, a: number, ap: number, b: number, bp: number): number {
    const aFirst = a < b || (a === b && ap <= bp);
    const x = aFirst ? a : b;
    const y = aFirst ? b : a;
    const p = aFirst ? (ap << 16) | bp : (bp << 16) | ap;
    const q = this.key4;
    q[0] = x;
    q[1] = y;
    q[2] = p;
    q[3] = tag;
    const { slots, keys, mask } = this.t4;
    let i = hash(x, y, p, tag) & mask;
    for (;;) {
      const e = slots[i]!;
      if (e === 0) return i;
      const o = (e - 1) * KEY;
      if (keys[o] === x && keys[o + 1] === y && keys[o + 2] === p && keys[o + 3] === tag) return i;
      i = (i + 1) & mask;
    }
  }

  /** find() for the IPv6 tuple whose addresses are in key6 (a then b); key6 then holds its key. */
  private find6(tag: number, ap: number, bp: number): number {
    const k = this.key6;
    if (!first6(k, ap, bp)) {
      for (let i = 0; i < 4; i++) {
        const t = k[i]!;
        k[i] = k[4 + i]!;
        k[4 + i] = t;
      }
      k[8] = (bp << 16) | ap;
    } else {
      k[8] = (ap << 16) | bp;
    }
    k[9] = tag;
    const { slots, keys, mask } = this.t6;
    let i = hash6At(k, 0) & mask;
    for (;;) {
      const e = slots[i]!;
      if (e === 0) return i;
      const o = (e - 1) * KEY6;
      if (keys[o + 8] === k[8] && keys[o + 9] === tag && keys[o] === k[0] && keys[o + 1] === k[1] && keys[o + 2] === k[2] && keys[o + 3] === k[3]
        && keys[o + 4] === k[4] && keys[o + 5] === k[5] && keys[o + 6] === k[6] && keys[o + 7] === k[7]) return i;
      i = (i + 1) & mask;
    }
  }
}

function value<T>(t: Table<T>, s: number): T | undefined {
  const e = t.slots[s]!;
  return e === 0 ? undefined : t.values[e - 1];
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

/** The hash of the IPv6 key k[o, o + 10): x, y, packed ports, tag. */
function hash6At(k: Int32Array, o: number): number {
  let h = 0x9e3779b9;
  for (let i = 0; i < 10; i++) h = Math.imul(h ^ (h >>> 15) ^ k[o + i]!, i & 1 ? 0xc2b2ae35 : 0x85ebca6b);
  return (h ^ (h >>> 16)) >>> 0;
}

function textKey(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number): string {
  const aFirst = a < b || (a === b && ap <= bp);
  const t = tcp ? 't' : 'u';
  return aFirst ? `${node}\0${t}${a}:${ap}/${b}:${bp}` : `${node}\0${t}${b}:${bp}/${a}:${ap}`;
}

/**
 * 64-bit keys given as two 32-bit halves (already hashes, e.g. flow ids), each with a number (a flow's index): open
 * addressing on numbers, no key string or Map entry per key.
 */
export class PairSet {
  private mask = (1 << 12) - 1;
  /** slot s holds halves keys[2s], keys[2s + 1] and its number values[s] when used[s] */
  private keys = new Uint32Array((this.mask + 1) * 2);
  private values = new Int32Array(this.mask + 1);
  private used = new Uint8Array(this.mask + 1);
  private size = 0;

  /** Adds (h, l) with `value`; false (and nothing changed) when it was there already. */
  add(h: number, l: number, value: number): boolean {
    h >>>= 0;
    l >>>= 0;
    const s = this.slot(h, l);
    if (this.used[s]) return false;
    this.used[s] = 1;
    this.keys[2 * s] = h;
    this.keys[2 * s + 1] = l;
    this.values[s] = value;
    // why: at most half full, so probes stay short
    if (++this.size * 2 > this.mask + 1) this.grow();
    return true;
  }

  /** The number (h, l) was added with; -1 when it was not. */
  get(h: number, l: number): number {
    const s = this.slot(h >>> 0, l >>> 0);
    return this.used[s] ? this.values[s]! : -1;
  }

  /** The slot holding (h, l) (unsigned halves), else the free slot where it would go. */
  private slot(h: number, l: number): number {
    let s = (h ^ Math.imul(l, 0x9e3779b1)) & this.mask;
    while (this.used[s] && !(this.keys[2 * s] === h && this.keys[2 * s + 1] === l)) s = (s + 1) & this.mask;
    return s;
  }

  private grow(): void {
    const { keys, values, used } = this;
    this.mask = used.length * 2 - 1;
    this.keys = new Uint32Array((this.mask + 1) * 2);
    this.values = new Int32Array(this.mask + 1);
    this.used = new Uint8Array(this.mask + 1);
    this.size = 0;
    for (let s = 0; s < used.length; s++) if (used[s]) this.add(keys[2 * s]!, keys[2 * s + 1]!, values[s]!);
  }
}
