// The flow table's index: the value (flow) using each transport 5-tuple, per node. Both directions of a
// tuple find the same entry. IPv4 tuples, the bulk of traffic, are keyed by their numbers in an
// open-addressing table: no key string per packet, no string hashing, no Map growth (a million flows spent
// most of their load time in Map lookups of fresh key strings). Other tuples (IPv6) are keyed by strings.

/** A tuple's endpoints as the analyzer keys them: an IPv4 address as its 32-bit number (signed, see table), else the text. */
export type KeyIp = number | string;

/** Words per slot: entry + 1 (0: empty), the canonical tuple (x, y, packed ports) and the node/transport tag. */
const SLOT = 8;

export class TupleIndex<T> {
  private mask = (1 << 12) - 1;
  // why the keys in the slots: a lookup reads one slot (32 bytes, one cache line) instead of a slot and four
  // key columns; with many flows' packets interleaved every packet is a lookup, and each line was a cache miss.
  // Keys are int32 (IPv4 as DecodedPacket.src4 gives them, signed; ports packed with <<), so every value
  // read back stays a small integer.
  private table = new Int32Array((this.mask + 1) * SLOT);
  private values: T[] = [];
  private readonly nodes = new Map<string, number>();
  private lastNode = '';
  private lastNodeTag = 0;
  private readonly other = new Map<string, T>();

  get(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number): T | undefined {
    if (typeof a !== 'number' || typeof b !== 'number') return this.other.get(textKey(node, tcp, a, ap, b, bp));
    const s = this.find(this.tag(node, tcp), a | 0, ap, b | 0, bp);
    const e = this.table[s]!;
    return e === 0 ? undefined : this.values[e - 1];
  }

  /** Makes `value` the one using the tuple (replacing any earlier one). */
  set(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number, value: T): void {
    if (typeof a !== 'number' || typeof b !== 'number') {
      this.other.set(textKey(node, tcp, a, ap, b, bp), value);
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
    // why: at most half full, so probes stay short
    if (this.values.length * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
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
    let i = hash(x, y, p, tag) & mask;
    for (;;) {
      const s = i * SLOT;
      if (t[s] === 0 || (t[s + 1] === x && t[s + 2] === y && t[s + 3] === p && t[s + 4] === tag)) return s;
      i = (i + 1) & mask;
    }
  }

  private rehash(size: number): void {
    const old = this.table;
    this.mask = size - 1;
    const t = (this.table = new Int32Array(size * SLOT));
    for (let o = 0; o < old.length; o += SLOT) {
      if (old[o] === 0) continue;
      let i = hash(old[o + 1]!, old[o + 2]!, old[o + 3]!, old[o + 4]!) & this.mask;
      while (t[i * SLOT] !== 0) i = (i + 1) & this.mask;
      t.set(old.subarray(o, o + SLOT), i * SLOT);
    }
  }
}

function hash(x: number, y: number, p: number, tag: number): number {
  let h = Math.imul(x ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15) ^ y, 0xc2b2ae35);
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
