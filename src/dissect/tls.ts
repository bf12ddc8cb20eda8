// TLS handshake dissector: ClientHello / ServerHello from the first bytes of a TCP stream (a hello may
// span several TLS records and TCP segments), plus the JA3 and JA4 client fingerprints and
// human-readable names for versions and cipher suites. Pure and synchronous: bytes in, records out.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { sharedLatin1 } from './latin1.js';

// Of an extension a hello repeats (illegal, RFC 8446 §4.2, but a client can send it), its first counts: the fields below
// are the first's (see readClientHello), but for supported_versions (every one's values), and only JA3 looks at the
// repeats of supported_groups and ec_point_formats (groupsRepeated, ecPointFormatsRepeated).
export interface ClientHello {
  /** legacy_version from the hello body */
  version: number;
  /** the supported_versions extension's values in wire order (GREASE kept, as sent); of a repeated one, every one's */
  supportedVersions: readonly number[];
  /** cipher suites in wire order (GREASE kept, as sent) */
  ciphers: readonly number[];
  /** extension types in wire order (GREASE kept, as sent) */
  extensions: readonly number[];
  /**
   * The first host_name: UTF-8 text when its bytes are UTF-8 (plain ASCII nearly always: RFC 6066 wants A-labels, but
   * some clients send a U-label as it is), else its ASCII bytes as they are and each other byte (and a backslash) as \xHH.
   */
  sni: string | null;
  /**
   * ALPN protocol names; decoded byte-per-char (latin1) so arbitrary bytes survive. A parsed hello's list is
   * shared with every hello that offers the same one (flows keep it), so it is frozen.
   */
  alpn: string[];
  groups: readonly number[];
  ecPointFormats: readonly number[];
  signatureAlgorithms: readonly number[];
  /** The lists of the supported_groups extensions after the first, when the hello repeats it; absent: none. */
  groupsRepeated?: readonly (readonly number[])[];
  /** The lists of the ec_point_formats extensions after the first, when the hello repeats it; absent: none. */
  ecPointFormatsRepeated?: readonly (readonly number[])[];
  /**
   * The hello came in SSL 2.0's format (RFC 5246 Appendix E.2: a CLIENT-HELLO with a 2-byte record header, as old
   * clients and scanners send to reach a server of any version): no extensions (so no SNI or ALPN), and only its cipher
   * specs of TLS suites (those whose first byte is 0) are in `ciphers`. Absent: a TLS hello.
   */
  sslv2?: boolean;
}

export interface ServerHello {
  version: number;
  /** from supported_versions if present, else legacy version */
  selectedVersion: number;
  cipher: number;
  /** selected ALPN; only visible up to TLS 1.2 (TLS 1.3 sends it in the encrypted EncryptedExtensions) */
  alpn: string | null;
  extensions: number[];
  /**
   * A HelloRetryRequest (RFC 8446 §4.1.3): a ServerHello by its format whose random is HRR_RANDOM. It asks the client
   * for another ClientHello and negotiates nothing yet: the real ServerHello follows that hello.
   */
  retry: boolean;
}

const CONTENT_HANDSHAKE = 0x16;
const HS_CLIENT_HELLO = 1;
const HS_SERVER_HELLO = 2;
const CONTENT_CHANGE_CIPHER_SPEC = 0x14;
/** A HelloRetryRequest's random: SHA-256 of "HelloRetryRequest" (RFC 8446 §4.1.3). */
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');
// why: a ClientHello with post-quantum key shares is ~1.8 KiB; anything beyond 64 KiB is not a hello
// a real client sends, and refusing it bounds how much a caller has to buffer.
export const MAX_HELLO = 0x10000;

const EXT_SERVER_NAME = 0x0000;
const EXT_SUPPORTED_GROUPS = 0x000a;
const EXT_EC_POINT_FORMATS = 0x000b;
const EXT_SIGNATURE_ALGORITHMS = 0x000d;
const EXT_ALPN = 0x0010;
const EXT_SUPPORTED_VERSIONS = 0x002b;

/** GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa. */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
}

/** A handshake message: its type and where its body lies in `buf`. */
interface HandshakeMessage {
  type: number;
  buf: Buffer;
  start: number;
  end: number;
}

/**
 * The first handshake message from a stream prefix of TLS records, null if the bytes are not TLS
 * handshake records, or 'incomplete' if more bytes are needed.
 */
function firstHandshakeMessage(stream: Buffer): HandshakeMessage | null | 'incomplete' {
  // why: a hello nearly always lies whole in the first record: read it in place, no reassembly
  if (stream.length >= 9 && stream[0] === CONTENT_HANDSHAKE && stream[1] === 0x03 && stream[2]! <= 0x04) {
    const len = (stream[3]! << 8) | stream[4]!;
    const end = 9 + ((stream[6]! << 16) | (stream[7]! << 8) | stream[8]!);
    if (len <= 0x4800 && end <= 5 + len && 5 + len <= stream.length) return { type: stream[5]!, buf: stream, start: 9, end };
  }
  return reassembledHandshakeMessage(stream);
}

/** firstHandshakeMessage for a message spread over several records: their fragments joined. */
function reassembledHandshakeMessage(stream: Buffer): HandshakeMessage | null | 'incomplete' {
  const fragments: Buffer[] = [];
  let have = 0;
  let need = -1;
  let off = 0;
  for (;;) {
    if (need >= 0 && have >= need) break;
    if (stream.length - off < 1) return 'incomplete';
    if (stream[off] !== CONTENT_HANDSHAKE) return null;
    if (stream.length - off < 5) {
      // why: reject early when the bytes we do have cannot be a TLS record header
      if (stream.length - off >= 2 && stream[off + 1] !== 0x03) return null;
      return 'incomplete';
    }
    if (stream[off + 1] !== 0x03 || (stream[off + 2] ?? 0) > 0x04) return null;
    const len = stream.readUInt16BE(off + 3);
    if (len === 0 || len > 0x4800) return null;
    if (stream.length - off - 5 < len) {
      // use what is here to decide early whether this is even a hello worth waiting for
      const first = fragments.length > 0 ? fragments[0]![0] : stream[off + 5];
      if (first !== undefined && first !== HS_CLIENT_HELLO && first !== HS_SERVER_HELLO) return null;
      return 'incomplete';
    }
    fragments.push(stream.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const head = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_HELLO) return null;
    }
  }
  const all = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
  return { type: all[0]!, buf: all, start: 4, end: need };
}

// ---- bounds-checked reads ----
// Plain functions over (buf, offset, end) rather than reader objects: a hello is parsed for every TLS flow,
// and readers per vector and extension were a good part of its allocations. A read past `end` throws
// RangeError, which the hello parsers turn into null (not a hello).

/** `at + n`, when n bytes from `at` lie before `end`. */
function fit(at: number, n: number, end: number): number {
  if (end - at < n) throw new RangeError('short');
  return at + n;
}

function u16(buf: Buffer, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

/** Where the vector at `at` with an 8-bit length ends. */
function vec8End(buf: Buffer, at: number, end: number): number {
  fit(at, 1, end);
  return fit(at + 1, buf[at]!, end);
}

/** Where the vector at `at` with a 16-bit length ends. */
function vec16End(buf: Buffer, at: number, end: number): number {
  fit(at, 2, end);
  return fit(at + 2, u16(buf, at), end);
}

/** The first host_name in a server_name extension's data buf[at, end) (all entries checked), or null. */
function serverName(buf: Buffer, at: number, end: number): string | null {
  // (empty extension data, as a server echoes it, is an empty list)
  const listEnd = at === end ? end : vec16End(buf, at, end);
  let name: string | null = null;
  for (at = at === end ? end : at + 2; at < listEnd;) {
    fit(at, 3, listEnd);
    const nameEnd = fit(at + 3, u16(buf, at + 1), listEnd);
    if (buf[at] === 0 && name === null) name = hostName(buf, at + 3, nameEnd);
    at = nameEnd;
  }
  return name;
}

/** A host_name's bytes buf[start, end) as text (see ClientHello.sni). */
function hostName(buf: Buffer, start: number, end: number): string {
  // why the scan: ASCII reads the same as latin1 and as UTF-8, and latin1 is the cheap, shared decoding
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return nonAsciiName(buf, start, end);
  return sharedLatin1(buf, start, end);
}

/**
 * A host_name with bytes past ASCII: UTF-8 text when they are UTF-8; else each such byte (and a backslash, so the
 * escapes read back unambiguously) as \xHH, as control characters are shown (printable): latin1 would show made-up
 * letters, and two different names the same (c3 bc as UTF-8 and fc as latin1 are both "ü").
 */
function nonAsciiName(buf: Buffer, start: number, end: number): string {
  const bytes = buf.subarray(start, end);
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let s = '';
  for (const b of bytes) s += b >= 0x80 || b === 0x5c ? `\\x${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b);
  return s;
}

// why: hellos of one client offer the same ALPN list; flows keep it, so it is one frozen list, not one each
const ALPN_LISTS = new Map<string, string[]>();
const NO_ALPN: string[] = Object.freeze([]) as unknown as string[];

/** The protocol names of an ALPN extension's data buf[at, end) (shared, frozen). */
function alpnList(buf: Buffer, at: number, end: number): string[] {
  const listEnd = vec16End(buf, at, end);
  // the list's bytes (as shared text) name it: equal bytes, equal names
  const bytes = sharedLatin1(buf, at + 2, listEnd);
  const known = ALPN_LISTS.get(bytes);
  if (known !== undefined) return known;
  const names: string[] = [];
  for (at += 2; at < listEnd;) {
    const nameEnd = vec8End(buf, at, listEnd);
    names.push(sharedLatin1(buf, at + 1, nameEnd));
    at = nameEnd;
  }
  if (ALPN_LISTS.size >= 1024) ALPN_LISTS.clear();
  ALPN_LISTS.set(bytes, Object.freeze(names) as string[]);
  return names;
}

// ---- ClientHello ----
// A parsed hello's fingerprint fields are packed into one Uint16Array as they are read, in this order, each
// list preceded by its length: version, flags (FLAG_SNI, FLAG_SSLV2), ciphers, extensions, supported
// versions, groups, EC point formats, signature algorithms; then ALPN: the number of names and each name
// as its length and its bytes; then the repeats of groups and of EC point formats (REPEATS_GROUPS,
// REPEATS_EC_POINT_FORMATS): the number of repeated extensions and each one's list. The analyzer hashes
// these fields to find a hello's fingerprints among those it has already computed; the lists themselves are
// decoded from them only when asked for (JA3/JA4 of a new fingerprint), so a hello costs two objects, not
// eight arrays and their readers.
const LIST_CIPHERS = 0;
const LIST_EXTENSIONS = 1;
const LIST_SUPPORTED_VERSIONS = 2;
const LIST_GROUPS = 3;
const LIST_EC_POINT_FORMATS = 4;
const LIST_SIGNATURE_ALGORITHMS = 5;
const FIRST_LIST = 2;
const REPEATS_GROUPS = 0;
const REPEATS_EC_POINT_FORMATS = 1;
/** In the flags word: the hello has a server_name extension. */
const FLAG_SNI = 1;
/** In the flags word: the hello came in SSL 2.0's format (no JA3 for it, see ClientHello.sslv2 and Analyzer.applyClientHello). */
const FLAG_SSLV2 = 2;

class PackedClientHello implements ClientHello {
  constructor(readonly fields: Uint16Array, readonly sni: string | null, readonly alpn: string[]) {}
  get version(): number {
    return this.fields[0]!;
  }
  get sslv2(): boolean {
    return (this.fields[1]! & FLAG_SSLV2) !== 0;
  }
  get ciphers(): readonly number[] {
    return packedList(this.fields, LIST_CIPHERS);
  }
  get extensions(): readonly number[] {
    return packedList(this.fields, LIST_EXTENSIONS);
  }
  get supportedVersions(): readonly number[] {
    return packedList(this.fields, LIST_SUPPORTED_VERSIONS);
  }
  get groups(): readonly number[] {
    return packedList(this.fields, LIST_GROUPS);
  }
  get ecPointFormats(): readonly number[] {
    return packedList(this.fields, LIST_EC_POINT_FORMATS);
  }
  get signatureAlgorithms(): readonly number[] {
    return packedList(this.fields, LIST_SIGNATURE_ALGORITHMS);
  }
  get groupsRepeated(): readonly (readonly number[])[] | undefined {
    return packedRepeats(this.fields, REPEATS_GROUPS);
  }
  get ecPointFormatsRepeated(): readonly (readonly number[])[] | undefined {
    return packedRepeats(this.fields, REPEATS_EC_POINT_FORMATS);
  }
}

/** The k-th list of packed fields, as a new array. */
function packedList(fields: Uint16Array, k: number): number[] {
  let at = FIRST_LIST;
  for (let i = 0; i < k; i++) at += 1 + fields[at]!;
  // why a loop: Array.from walks a typed array through its iterator, an object per value
  const list = new Array<number>(fields[at]!);
  for (let i = 0; i < list.length; i++) list[i] = fields[at + 1 + i]!;
  return list;
}

/** The k-th block of repeated lists after the ALPN names (see PackedClientHello), as new arrays; undefined when empty. */
function packedRepeats(fields: Uint16Array, k: number): number[][] | undefined {
  let at = FIRST_LIST;
  for (let i = 0; i <= LIST_SIGNATURE_ALGORITHMS; i++) at += 1 + fields[at]!;
  for (let names = fields[at++]!; names > 0; names--) at += 1 + fields[at]!;
  for (let i = 0; i < k; i++) for (let lists = fields[at++]!; lists > 0; lists--) at += 1 + fields[at]!;
  const lists: number[][] = [];
  for (let n = fields[at++]!; n > 0; n--) {
    lists.push(Array.from(fields.subarray(at + 1, at + 1 + fields[at]!)));
    at += 1 + fields[at]!;
  }
  return lists.length > 0 ? lists : undefined;
}

/**
 * A hello's fingerprint fields, packed (see PackedClientHello): equal fields, equal JA3 and JA4 (for one
 * transport). A parsed hello's own; another hello's packed anew.
 */
export function helloFields(ch: ClientHello): Uint16Array {
  if (ch instanceof PackedClientHello) return ch.fields;
  const lists = [ch.ciphers, ch.extensions, ch.supportedVersions, ch.groups, ch.ecPointFormats, ch.signatureAlgorithms];
  const out: number[] = [ch.version, (ch.sni === null ? 0 : FLAG_SNI) | (ch.sslv2 === true ? FLAG_SSLV2 : 0)];
  for (const list of lists) out.push(list.length, ...list);
  out.push(ch.alpn.length);
  for (const name of ch.alpn) out.push(name.length, ...Buffer.from(name, 'latin1'));
  for (const repeats of [ch.groupsRepeated ?? [], ch.ecPointFormatsRepeated ?? []]) {
    out.push(repeats.length);
    for (const list of repeats) out.push(list.length, ...list);
  }
  return Uint16Array.from(out);
}

// why: hellos' fields are cut from shared blocks (a view each, no buffer each). A block stays alive while a
// hello cut from it does; the analyzer keeps none (it copies the few distinct ones), and blocks are small
// (16 KiB, some 70 hellos) so that a caller keeping some hellos does not keep much more than them.
const BLOCK = 0x2000;
let block = new Uint16Array(BLOCK);
let blockUsed = 0;

/** Room for at least n fields at block[blockUsed]. */
function reserve(n: number): void {
  if (block.length - blockUsed >= n) return;
  block = new Uint16Array(Math.max(BLOCK, n));
  blockUsed = 0;
}

/** Writes the count and the 16-bit values of buf[at, end) (a trailing odd byte skipped) at out[w]; returns the next w. */
function putU16s(out: Uint16Array, w: number, buf: Buffer, at: number, end: number): number {
  const n = (end - at) >> 1;
  out[w++] = n;
  for (let i = 0; i < n; i++, at += 2) out[w++] = u16(buf, at);
  return w;
}

export function parseClientHello(stream: Buffer): ClientHello | null | 'incomplete' {
  const msg = firstHandshakeMessage(stream);
  // (SSL 2.0's format asked for only when the bytes are no TLS records: the common path pays nothing for it)
  if (msg === null) return stream[0]! >= 0x80 ? parseSslv2ClientHello(stream) : null;
  if (msg === 'incomplete') return msg;
  if (msg.type !== HS_CLIENT_HELLO) return null;
  return parseClientHelloBody(msg.buf, msg.start, msg.end);
}

/**
 * A ClientHello from a bare handshake message (4-byte handshake header + body), as carried without TLS
 * records by QUIC CRYPTO frames. 'incomplete' until the whole message is there.
 */
export function parseClientHelloMessage(msg: Buffer): ClientHello | null | 'incomplete' {
  if (msg.length < 4) return msg.length > 0 && msg[0] !== HS_CLIENT_HELLO ? null : 'incomplete';
  if (msg[0] !== HS_CLIENT_HELLO) return null;
  const len = msg.readUIntBE(1, 3);
  if (len + 4 > MAX_HELLO) return null;
  if (msg.length < 4 + len) return 'incomplete';
  return parseClientHelloBody(msg, 4, 4 + len);
}

/** A ClientHello's body buf[start, end) (after its handshake header); null when malformed. */
export function parseClientHelloBody(buf: Buffer, start: number, end: number): ClientHello | null {
  try {
    return readClientHello(buf, start, end);
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

/** The hello body buf[start, end), its fields packed at block[blockUsed]. */
function readClientHello(buf: Buffer, start: number, end: number): PackedClientHello {
  // why this bound: each word but eleven (the version, the flags, and the nine counts: ciphers, extension types,
  // versions, groups, point formats, signatures, ALPN, repeated groups, repeated points) takes at least one byte of the
  // hello's own
  reserve(end - start + 11);
  const out = block;
  const first = blockUsed;
  let at = vec8End(buf, fit(start, 34, end), end); // version, random, session id
  out[first] = u16(buf, start);
  let w = first + 2;
  const ciphersEnd = vec16End(buf, at, end);
  w = putU16s(out, w, buf, at + 2, ciphersEnd);
  at = vec8End(buf, ciphersEnd, end); // compression methods
  const typesAt = w++;
  let sni: string | null = null;
  let alpn: string[] | null = null;
  // why the first of a repeated extension (and each one still checked): FoxIO's JA4 reference takes the first ALPN name
  // (tshark's first tls.handshake.extensions_alpn_str) and the first signature_algorithms extension's list, as the JA4
  // spec's "first ALPN value" says; a client repeating one must not shape its JA4 here unlike there. Of supported_versions
  // it takes the highest of every tshark supported_version value, so every extension's are kept. Where each first one's
  // data begins (-1: none), and where the repeats' do (null: none)
  let versions = -1;
  let moreVersions: number[] | null = null;
  let groups = -1;
  let points = -1;
  let signatures = -1;
  let moreGroups: number[] | null = null;
  let morePoints: number[] | null = null;
  const extsEnd = at === end ? end : vec16End(buf, at, end);
  for (at = at === end ? end : at + 2; at < extsEnd;) {
    fit(at, 4, extsEnd);
    const type = u16(buf, at);
    const data = at + 4;
    const dataEnd = fit(data, u16(buf, at + 2), extsEnd);
    out[w++] = type;
    switch (type) {
      case EXT_SERVER_NAME: {
        const name = serverName(buf, data, dataEnd);
        if (sni === null) sni = name;
        break;
      }
      case EXT_ALPN: {
        const names = alpnList(buf, data, dataEnd);
        alpn ??= names;
        break;
      }
      case EXT_SUPPORTED_VERSIONS:
        vec8End(buf, data, dataEnd);
        if (versions < 0) versions = data;
        else (moreVersions ??= []).push(data);
        break;
      case EXT_SUPPORTED_GROUPS:
        vec16End(buf, data, dataEnd);
        if (groups < 0) groups = data;
        else (moreGroups ??= []).push(data);
        break;
      case EXT_EC_POINT_FORMATS:
        vec8End(buf, data, dataEnd);
        if (points < 0) points = data;
        else (morePoints ??= []).push(data);
        break;
      case EXT_SIGNATURE_ALGORITHMS:
        vec16End(buf, data, dataEnd);
        if (signatures < 0) signatures = data;
        break;
      default:
        break;
    }
    at = dataEnd;
  }
  out[typesAt] = w - typesAt - 1;
  out[first + 1] = sni === null ? 0 : FLAG_SNI;
  w = versions < 0 ? putNone(out, w) : putVersions(out, w, buf, versions, moreVersions);
  w = groups < 0 ? putNone(out, w) : putGroups(out, w, buf, groups);
  w = points < 0 ? putNone(out, w) : putPoints(out, w, buf, points);
  w = signatures < 0 ? putNone(out, w) : putU16s(out, w, buf, signatures + 2, signatures + 2 + u16(buf, signatures));
  alpn ??= NO_ALPN;
  out[w++] = alpn.length;
  for (let k = 0; k < alpn.length; k++) {
    const name = alpn[k]!;
    out[w++] = name.length;
    for (let i = 0; i < name.length; i++) out[w++] = name.charCodeAt(i);
  }
  out[w++] = moreGroups?.length ?? 0;
  for (const at of moreGroups ?? []) w = putGroups(out, w, buf, at);
  out[w++] = morePoints?.length ?? 0;
  for (const at of morePoints ?? []) w = putPoints(out, w, buf, at);
  blockUsed = w;
  return new PackedClientHello(new Uint16Array(out.buffer, first * 2, w - first), sni, alpn);
}

/**
 * The versions of the supported_versions extensions whose data begins at buf[first] and at each of `more` (as one list,
 * their 16-bit values; a trailing odd byte skipped), at out[w]; returns the next w.
 */
function putVersions(out: Uint16Array, w: number, buf: Buffer, first: number, more: readonly number[] | null): number {
  if (more === null) return putU16s(out, w, buf, first + 1, first + 1 + buf[first]!);
  const countAt = w++;
  for (const at of [first, ...more]) for (let v = at + 1, end = v + (buf[at]! & ~1); v < end; v += 2) out[w++] = u16(buf, v);
  out[countAt] = w - countAt - 1;
  return w;
}

/** The named groups of the supported_groups extension whose data begins at buf[at], at out[w]; returns the next w. */
function putGroups(out: Uint16Array, w: number, buf: Buffer, at: number): number {
  return putU16s(out, w, buf, at + 2, at + 2 + u16(buf, at));
}

/** The formats of the ec_point_formats extension whose data begins at buf[at] (a byte each), at out[w]; returns the next w. */
function putPoints(out: Uint16Array, w: number, buf: Buffer, at: number): number {
  const n = buf[at]!;
  out[w++] = n;
  for (let i = 1; i <= n; i++) out[w++] = buf[at + i]!;
  return w;
}

/** An empty list at out[w]; returns the next w. */
function putNone(out: Uint16Array, w: number): number {
  out[w] = 0;
  return w + 1;
}

// ---- SSL 2.0's ClientHello (RFC 5246 Appendix E.2) ----
// A 2-byte record header, its high bit set and the rest the length, then: msg_type 1, version, the lengths of the
// cipher specs, session id and challenge (16 bits each), 3-byte cipher specs, session id, challenge.
const SSLV2_HEADER = 2;
const SSLV2_FIXED = 9;

/**
 * Where the SSL 2.0 CLIENT-HELLO at the stream's start ends, when its 11 bytes of header (record header, type,
 * version, three lengths) are one; null when they are not; 'incomplete' while fewer are here and those are. Strict
 * (lengths that add up to the record's, cipher specs of 3 bytes, session id and challenge of the lengths SSL 2.0
 * allows): any first byte from 0x80 begins this, so it must not take another protocol's bytes for a hello.
 */
export function sslv2HelloEnd(stream: Buffer): number | null | 'incomplete' {
  const n = stream.length;
  if (n < 1 || stream[0]! < 0x80) return null;
  if (n >= 3 && stream[2] !== HS_CLIENT_HELLO) return null;
  // version: SSL 2.0 (0x0002), or SSL 3.0 to TLS 1.3 (3.x: a client that offers more speaks SSL 2.0's format to reach old servers)
  if (n >= 4 && stream[3] !== 0x00 && stream[3] !== 0x03) return null;
  if (n >= 5 && (stream[3] === 0x00 ? stream[4] !== 0x02 : stream[4]! > 0x04)) return null;
  if (n < SSLV2_HEADER + SSLV2_FIXED) return 'incomplete';
  const len = ((stream[0]! & 0x7f) << 8) | stream[1]!;
  const specs = u16(stream, 5);
  const session = u16(stream, 7);
  const challenge = u16(stream, 9);
  if (specs === 0 || specs % 3 !== 0 || (session !== 0 && session !== 16) || challenge < 16 || challenge > 32) return null;
  return SSLV2_FIXED + specs + session + challenge === len ? SSLV2_HEADER + len : null;
}

function parseSslv2ClientHello(stream: Buffer): ClientHello | null | 'incomplete' {
  const end = sslv2HelloEnd(stream);
  if (end === null || end === 'incomplete') return end;
  if (stream.length < end) return 'incomplete';
  const specs = u16(stream, 5);
  reserve(specs / 3 + 11);
  const out = block;
  const first = blockUsed;
  out[first] = u16(stream, 3);
  out[first + 1] = FLAG_SSLV2;
  let w = first + FIRST_LIST;
  const ciphersAt = w++;
  // (a spec whose first byte is 0 is the TLS suite of its other two; the others are SSL 2.0's own: no TLS suite, in no fingerprint)
  for (let at = SSLV2_HEADER + SSLV2_FIXED, specsEnd = at + specs; at < specsEnd; at += 3) if (stream[at] === 0) out[w++] = u16(stream, at + 1);
  out[ciphersAt] = w - ciphersAt - 1;
  // extensions, supported versions, groups, EC point formats, signature algorithms, ALPN, repeats: none
  for (let k = 0; k < 8; k++) w = putNone(out, w);
  blockUsed = w;
  return new PackedClientHello(new Uint16Array(out.buffer, first * 2, w - first), null, NO_ALPN);
}

export function parseServerHello(stream: Buffer): ServerHello | null | 'incomplete' {
  const msg = firstHandshakeMessage(stream);
  if (msg === null || msg === 'incomplete') return msg;
  if (msg.type !== HS_SERVER_HELLO) return null;
  return parseServerHelloBody(msg.buf, msg.start, msg.end);
}

/** A ServerHello's body buf[start, end) (after its handshake header, as DTLS's is once put together); null when malformed. */
export function parseServerHelloBody(buf: Buffer, start: number, end: number): ServerHello | null {
  try {
    return readServerHello(buf, start, end);
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

function readServerHello(buf: Buffer, start: number, end: number): ServerHello {
  let at = vec8End(buf, fit(start, 34, end), end); // version, random, session id
  const version = u16(buf, start);
  const cipher = u16(buf, fit(at, 3, end) - 3);
  at += 3; // cipher, compression method
  let selectedVersion = version;
  let alpn: string | null = null;
  // (each extension takes at least four bytes)
  if (TYPES.length < (end - start) >> 2) TYPES = new Uint16Array((end - start) >> 2);
  let types = 0;
  const extsEnd = at === end ? end : vec16End(buf, at, end);
  for (at = at === end ? end : at + 2; at < extsEnd;) {
    fit(at, 4, extsEnd);
    const type = u16(buf, at);
    const data = at + 4;
    const dataEnd = fit(data, u16(buf, at + 2), extsEnd);
    TYPES[types++] = type;
    if (type === EXT_SUPPORTED_VERSIONS && dataEnd - data >= 2) selectedVersion = u16(buf, data);
    else if (type === EXT_ALPN) alpn = alpnList(buf, data, dataEnd)[0] ?? null;
    at = dataEnd;
  }
  // why gathered first: a list sized once (pushing to an empty list sized it for 17)
  const extensions = new Array<number>(types);
  for (let i = 0; i < types; i++) extensions[i] = TYPES[i]!;
  return { version, selectedVersion, cipher, alpn, extensions, retry: isRetryRandom(buf, start + 2) };
}

/** Whether the 32-byte random at buf[at] is a HelloRetryRequest's. */
function isRetryRandom(buf: Buffer, at: number): boolean {
  for (let i = 0; i < 32; i++) if (buf[at + i] !== HRR_RANDOM[i]) return false;
  return true;
}

/**
 * Where the server's next hello begins in its stream `stream`, which begins with the record of a HelloRetryRequest: past
 * the records that carry it and the change_cipher_spec records a server in compatibility mode sends right after it
 * (RFC 8446 Appendix D.4). -1 while the bytes so far end before a record of another kind begins.
 */
export function afterHelloRetry(stream: Buffer): number {
  let at = 0;
  let have = 0;
  let need = -1;
  // (the message's 4-byte header may itself be cut across records)
  let header = 0;
  let headerBytes = 0;
  while (need < 0 || have < need) {
    if (stream.length - at < RECORD_HEADER || stream[at] !== CONTENT_HANDSHAKE) return -1;
    const from = at + RECORD_HEADER;
    const end = from + u16(stream, at + 3);
    if (end > stream.length) return -1;
    for (let i = from; i < end && headerBytes < 4; i++, headerBytes++) header = header * 256 + stream[i]!;
    have += end - from;
    if (need < 0 && headerBytes === 4) need = 4 + (header & 0xffffff);
    at = end;
  }
  while (at < stream.length && stream[at] === CONTENT_CHANGE_CIPHER_SPEC) {
    if (stream.length - at < RECORD_HEADER) return -1;
    at += RECORD_HEADER + u16(stream, at + 3);
  }
  return at < stream.length ? at : -1;
}

// A ServerHello's extension types as read (reused)
let TYPES = new Uint16Array(64);

function noGrease(list: readonly number[]): number[] {
  return list.filter((v) => !isGrease(v));
}

/** Classic JA3 (Salesforce): version,ciphers,extensions,groups,point formats in decimal, GREASE removed, md5. */
export function ja3(ch: ClientHello): { string: string; hash: string } {
  const s = [
    String(ch.version),
    listText(noGrease(ch.ciphers), false, 0x2d),
    listText(noGrease(ch.extensions), false, 0x2d),
    // why each repeat of supported_groups or ec_point_formats as a field of its own, after a comma: tshark's
    // tls.handshake.ja3 writes a hello that repeats one so ("29,24" for two groups extensions, "0-1-2,1" for two point
    // format ones), and the same bytes are to give the same JA3 here as there (the Salesforce script takes the last)
    [ch.groups, ...(ch.groupsRepeated ?? [])].map((list) => listText(noGrease(list), false, 0x2d)).join(','),
    [ch.ecPointFormats, ...(ch.ecPointFormatsRepeated ?? [])].map((list) => listText(list, false, 0x2d)).join(','),
  ].join(',');
  return { string: s, hash: createHash('md5').update(s).digest('hex') };
}

const JA4_VERSIONS: Record<number, string> = {
  0x0304: '13', 0x0303: '12', 0x0302: '11', 0x0301: '10', 0x0300: 's3', 0x0002: 's2',
  0xfeff: 'd1', 0xfefd: 'd2', 0xfefc: 'd3',
};

function hex4(v: number): string {
  return v.toString(16).padStart(4, '0');
}

const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
let listBytes = Buffer.allocUnsafe(1024);

/**
 * 16-bit values as text joined by `sep`: four lowercase hex digits each (`hex`), else decimal. Written as bytes: a hello
 * of thousands of suites, different on every connection, spent most of its fingerprinting joining strings.
 */
function listText(values: ArrayLike<number>, hex: boolean, sep: number): string {
  if (listBytes.length < values.length * 6) listBytes = Buffer.allocUnsafe(values.length * 6);
  const b = listBytes;
  let o = 0;
  for (let i = 0; i < values.length; i++) {
    if (i > 0) b[o++] = sep;
    // (a hello's lists are of 16-bit values)
    const v = values[i]! & 0xffff;
    if (hex) {
      b[o] = DIGITS[v >> 12]!;
      b[o + 1] = DIGITS[(v >> 8) & 15]!;
      b[o + 2] = DIGITS[(v >> 4) & 15]!;
      b[o + 3] = DIGITS[v & 15]!;
      o += 4;
      continue;
    }
    if (v >= 10000) b[o++] = 48 + ((v / 10000) | 0);
    if (v >= 1000) b[o++] = 48 + (((v / 1000) | 0) % 10);
    if (v >= 100) b[o++] = 48 + (((v / 100) | 0) % 10);
    if (v >= 10) b[o++] = 48 + (((v / 10) | 0) % 10);
    b[o++] = 48 + (v % 10);
  }
  return b.toString('latin1', 0, o);
}

/** The values as hex4 text, in ascending order (that of the text too: four lowercase hex digits each), joined by commas. */
function sortedHex(values: readonly number[]): string {
  return listText(Uint16Array.from(values).sort(), true, 0x2c);
}

function sha12(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** JA4_a's ALPN part: first and last char of the first ALPN value, hex rules when not alphanumeric. */
function ja4Alpn(alpn: string[]): string {
  const first = alpn[0];
  if (first === undefined || first.length === 0) return '00';
  const bytes = Buffer.from(first, 'latin1');
  const a = bytes[0]!;
  const z = bytes[bytes.length - 1]!;
  if (isAlnum(a) && isAlnum(z)) return String.fromCharCode(a) + String.fromCharCode(z);
  const h = bytes.toString('hex');
  return h[0]! + h[h.length - 1]!;
}

/** What carried a ClientHello: TCP (TLS), QUIC's Initial packets, or DTLS records over UDP; JA4's first letter. */
export type HelloTransport = 'tcp' | 'quic' | 'dtls';

/** The three JA4 sections before hashing (JA4_r), useful for debugging and partial matching. */
export function ja4Raw(ch: ClientHello, transport: HelloTransport): { a: string; ciphers: string; extensions: string } {
  const versions = noGrease(ch.supportedVersions);
  // why: the spec takes the highest supported_versions value when the extension exists: numerically for TLS; DTLS's
  // numbers run backwards (DTLS 1.3 is 0xfefc, 1.2 0xfefd), so its highest is the smallest
  const ver = versions.length > 0 && ch.extensions.includes(EXT_SUPPORTED_VERSIONS) ? (transport === 'dtls' ? Math.min(...versions) : Math.max(...versions)) : ch.version;
  const ciphers = noGrease(ch.ciphers);
  const exts = noGrease(ch.extensions);
  const count = (n: number): string => String(Math.min(n, 99)).padStart(2, '0');
  const a = (transport === 'quic' ? 'q' : transport === 'dtls' ? 'd' : 't') + (JA4_VERSIONS[ver] ?? '00') + (exts.includes(EXT_SERVER_NAME) ? 'd' : 'i') +
    count(ciphers.length) + count(exts.length) + ja4Alpn(ch.alpn);
  const sortedCiphers = sortedHex(ciphers);
  const sortedExts = sortedHex(exts.filter((e) => e !== EXT_SERVER_NAME && e !== EXT_ALPN));
  const sigs = listText(noGrease(ch.signatureAlgorithms), true, 0x2c);
  return { a, ciphers: sortedCiphers, extensions: sigs.length > 0 ? `${sortedExts}_${sigs}` : sortedExts };
}

/** FoxIO JA4 (a_b_c) per https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md */
export function ja4(ch: ClientHello, transport: HelloTransport): string {
  const raw = ja4Raw(ch, transport);
  const b = raw.ciphers.length === 0 ? '000000000000' : sha12(raw.ciphers);
  // why: the spec sets JA4_c to zeros when the sorted extension list (without SNI/ALPN) is empty
  const c = raw.extensions.length === 0 || raw.extensions.startsWith('_') ? '000000000000' : sha12(raw.extensions);
  return `${raw.a}_${b}_${c}`;
}

export function tlsVersionName(v: number): string {
  switch (v) {
    case 0x0002: return 'SSL 2.0';
    case 0x0300: return 'SSL 3.0';
    case 0x0301: return 'TLS 1.0';
    case 0x0302: return 'TLS 1.1';
    case 0x0303: return 'TLS 1.2';
    case 0x0304: return 'TLS 1.3';
    case 0xfeff: return 'DTLS 1.0';
    case 0xfefd: return 'DTLS 1.2';
    case 0xfefc: return 'DTLS 1.3';
    default:
      if (isGrease(v)) return 'GREASE';
      return `0x${hex4(v)}`;
  }
}

// IANA TLS cipher suite registry: the suites real clients and servers still offer.
const CIPHERS: Record<number, string> = {
  0x0000: 'TLS_NULL_WITH_NULL_NULL',
  0x0004: 'TLS_RSA_WITH_RC4_128_MD5',
  0x0005: 'TLS_RSA_WITH_RC4_128_SHA',
  0x000a: 'TLS_RSA_WITH_3DES_EDE_CBC_SHA',
  0x0016: 'TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA',
  0x002f: 'TLS_RSA_WITH_AES_128_CBC_SHA',
  0x0032: 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA',
  0x0033: 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA',
  0x0035: 'TLS_RSA_WITH_AES_256_CBC_SHA',
  0x0038: 'TLS_DHE_DSS_WITH_AES_256_CBC_SHA',
  0x0039: 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA',
  0x003c: 'TLS_RSA_WITH_AES_128_CBC_SHA256',
  0x003d: 'TLS_RSA_WITH_AES_256_CBC_SHA256',
  0x0040: 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA256',
  0x0067: 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA256',
  0x006a: 'TLS_DHE_DSS_WITH_AES_256_CBC_SHA256',
  0x006b: 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA256',
  0x008c: 'TLS_PSK_WITH_AES_128_CBC_SHA',
  0x008d: 'TLS_PSK_WITH_AES_256_CBC_SHA',
  0x009c: 'TLS_RSA_WITH_AES_128_GCM_SHA256',
  0x009d: 'TLS_RSA_WITH_AES_256_GCM_SHA384',
  0x009e: 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
  0x009f: 'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384',
  0x00a2: 'TLS_DHE_DSS_WITH_AES_128_GCM_SHA256',
  0x00a3: 'TLS_DHE_DSS_WITH_AES_256_GCM_SHA384',
  0x00a8: 'TLS_PSK_WITH_AES_128_GCM_SHA256',
  0x00a9: 'TLS_PSK_WITH_AES_256_GCM_SHA384',
  0x00aa: 'TLS_DHE_PSK_WITH_AES_128_GCM_SHA256',
  0x00ab: 'TLS_DHE_PSK_WITH_AES_256_GCM_SHA384',
  0x00ff: 'TLS_EMPTY_RENEGOTIATION_INFO_SCSV',
  0x1301: 'TLS_AES_128_GCM_SHA256',
  0x1302: 'TLS_AES_256_GCM_SHA384',
  0x1303: 'TLS_CHACHA20_POLY1305_SHA256',
  0x1304: 'TLS_AES_128_CCM_SHA256',
  0x1305: 'TLS_AES_128_CCM_8_SHA256',
  0x5600: 'TLS_FALLBACK_SCSV',
  0xc008: 'TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA',
  0xc009: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA',
  0xc00a: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA',
  0xc012: 'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA',
  0xc013: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
  0xc014: 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA',
  0xc023: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
  0xc024: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384',
  0xc027: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
  0xc028: 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384',
  0xc02b: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  0xc02c: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  0xc02f: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  0xc030: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  0xc035: 'TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA',
  0xc036: 'TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA',
  0xc09c: 'TLS_RSA_WITH_AES_128_CCM',
  0xc09d: 'TLS_RSA_WITH_AES_256_CCM',
  0xc09e: 'TLS_DHE_RSA_WITH_AES_128_CCM',
  0xc09f: 'TLS_DHE_RSA_WITH_AES_256_CCM',
  0xc0a0: 'TLS_RSA_WITH_AES_128_CCM_8',
  0xc0a1: 'TLS_RSA_WITH_AES_256_CCM_8',
  0xc0a2: 'TLS_DHE_RSA_WITH_AES_128_CCM_8',
  0xc0a3: 'TLS_DHE_RSA_WITH_AES_256_CCM_8',
  0xc0ac: 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM',
  0xc0ad: 'TLS_ECDHE_ECDSA_WITH_AES_256_CCM',
  0xc0ae: 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8',
  0xc0af: 'TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8',
  0xcca8: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  0xcca9: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  0xccaa: 'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  0xccab: 'TLS_PSK_WITH_CHACHA20_POLY1305_SHA256',
  0xccac: 'TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256',
  0xccad: 'TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256',
};

export function cipherName(c: number): string {
  return CIPHERS[c] ?? (isGrease(c) ? `GREASE (0x${hex4(c)})` : `0x${hex4(c)}`);
}

// ---- TLS taken up in the middle (the capture began after the handshake) ----

/** the longest record a peer may send: TLS 1.2's ciphertext bound (2^14 + 2048 bytes; TLS 1.3's is 2^14 + 256) */
export const MAX_RECORD = 16384 + 2048;
export const RECORD_HEADER = 5;

/** The length (header included) of the record whose header is at `at`, when one plausibly is (types 20-23, TLS 1.0-1.3); else 0. */
function recordAt(buf: Buffer, at: number): number {
  const type = buf[at]!;
  if (type < 0x14 || type > 0x17 || buf[at + 1] !== 3) return 0;
  const minor = buf[at + 2]!;
  const len = (buf[at + 3]! << 8) | buf[at + 4]!;
  return minor >= 1 && minor <= 4 && len > 0 && len <= MAX_RECORD ? RECORD_HEADER + len : 0;
}

/**
 * Where TLS records begin in the bytes of a connection taken up in the middle, as a capture that began after its
 * handshake takes it up: the first offset from which record headers, of one version, follow each other to the end of
 * `buf` (the last record may be cut off there). Taken up inside a record, the first whole one starts later: from an
 * offset other than 0 at least two headers must chain (a chance match of 2 × 5 bytes of ciphertext is then as good
 * as impossible). -1: none (yet: a record may start past a first segment's bytes).
 */
export function midstreamRecords(buf: Buffer, progress?: { from: number }): number {
  const last = Math.min(buf.length - RECORD_HEADER, MAX_RECORD + RECORD_HEADER);
  // (with `progress`, the bytes grow between calls: an offset whose chain broke inside them is ruled out for good,
  // and the next call resumes at the first one not ruled out, so a connection's bytes are looked through about once)
  let open = -1;
  let at = progress?.from ?? 0;
  for (; at <= last; at++) {
    let p = at;
    let n = 0;
    while (p + RECORD_HEADER <= buf.length) {
      const len = recordAt(buf, p);
      if (len === 0 || buf[p + 2] !== buf[at + 2]) break;
      p += len;
      n++;
    }
    // (the chain ran to the end: past it, or into a header cut off there)
    if (p + RECORD_HEADER > buf.length) {
      if (n >= (at === 0 ? 1 : 2)) return at;
      if (open < 0) open = at;
    }
  }
  if (progress) progress.from = open >= 0 ? open : Math.max(at, progress.from);
  return -1;
}
