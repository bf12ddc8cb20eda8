// Flow records as JSON Lines, written straight into bytes: the `flows --json` output, its worker threads and
// the JSON Lines export. Byte for byte what `${JSON.stringify(flow)}\n` gives, without a string per flow (the
// stringify, the join of the lines and their UTF-8 copy were a fifth of `flows --json` on the bench captures).
//
// Three ways to write an object, fastest first, each exact:
// - a template (Flow, Endpoint, ProcessRef, PodRef, TlsInfo, TlsSideVerdict, HttpExchangeSummary, DnsSummary): field
//   values read by name and key text written from bytes made once. Used only when the object's own keys begin
//   with the template's keys in the same order (one for-in compare); keys after them (fields the analyzer adds
//   later in a flow's life: netns, dns, negotiatedAlpn, ...) are written by the walk below, in their order.
//   TLS parameters, verdicts, processes and pods are mostly the same from one flow to the next: their templates keep
//   the bytes they wrote last and copy them for an object whose fields hold the same values (Memo).
// - a walk of the object's own keys (for-in on a plain object lists exactly those, in JSON.stringify's
//   order): any other plain object.
// - JSON.stringify, for the whole record, when something in it is not plain data this writer reproduces
//   exactly: toJSON, class instances, undefined members, bigint, functions, a cycle.

import type { DnsSummary, Endpoint, Flow, HttpExchangeSummary, PodRef, ProcessRef, TcpSummary, TlsInfo, TlsSideVerdict } from './flow.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const NEWLINE = 0x0a;
/** Constant text (key names and punctuation, null, true, false) as bytes and as little-endian 32-bit words. */
interface Literal {
  bytes: Uint8Array;
  words: Uint32Array;
}

function literal(text: string): Literal {
  const bytes = Buffer.from(text, 'latin1');
  const words = new Uint32Array(bytes.length >> 2);
  for (let i = 0; i < words.length; i++) words[i] = bytes.readUInt32LE(i * 4);
  return { bytes, words };
}

const NULL = literal('null');
const TRUE = literal('true');
const FALSE = literal('false');
/** deeper than any flow; a cycle gets there and is left to JSON.stringify (which reports it) */
const MAX_DEPTH = 32;
/** Strings this long are kept encoded once seen (ja3, ja4, verdict reasons): shared by many flows. */
const CACHE_MIN_CHARS = 32;
/** and no longer: the cache must not keep large strings (a long path) alive */
const CACHE_MAX_CHARS = 4096;
const CACHE_MAX_ENTRIES = 2048;

/** Thrown inside a record this writer cannot reproduce exactly; the record then goes to JSON.stringify. */
const NOT_PLAIN = new Error('not plain JSON data');

/** How a record was written (tests check that flows take the templates). */
export interface FlowJsonCounts {
  /** by templates only */
  templated: number;
  /** with at least one object walked key by key */
  walked: number;
  /** by JSON.stringify */
  stringified: number;
}

/**
 * Appends records as JSON lines to a buffer; the caller takes the lines when `full` and may hand a taken
 * chunk back (reuse) once written, so a long output cycles through a few buffers instead of allocating one
 * per chunk (each new one was a garbage collection for external memory).
 */
export class FlowJsonLines {
  private readonly w: ByteWriter;
  readonly counts: FlowJsonCounts = { templated: 0, walked: 0, stringified: 0 };

  /** `chunkBytes`: how much makes the buffer full; a record that does not fit in what is left grows it. */
  constructor(private readonly chunkBytes = 1 << 20) {
    // why the headroom: the record that makes the buffer full almost always still fits without growing it
    this.w = new ByteWriter(chunkBytes + (chunkBytes >> 4));
  }

  /** Bytes written since the last take(). */
  get length(): number {
    return this.w.pos;
  }

  /** Strings kept encoded (tests check the cache stays bounded). */
  get cachedStrings(): number {
    return this.w.encoded.size;
  }

  /** Objects written as copies of the bytes of the last one like them (see Memo; tests check they are). */
  get copied(): number {
    return this.w.copied;
  }

  get full(): boolean {
    return this.w.pos >= this.chunkBytes;
  }

  /** Appends `${JSON.stringify(flow)}\n`. */
  add(flow: Flow): void {
    const w = this.w;
    const start = w.pos;
    w.walked = false;
    try {
      if (!plainPrototypes()) throw NOT_PLAIN;
      w.templated(flow, FLOW, 0);
      if (w.walked) this.counts.walked++;
      else this.counts.templated++;
    } catch (e) {
      w.pos = start;
      if (e !== NOT_PLAIN) throw e;
      w.utf8(JSON.stringify(flow));
      this.counts.stringified++;
    }
    w.byte(NEWLINE);
  }

  /** The lines written so far, now the caller's: writes go on in another buffer. */
  take(): Buffer {
    return this.w.take();
  }

  /** A chunk take() returned, written out and no longer needed by the caller: its buffer is used again. */
  reuse(chunk: Buffer): void {
    this.w.reuse(chunk);
  }

  /** Adds every flow, handing each full chunk and then the rest to `emit` (awaited when it returns a promise). */
  async addAll(flows: Iterable<Flow>, emit: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    for (const f of flows) {
      this.add(f);
      if (this.full) await emit(this.take());
    }
    if (this.length > 0) await emit(this.take());
  }
}

/** The key text of a template: `{"first":` and `,"next":` for the others. */
type KeyText<K extends string> = Record<K, Literal>;

interface Template<T> {
  keys: readonly string[];
  /** Writes the opening brace and the template's fields (not the closing brace). */
  write(w: ByteWriter, o: T, depth: number): void;
  /** On a template used at one place of a record: its memo's index in a writer's memos, its fields' kinds (see memoized) */
  memo?: { index: number; kinds: readonly FieldKind[] };
  /** Keys that may follow the template's, whose values are lists of objects of a template */
  lists?: ReadonlyMap<string, Template<never>>;
}

function template<T, K extends keyof T & string>(keys: readonly K[], write: (w: ByteWriter, o: T, k: KeyText<K>, depth: number) => void): Template<T> {
  const k = {} as KeyText<K>;
  keys.forEach((key, i) => { k[key] = literal(`${i === 0 ? '{' : ','}${JSON.stringify(key)}:`); });
  return { keys, write: (w, o, depth) => write(w, o, k, depth) };
}

const ENDPOINT = template<Endpoint, keyof Endpoint>(['ip', 'port'], (w, o, k, d) => {
  w.lit(k.ip); w.value(o.ip, d);
  w.lit(k.port); w.value(o.port, d);
});

const PROCESS = template<ProcessRef, keyof ProcessRef>(['pid', 'comm', 'exe', 'cgroup', 'containerId'], (w, o, k, d) => {
  w.lit(k.pid); w.value(o.pid, d);
  w.lit(k.comm); w.value(o.comm, d);
  w.lit(k.exe); w.value(o.exe, d);
  w.lit(k.cgroup); w.value(o.cgroup, d);
  w.lit(k.containerId); w.value(o.containerId, d);
});

/** A field's kind, for comparing it with the one last written: a plain value, a list of them, an object of a memoized template. */
type FieldKind = 'value' | 'list' | Template<never>;

/** A field's kind in a writer's memo: as FieldKind, with the writer's memo of a nested template. */
type MemoKind = 'value' | 'list' | Memo;

/** In Memo.values: the field held an object, the same as its template's memo holds. */
const NESTED = Symbol('nested');

/**
 * What a template wrote last at one place of a record (its fields, not the closing brace) and the values it wrote
 * them from: the next object there whose fields hold the same values gets those bytes copied. The TLS parameters,
 * verdicts and processes of a capture's flows mostly repeat from one flow to the next. The bytes are a function of
 * the values alone (=== values write the same text, 0 and -0 too). A field is read up to three times (compare,
 * write, remember): a getter must give the same value each time.
 */
class Memo {
  private readonly values: unknown[] = [];
  /** null while there is nothing to compare with */
  bytes: Uint8Array | null = null;
  private store = new Uint8Array(256);
  /** objects written since the last match */
  private misses = 0;

  constructor(readonly keys: readonly string[], private readonly kinds: readonly MemoKind[]) {}

  /** Whether o (its own keys begin with the template's) has the values last written. */
  matches(o: object): boolean {
    if (this.bytes === null) return false;
    const { keys, kinds, values } = this;
    let i = 0;
    // why for-in: its keys are o's own in order (the template's first) and it reads each from where o keeps it;
    // a read by a key from the list takes a lookup each
    for (const key in o) {
      if (i === keys.length) break;
      const v = (o as Record<string, unknown>)[key];
      const kind = kinds[i]!;
      const last = values[i];
      if (kind === 'value') {
        if (v !== last) return false;
      } else if (kind === 'list') {
        if (!sameList(v, last as unknown[])) return false;
      } else if (v === null || last === null) {
        if (v !== last) return false;
      } else if (!isTemplated(v, kind.keys) || !kind.matches(v)) {
        return false;
      }
      i++;
    }
    this.misses = 0;
    return true;
  }

  /**
   * After a miss: o's fields were written to buf from `start` to `end`. Keeps them when they can be told again
   * from o's values alone, and when worth it: values that change from each object to the next would be kept for
   * nothing each time (a quarter more time for such TLS flows), so a run of misses keeps its 1st, 2nd, 4th, 8th,
   * 16th, then every 16th.
   */
  written(o: object, buf: Uint8Array, start: number, end: number): void {
    const run = ++this.misses;
    if (run > 16 ? run % 16 !== 0 : (run & (run - 1)) !== 0) return;
    const { keys, kinds, values } = this;
    for (let i = 0; i < keys.length; i++) {
      const v = (o as Record<string, unknown>)[keys[i]!];
      const kind = kinds[i]!;
      if (kind === 'value') {
        if (typeof v === 'object' && v !== null) return;
        values[i] = v;
      } else if (kind === 'list') {
        if (!plainList(v)) return;
        values[i] = v.slice();
      } else if (v === null) {
        values[i] = null;
      } else {
        // a nested object written by its template (no keys after them) and kept by its memo just now (if not,
        // this could not match before the nested memo keeps one, which it does only while this one writes)
        if (!isTemplated(v, kind.keys) || kind.bytes === null) return;
        values[i] = NESTED;
      }
    }
    // why a store that only grows: a new buffer each time (off the JS heap at this size) cost more than the copies
    // saved; and a plain view of buf, not a Buffer's subarray (which makes a Buffer, a slow constructor)
    const n = end - start;
    if (n > this.store.length) this.store = new Uint8Array(Math.max(n, this.store.length * 2));
    this.store.set(new Uint8Array(buf.buffer, buf.byteOffset + start, n));
    this.bytes = this.store.subarray(0, n);
  }
}

let memoCount = 0;

/**
 * The template `t` with a memo of its own in each writer, for one place of a record (a memo changes only while its
 * parent writes, which then remembers anew). `kinds`: fields that are not plain values.
 */
function memoized<T>(t: Template<T>, kinds: Partial<Record<keyof T & string, FieldKind>> = {}): Template<T> {
  const k = kinds as Record<string, FieldKind | undefined>;
  return { ...t, memo: { index: memoCount++, kinds: t.keys.map((key) => k[key] ?? 'value') } };
}

/** A plain object whose own keys are exactly `keys`. */
function isTemplated(v: unknown, keys: readonly string[]): v is object {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && keysAfter(v, keys) === 0;
}

/** An array of plain values only (one just written: JSON.stringify writes it element by element). */
function plainList(v: unknown): v is unknown[] {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    if (typeof e === 'object' && e !== null) return false;
  }
  return true;
}

function sameList(v: unknown, last: unknown[]): boolean {
  if (!Array.isArray(v) || v.length !== last.length || !plainArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (v[i] !== last[i]) return false;
  return true;
}

const SIDE = template<TlsSideVerdict, keyof TlsSideVerdict>(['library', 'via', 'confidence', 'plaintext', 'plaintextFrom', 'reason', 'version'], (w, o, k, d) => {
  w.lit(k.library); w.value(o.library, d);
  w.lit(k.via); w.value(o.via, d);
  w.lit(k.confidence); w.value(o.confidence, d);
  w.lit(k.plaintext); w.value(o.plaintext, d);
  w.lit(k.plaintextFrom); w.value(o.plaintextFrom, d);
  w.lit(k.reason); w.value(o.reason, d);
  w.lit(k.version); w.value(o.version, d);
});

const CLIENT_SIDE = memoized(SIDE);
const SERVER_SIDE = memoized(SIDE);

const TLS = memoized(template<TlsInfo, Exclude<keyof TlsInfo, 'negotiatedAlpn' | 'sameSessionAs'>>(
  ['sni', 'alpn', 'version', 'cipher', 'ja3', 'ja3Hash', 'ja4', 'client', 'server'],
  (w, o, k, d) => {
    w.lit(k.sni); w.value(o.sni, d);
    w.lit(k.alpn); w.value(o.alpn, d);
    w.lit(k.version); w.value(o.version, d);
    w.lit(k.cipher); w.value(o.cipher, d);
    w.lit(k.ja3); w.value(o.ja3, d);
    w.lit(k.ja3Hash); w.value(o.ja3Hash, d);
    w.lit(k.ja4); w.value(o.ja4, d);
    w.lit(k.client); w.templated(o.client, CLIENT_SIDE, d);
    w.lit(k.server); w.templated(o.server, SERVER_SIDE, d);
  },
), { alpn: 'list', client: CLIENT_SIDE, server: SERVER_SIDE });

const PROCESS_MEMO = memoized(PROCESS);
const PEER_PROCESS_MEMO = memoized(PROCESS);

/** The Kubernetes target's pods have all four keys; one without workload or node (older sessions) is walked */
const POD = memoized(template<PodRef, keyof PodRef>(['namespace', 'name', 'workload', 'node'], (w, o, k, d) => {
  w.lit(k.namespace); w.value(o.namespace, d);
  w.lit(k.name); w.value(o.name, d);
  w.lit(k.workload); w.value(o.workload, d);
  w.lit(k.node); w.value(o.node, d);
}));

const EXCHANGE = template<HttpExchangeSummary, keyof HttpExchangeSummary>(['method', 'host', 'path', 'status'], (w, o, k, d) => {
  w.lit(k.method); w.value(o.method, d);
  w.lit(k.host); w.value(o.host, d);
  w.lit(k.path); w.value(o.path, d);
  w.lit(k.status); w.value(o.status, d);
});

const DNS = template<DnsSummary, keyof DnsSummary>(['id', 'query', 'type', 'rcode', 'answers'], (w, o, k, d) => {
  w.lit(k.id); w.value(o.id, d);
  w.lit(k.query); w.value(o.query, d);
  w.lit(k.type); w.value(o.type, d);
  w.lit(k.rcode); w.value(o.rcode, d);
  w.lit(k.answers); w.value(o.answers, d);
});

const TCP = memoized(template<TcpSummary, keyof TcpSummary>(['state', 'resetBy', 'retransmissions'], (w, o, k, d) => {
  w.lit(k.state); w.value(o.state, d);
  w.lit(k.resetBy); w.value(o.resetBy, d);
  w.lit(k.retransmissions); w.value(o.retransmissions, d);
}));

/** The fields every flow has from its creation (Analyzer.addFlow), in that order; the optional ones follow. */
type FlowBase = Exclude<keyof Flow, 'httpOmitted' | 'httpStopped' | 'dns' | 'netns' | 'db' | 'proxy'>;

const FLOW = template<Flow, FlowBase>(
  ['id', 'transport', 'src', 'dst', 'firstSeen', 'lastSeen', 'packets', 'bytes', 'process', 'processSide', 'peerProcess', 'node', 'pod', 'app', 'tls', 'http', 'seenBy', 'tcp'],
  (w, o, k, d) => {
    w.lit(k.id); w.value(o.id, d);
    w.lit(k.transport); w.value(o.transport, d);
    w.lit(k.src); w.templated(o.src, ENDPOINT, d);
    w.lit(k.dst); w.templated(o.dst, ENDPOINT, d);
    w.lit(k.firstSeen); w.value(o.firstSeen, d);
    w.lit(k.lastSeen); w.value(o.lastSeen, d);
    w.lit(k.packets); w.value(o.packets, d);
    w.lit(k.bytes); w.value(o.bytes, d);
    w.lit(k.process); w.templated(o.process, PROCESS_MEMO, d);
    w.lit(k.processSide); w.value(o.processSide, d);
    w.lit(k.peerProcess); w.templated(o.peerProcess, PEER_PROCESS_MEMO, d);
    w.lit(k.node); w.value(o.node, d);
    w.lit(k.pod); w.templated(o.pod, POD, d);
    w.lit(k.app); w.value(o.app, d);
    w.lit(k.tls); w.templated(o.tls, TLS, d);
    w.lit(k.http); w.list(o.http, d, EXCHANGE);
    w.lit(k.seenBy); w.value(o.seenBy, d);
    w.lit(k.tcp); w.templated(o.tcp, TCP, d);
  },
);
FLOW.lists = new Map([['dns', DNS]]);

/** The bytes of JSON values, appended to one buffer. */
class ByteWriter {
  buf: Buffer;
  /** buf's bytes, for writing four at a time */
  private view: DataView;
  pos = 0;
  /** set when an object was written by the key walk */
  walked = false;
  copied = 0;
  /** by the memoized templates' indexes */
  private readonly memos: Memo[] = [];
  readonly encoded = new Map<string, Buffer>();

  private readonly spare: Buffer[] = [];

  constructor(private readonly capacity: number) {
    this.buf = Buffer.allocUnsafeSlow(capacity);
    this.view = viewOf(this.buf);
  }

  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.capacity);
    this.view = viewOf(this.buf);
    this.pos = 0;
    return out;
  }

  reuse(chunk: Buffer): void {
    // why only whole buffers of the usual size: allocUnsafeSlow's own memory, never a shared pool's; a
    // buffer grown for a large record is left to the collector
    const mine = chunk.byteOffset === 0 && chunk.buffer.byteLength === this.capacity;
    const known = chunk.buffer === this.buf.buffer || this.spare.some((b) => b.buffer === chunk.buffer);
    if (mine && !known && this.spare.length < 2) {
      this.spare.push(Buffer.from(chunk.buffer, 0, this.capacity));
    }
  }

  /** An object by its template when its keys begin with the template's, else by the walk (or null, ...). */
  templated<T>(o: T | null | undefined, t: Template<T>, depth: number): void {
    if (typeof o !== 'object' || o === null || Array.isArray(o)) {
      this.value(o, depth);
      return;
    }
    const more = keysAfter(o, t.keys);
    if (more < 0) {
      this.object(o, depth + 1);
      return;
    }
    const spec = t.memo;
    const memo = spec === undefined ? undefined : this.memos[spec.index] ?? this.memoOf(t);
    if (memo === undefined) {
      t.write(this, o, depth + 1);
    } else if (memo.matches(o)) {
      this.bytes(memo.bytes!);
      this.copied++;
    } else {
      // why forget first: a write that throws may have changed the nested memos the old bytes were compared by
      memo.bytes = null;
      const start = this.pos;
      t.write(this, o, depth + 1);
      memo.written(o, this.buf, start, this.pos);
    }
    if (more > 0) this.members(o, t.keys.length, depth + 1, t.lists);
    this.byte(CLOSE_BRACE);
  }

  /** The memo of a memoized template, made at its first use with the memos of the templates nested in it. */
  private memoOf(t: Template<never>): Memo {
    const spec = t.memo!;
    const kinds = spec.kinds.map((k) => (typeof k === 'string' ? k : this.memoOf(k)));
    return (this.memos[spec.index] ??= new Memo(t.keys, kinds));
  }

  /** An array, its elements by template `t` when given (a template's list field may hold anything else too). */
  list<T>(a: unknown, depth: number, t?: Template<T>): void {
    if (!Array.isArray(a)) {
      this.value(a, depth);
      return;
    }
    if (!plainArray(a) || depth >= MAX_DEPTH) throw NOT_PLAIN;
    this.byte(OPEN_BRACKET);
    for (let i = 0; i < a.length; i++) {
      if (i > 0) this.byte(COMMA);
      const v: unknown = a[i];
      // why: JSON.stringify writes an undefined element (or a hole) as null
      if (v === undefined) this.lit(NULL);
      else if (t) this.templated(v as T, t, depth + 1);
      else this.value(v, depth + 1);
    }
    this.byte(CLOSE_BRACKET);
  }

  value(v: unknown, depth: number): void {
    switch (typeof v) {
      case 'string': this.string(v); return;
      case 'number': this.number(v); return;
      case 'boolean': this.lit(v ? TRUE : FALSE); return;
      case 'object':
        if (v === null) this.lit(NULL);
        else if (depth >= MAX_DEPTH) throw NOT_PLAIN;
        else if (Array.isArray(v)) this.list(v, depth + 1);
        else this.object(v, depth + 1);
        return;
      default: throw NOT_PLAIN;
    }
  }

  private object(o: object, depth: number): void {
    if (Object.getPrototypeOf(o) !== Object.prototype) throw NOT_PLAIN;
    this.byte(OPEN_BRACE);
    this.members(o, 0, depth);
    this.byte(CLOSE_BRACE);
  }

  /** The members of a plain object after its first `skip` keys (already written when skip > 0), `lists` by their templates. */
  private members(o: object, skip: number, depth: number, lists?: ReadonlyMap<string, Template<never>>): void {
    this.walked = true;
    let i = 0;
    for (const k in o) {
      if (i++ < skip) continue;
      const v = (o as Record<string, unknown>)[k];
      // why: JSON.stringify leaves out undefined members and calls toJSON; records with either go to it
      if (v === undefined || k === 'toJSON') throw NOT_PLAIN;
      if (i > 1) this.byte(COMMA);
      this.string(k);
      this.byte(COLON);
      const t = lists?.get(k);
      if (t === undefined) this.value(v, depth);
      // as value() takes a list, one level deeper
      else this.list(v, depth + 1, t);
    }
  }

  private number(n: number): void {
    // why: -0 passes too and is written 0, as JSON.stringify does
    if (n >= 0 && n <= 0x7fffffff && (n | 0) === n) this.digits(n);
    else if (Number.isSafeInteger(n)) this.bigDigits(n);
    else if (!Number.isFinite(n)) this.lit(NULL);
    else if (!this.fraction(n)) this.ascii(String(n));
  }

  /** 0 <= n < 2^31 */
  private digits(n: number): void {
    let len = 1;
    for (let x = n; x >= 10; x = (x / 10) | 0) len++;
    this.ensure(len);
    const b = this.buf;
    let p = this.pos + len;
    this.pos = p;
    do {
      const q = (n / 10) | 0;
      b[--p] = 0x30 + n - q * 10;
      n = q;
    } while (n > 0);
  }

  /** A safe integer (|n| < 2^53) as 9-digit groups. */
  private bigDigits(n: number): void {
    if (n < 0) {
      this.byte(0x2d);
      n = -n;
    }
    let hi = Math.floor(n / 1e9);
    let lo = n - hi * 1e9;
    // why: n / 1e9 may round up to the next integer; both products are exact, so this corrects it
    if (lo < 0) {
      hi--;
      lo += 1e9;
    }
    if (hi === 0) {
      this.digits(lo);
      return;
    }
    this.digits(hi);
    this.padded(lo, 9);
  }

  /** 0 <= n < 10^width, with leading zeros */
  private padded(n: number, width: number): void {
    this.ensure(width);
    const b = this.buf;
    let p = this.pos + width;
    this.pos = p;
    for (let i = 0; i < width; i++) {
      const q = (n / 10) | 0;
      b[--p] = 0x30 + n - q * 10;
      n = q;
    }
  }

  /**
   * A number with a fraction and an integer part of up to 53 bits (timestamps in ms), written as String(n)
   * writes it: the fewest fraction digits that read back as n, the closest such when there are several.
   * False (nothing written) where that takes more than this exact arithmetic: small magnitudes, a candidate
   * exactly halfway between two doubles or between two candidates.
   */
  private fraction(n: number): boolean {
    const x = Math.abs(n);
    if (x < 2 || x >= 2 ** 53) return false;
    F64[0] = x;
    const e = ((U32[HI]! >>> 20) & 0x7ff) - 1023;
    const whole = Math.floor(x);
    // why: with 2^e <= x < 2^(e+1) the doubles near x are 2^(e-52) apart; in units of half that (`half`) the
    // fraction is an integer f, and whole.m (k digits) reads back as x when m lies strictly between
    // (f - 1) * 10^k * half and (f + 1) * 10^k * half: both exact (integers below 2^53 as 10^k < 2^e, times a
    // power of two), so one floor per digit count finds the candidates
    const half = POW2[e]! / POW2[53]!;
    const f = (x - whole) / half;
    const top = POW2[e]!;
    for (let k = 1, p10 = 10; p10 < top; k++, p10 *= 10) {
      const low = (f - 1) * p10 * half;
      const high = (f + 1) * p10 * half;
      const m = Math.floor(low) + 1;
      // an end that is an integer is a candidate exactly halfway to the next double: String(n) rounds to
      // even there, this does not try
      if (m - 1 === low || Math.floor(high) === high) return false;
      if (m > high) continue;
      let best = m;
      if (m + 1 < high) {
        // several k-digit candidates: the one nearest to x, exact fraction * 10^k
        const exact = (f * p10) * half;
        best = Math.floor(exact);
        const rest = exact - best;
        if (rest === 0.5) return false;
        if (rest > 0.5) best++;
      }
      if (n < 0) this.byte(0x2d);
      if (whole <= 0x7fffffff) this.digits(whole);
      else this.bigDigits(whole);
      this.byte(0x2e);
      this.padded(best, k);
      return true;
    }
    return false;
  }

  private string(s: string): void {
    const n = s.length;
    const cacheable = n >= CACHE_MIN_CHARS && n <= CACHE_MAX_CHARS;
    if (cacheable) {
      const known = this.encoded.get(s);
      if (known) {
        this.bytes(known);
        return;
      }
    }
    this.ensure(n + 2);
    const b = this.buf;
    let p = this.pos;
    b[p++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // why: control characters, quote and backslash need escapes, anything else above ASCII needs UTF-8
      // (and lone surrogates JSON.stringify's \u escapes): all of that is JSON.stringify's to write
      if (c < 0x20 || c >= 0x80 || c === QUOTE || c === BACKSLASH) {
        const start = this.pos;
        this.utf8(JSON.stringify(s));
        if (cacheable) this.remember(s, this.buf.subarray(start, this.pos));
        return;
      }
      b[p++] = c;
    }
    b[p++] = QUOTE;
    if (cacheable) this.remember(s, b.subarray(this.pos, p));
    this.pos = p;
  }

  private remember(s: string, bytes: Buffer): void {
    // why: a capture with many distinct long strings (paths, answers) must not grow the cache without end
    if (this.encoded.size >= CACHE_MAX_ENTRIES) this.encoded.clear();
    this.encoded.set(s, Buffer.from(bytes));
  }

  /** A string of ASCII characters only (number text) */
  private ascii(s: string): void {
    this.ensure(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  utf8(s: string): void {
    this.ensure(s.length * 3);
    this.pos += this.buf.write(s, this.pos);
  }

  /** Constant text: four bytes a store, a loop beats a native copy call at this size. */
  lit(l: Literal): void {
    const src = l.bytes;
    const n = src.length;
    this.ensure(n);
    let p = this.pos;
    const words = l.words;
    const view = this.view;
    for (let i = 0; i < words.length; i++, p += 4) view.setUint32(p, words[i]!, true);
    const b = this.buf;
    for (let i = words.length * 4; i < n; i++) b[p++] = src[i]!;
    this.pos = p;
  }

  private bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** Room for n more bytes: a record larger than what is left moves to a larger buffer. */
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
    this.view = viewOf(bigger);
  }
}

/**
 * How many keys a plain object has after `keys`, when its own keys begin with them in that order; else -1.
 * One for-in compare: far cheaper than reading every member by key.
 */
function keysAfter(o: object, keys: readonly string[]): number {
  if (Object.getPrototypeOf(o) !== Object.prototype) return -1;
  let i = 0;
  for (const k in o) {
    if (i < keys.length && k !== keys[i]) return -1;
    i++;
  }
  return i < keys.length ? -1 : i - keys.length;
}

function viewOf(b: Buffer): DataView {
  return new DataView(b.buffer, b.byteOffset, b.length);
}

/** An array JSON.stringify writes element by element: no subclass, no toJSON of its own. */
function plainArray(a: unknown[]): boolean {
  return Object.getPrototypeOf(a) === Array.prototype && (a as { toJSON?: unknown }).toJSON === undefined;
}

const EMPTY = {};
/** The bits of a double: its exponent is in the high word. */
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
/** 2^0 .. 2^53 (a table: Math.pow took most of the time of a fraction) */
const POW2 = Float64Array.from({ length: 54 }, (_, i) => 2 ** i);

/**
 * True while the built-in prototypes add nothing JSON.stringify would see differently from the for-in walk:
 * no toJSON, no enumerable keys that for-in would list among an object's own (JSON.stringify lists own keys).
 */
function plainPrototypes(): boolean {
  for (const _inherited in EMPTY) return false;
  return (Object.prototype as { toJSON?: unknown }).toJSON === undefined && (Array.prototype as { toJSON?: unknown }).toJSON === undefined;
}
