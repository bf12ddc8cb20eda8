// The flow table's index: the value (flow) using each transport 5-tuple, per node. Both directions of a
// tuple find the same entry. IPv4 tuples, the bulk of traffic, are keyed by their numbers in an
// open-addressing table: no key string per packet, no string hashing, no Map growth (a million flows spent
// most of their load time in Map lookups of fresh key strings). Other tuples (IPv6) are keyed by strings.

const EMPTY = -1;

/** A tuple's endpoints as the analyzer keys them: an IPv4 address as its 32-bit number (signed, see ipA), else the text. */
export type KeyIp = number | string;

export class TupleIndex<T> {
  private mask = (1 << 12) - 1;
  private slots = new Int32Array(this.mask + 1).fill(EMPTY);
  /** columns of entry i: the canonical tuple (first endpoint's address and port, second's) and node/transport tag */
  // why signed: keys (IPv4 as DecodedPacket.src4 gives them, ports packed with <<) are int32, so every value
  // read back stays a small integer; unsigned ones above 2^31 made the optimized code start over
  private ipA = new Int32Array(2048);
  private ipB = new Int32Array(2048);
  private ports = new Int32Array(2048);
  private tags = new Int32Array(2048);
  private values: T[] = [];
  private readonly nodes = new Map<string, number>();
  private lastNode = '';
  private lastNodeTag = 0;
  private readonly other = new Map<string, T>();

  get(node: string, tcp: boolean, a: KeyIp, ap: number, b: KeyIp, bp: number): T | undefined {
    if (typeof a !== 'number' || typeof b !== 'number') return this.other.get(textKey(node, tcp, a, ap, b, bp));
    const i = this.find(this.tag(node, tcp), a | 0, ap, b | 0, bp);
    return i === EMPTY ? undefined : this.values[i];
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
    const i = this.find(tag, a, ap, b, bp);
    if (i !== EMPTY) {
      this.values[i] = value;
      return;
    }
    const n = this.values.length;
    if (n === this.ipA.length) this.growColumns();
    const aFirst = a < b || (a === b && ap <= bp);
    this.ipA[n] = aFirst ? a : b;
    this.ipB[n] = aFirst ? b : a;
    this.ports[n] = aFirst ? (ap << 16) | bp : (bp << 16) | ap;
    this.tags[n] = tag;
    this.values.push(value);
    // why: at most half full, so probes stay short
    if ((n + 1) * 2 > this.mask + 1) this.rehash((this.mask + 1) * 2);
    else this.place(n);
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

  private find(tag: number, a: number, ap: number, b: number, bp: number): number {
    const aFirst = a < b || (a === b && ap <= bp);
    const x = aFirst ? a : b;
    const y = aFirst ? b : a;
    const p = aFirst ? (ap << 16) | bp : (bp << 16) | ap;
    let s = hash(x, y, p, tag) & this.mask;
    for (;;) {
      const i = this.slots[s]!;
      if (i === EMPTY) return EMPTY;
      if (this.ipA[i] === x && this.ipB[i] === y && this.ports[i] === p && this.tags[i] === tag) return i;
      s = (s + 1) & this.mask;
    }
  }

  private place(i: number): void {
    let s = hash(this.ipA[i]!, this.ipB[i]!, this.ports[i]!, this.tags[i]!) & this.mask;
    while (this.slots[s] !== EMPTY) s = (s + 1) & this.mask;
    this.slots[s] = i;
  }

  private rehash(size: number): void {
    this.mask = size - 1;
    this.slots = new Int32Array(size).fill(EMPTY);
    for (let i = 0; i < this.values.length; i++) this.place(i);
  }

  private growColumns(): void {
    const grow = (c: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const g = new Int32Array(c.length * 2);
      g.set(c);
      return g;
    };
    this.ipA = grow(this.ipA);
    this.ipB = grow(this.ipB);
    this.ports = grow(this.ports);
    this.tags = grow(this.tags);
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
