// TLS handshake dissector: ClientHello / ServerHello from the first bytes of a TCP stream (a hello may
// span several TLS records and TCP segments), plus the JA3 and JA4 client fingerprints and
// human-readable names for versions and cipher suites. Pure and synchronous: bytes in, records out.
import { createHash } from 'node:crypto';
import { sharedLatin1 } from './latin1.js';

export interface ClientHello {
  /** legacy_version from the hello body */
  version: number;
  /** supported_versions extension values in wire order (GREASE kept, as sent) */
  supportedVersions: number[];
  /** cipher suites in wire order (GREASE kept, as sent) */
  ciphers: number[];
  /** extension types in wire order (GREASE kept, as sent) */
  extensions: number[];
  sni: string | null;
  /** ALPN protocol names; decoded byte-per-char (latin1) so arbitrary bytes survive */
  alpn: string[];
  groups: number[];
  ecPointFormats: number[];
  signatureAlgorithms: number[];
}

export interface ServerHello {
  version: number;
  /** from supported_versions if present, else legacy version */
  selectedVersion: number;
  cipher: number;
  /** selected ALPN; only visible up to TLS 1.2 (TLS 1.3 sends it in the encrypted EncryptedExtensions) */
  alpn: string | null;
  extensions: number[];
}

const CONTENT_HANDSHAKE = 0x16;
const HS_CLIENT_HELLO = 1;
const HS_SERVER_HELLO = 2;
// why: a ClientHello with post-quantum key shares is ~1.8 KiB; anything beyond 64 KiB is not a hello
// a real client sends, and refusing it bounds how much a caller has to buffer.
const MAX_HELLO = 0x10000;

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

/**
 * Bounds-checked big-endian reader over buf[off, end); every read past the end throws RangeError.
 * Nested vectors share the buffer (offsets, no subarray): hellos are parsed for every TLS flow.
 */
class Reader {
  constructor(readonly buf: Buffer, public off = 0, public end = buf.length) {}
  get left(): number {
    return this.end - this.off;
  }
  u8(): number {
    if (this.left < 1) throw new RangeError('short');
    return this.buf[this.off++]!;
  }
  u16(): number {
    if (this.left < 2) throw new RangeError('short');
    const v = (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
    this.off += 2;
    return v;
  }
  skip(n: number): void {
    if (this.left < n) throw new RangeError('short');
    this.off += n;
  }
  /** The next n bytes as latin1 text (short text shared, see sharedLatin1). */
  text(n: number): string {
    if (this.left < n) throw new RangeError('short');
    const s = sharedLatin1(this.buf, this.off, this.off + n);
    this.off += n;
    return s;
  }
  private sub(n: number): Reader {
    if (this.left < n) throw new RangeError('short');
    const r = new Reader(this.buf, this.off, this.off + n);
    this.off += n;
    return r;
  }
  vec8(): Reader {
    return this.sub(this.u8());
  }
  vec16(): Reader {
    return this.sub(this.u16());
  }
  /** Skips a vector with an 8-bit length. */
  skipVec8(): void {
    this.skip(this.u8());
  }
  /** A vector with a 16-bit (`wide`) or 8-bit length, as 16-bit values (a trailing odd byte is skipped). */
  u16Vec(wide: boolean): number[] {
    const len = wide ? this.u16() : this.u8();
    if (this.left < len) throw new RangeError('short');
    const n = len >> 1;
    // why: sized once (pushing ~30 cipher suites grew the array several times), read straight from the bytes
    const out = new Array<number>(n);
    const buf = this.buf;
    for (let i = 0, o = this.off; i < n; i++, o += 2) out[i] = (buf[o]! << 8) | buf[o + 1]!;
    this.off += len;
    return out;
  }
}

/**
 * Walks a hello's extensions block in place: next() moves to the following extension, `data` then reads
 * its body. One reader for all of them (moved by next()), not one per extension: most are only listed.
 */
class Extensions {
  type = -1;
  readonly data: Reader;
  private readonly all: Reader | null;
  constructor(hello: Reader) {
    this.all = hello.left === 0 ? null : hello.vec16();
    this.data = new Reader(hello.buf, 0, 0);
  }
  next(): boolean {
    const all = this.all;
    if (all === null || all.left === 0) return false;
    this.type = all.u16();
    const len = all.u16();
    this.data.off = all.off;
    all.skip(len);
    this.data.end = all.off;
    return true;
  }
}

export function parseClientHello(stream: Buffer): ClientHello | null | 'incomplete' {
  const msg = firstHandshakeMessage(stream);
  if (msg === null || msg === 'incomplete') return msg;
  if (msg.type !== HS_CLIENT_HELLO) return null;
  return parseClientHelloBody(new Reader(msg.buf, msg.start, msg.end));
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
  return parseClientHelloBody(new Reader(msg, 4, 4 + len));
}

function parseClientHelloBody(r: Reader): ClientHello | null {
  try {
    const version = r.u16();
    r.skip(32);
    r.skipVec8();
    const ciphers = r.u16Vec(true);
    r.skipVec8();
    const ch: ClientHello = {
      version, supportedVersions: [], ciphers, extensions: [], sni: null, alpn: [], groups: [],
      ecPointFormats: [], signatureAlgorithms: [],
    };
    for (const ext = new Extensions(r); ext.next();) {
      ch.extensions.push(ext.type);
      switch (ext.type) {
        case EXT_SERVER_NAME: {
          const data = ext.data;
          const list = data.left > 0 ? data.vec16() : data;
          while (list.left > 0) {
            const nameType = list.u8();
            const len = list.u16();
            if (nameType === 0 && ch.sni === null) ch.sni = list.text(len);
            else list.skip(len);
          }
          break;
        }
        case EXT_ALPN:
          ch.alpn = readAlpn(ext.data);
          break;
        case EXT_SUPPORTED_VERSIONS:
          ch.supportedVersions = ext.data.u16Vec(false);
          break;
        case EXT_SUPPORTED_GROUPS:
          ch.groups = ext.data.u16Vec(true);
          break;
        case EXT_EC_POINT_FORMATS: {
          const pf = ext.data.vec8();
          while (pf.left > 0) ch.ecPointFormats.push(pf.u8());
          break;
        }
        case EXT_SIGNATURE_ALGORITHMS:
          ch.signatureAlgorithms = ext.data.u16Vec(true);
          break;
        default:
          break;
      }
    }
    return ch;
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

function readAlpn(data: Reader): string[] {
  const list = data.vec16();
  const out: string[] = [];
  while (list.left > 0) out.push(list.text(list.u8()));
  return out;
}

export function parseServerHello(stream: Buffer): ServerHello | null | 'incomplete' {
  const msg = firstHandshakeMessage(stream);
  if (msg === null || msg === 'incomplete') return msg;
  if (msg.type !== HS_SERVER_HELLO) return null;
  try {
    const r = new Reader(msg.buf, msg.start, msg.end);
    const version = r.u16();
    r.skip(32);
    r.skipVec8();
    const cipher = r.u16();
    r.u8();
    const sh: ServerHello = { version, selectedVersion: version, cipher, alpn: null, extensions: [] };
    for (const ext = new Extensions(r); ext.next();) {
      sh.extensions.push(ext.type);
      if (ext.type === EXT_SUPPORTED_VERSIONS && ext.data.left >= 2) sh.selectedVersion = ext.data.u16();
      else if (ext.type === EXT_ALPN) sh.alpn = readAlpn(ext.data)[0] ?? null;
    }
    return sh;
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

function noGrease(list: number[]): number[] {
  return list.filter((v) => !isGrease(v));
}

/** Classic JA3 (Salesforce): version,ciphers,extensions,groups,point formats in decimal, GREASE removed, md5. */
export function ja3(ch: ClientHello): { string: string; hash: string } {
  const s = [
    String(ch.version),
    noGrease(ch.ciphers).join('-'),
    noGrease(ch.extensions).join('-'),
    noGrease(ch.groups).join('-'),
    ch.ecPointFormats.join('-'),
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

/** The three JA4 sections before hashing (JA4_r), useful for debugging and partial matching. */
export function ja4Raw(ch: ClientHello, transport: 'tcp' | 'quic'): { a: string; ciphers: string; extensions: string } {
  const versions = noGrease(ch.supportedVersions);
  // why: the spec takes the highest supported_versions value when the extension exists; numeric max is
  // right for TLS (DTLS numbers run backwards but DTLS never reaches here).
  const ver = versions.length > 0 && ch.extensions.includes(EXT_SUPPORTED_VERSIONS) ? Math.max(...versions) : ch.version;
  const ciphers = noGrease(ch.ciphers);
  const exts = noGrease(ch.extensions);
  const count = (n: number): string => String(Math.min(n, 99)).padStart(2, '0');
  const a = (transport === 'quic' ? 'q' : 't') + (JA4_VERSIONS[ver] ?? '00') + (exts.includes(EXT_SERVER_NAME) ? 'd' : 'i') +
    count(ciphers.length) + count(exts.length) + ja4Alpn(ch.alpn);
  const sortedCiphers = ciphers.map(hex4).sort().join(',');
  const sortedExts = exts.filter((e) => e !== EXT_SERVER_NAME && e !== EXT_ALPN).map(hex4).sort().join(',');
  const sigs = noGrease(ch.signatureAlgorithms).map(hex4).join(',');
  return { a, ciphers: sortedCiphers, extensions: sigs.length > 0 ? `${sortedExts}_${sigs}` : sortedExts };
}

/** FoxIO JA4 (a_b_c) per https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md */
export function ja4(ch: ClientHello, transport: 'tcp' | 'quic'): string {
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
