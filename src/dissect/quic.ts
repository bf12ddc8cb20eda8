// QUIC Initial packets (client -> server UDP datagrams): remove header protection, decrypt with the
// Initial keys every observer can derive from the Destination Connection ID (RFC 9001 §5.2), collect
// CRYPTO frames by offset (a ClientHello with post-quantum key shares spans several packets, and
// clients reorder CRYPTO frames on purpose) and hand the assembled message to the TLS dissector.
// The result feeds ja4(ch, 'quic').
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { parseClientHelloMessage, type ClientHello } from './tls.js';

interface VersionParams {
  salt: Buffer;
  labelPrefix: string;
  /** long-header packet type bits that mean Initial */
  initialType: number;
}

// RFC 9001 §5.2 (v1), RFC 9369 §3.3 (v2), draft-ietf-quic-tls-29.
const VERSIONS = new Map<number, VersionParams>([
  [0x00000001, { salt: Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'), labelPrefix: 'quic', initialType: 0 }],
  [0x6b3343cf, { salt: Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex'), labelPrefix: 'quicv2', initialType: 1 }],
  [0xff00001d, { salt: Buffer.from('afbfec289993d24c9e9786f19c6111e04390a899', 'hex'), labelPrefix: 'quic', initialType: 0 }],
]);

// why: a ClientHello is far below this; the cap bounds memory for a hostile stream of CRYPTO frames
const MAX_CRYPTO = 0x10000;

function hkdfExpandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  // one HMAC block is enough: every output here is at most 32 bytes (SHA-256)
  return createHmac('sha256', secret).update(Buffer.concat([info, Buffer.from([1])])).digest().subarray(0, length);
}

interface Keys { key: Buffer; iv: Buffer; hp: Buffer }

function clientInitialKeys(version: VersionParams, dcid: Buffer): Keys {
  const initial = createHmac('sha256', version.salt).update(dcid).digest();
  const client = hkdfExpandLabel(initial, 'client in', 32);
  const p = version.labelPrefix;
  return { key: hkdfExpandLabel(client, `${p} key`, 16), iv: hkdfExpandLabel(client, `${p} iv`, 12), hp: hkdfExpandLabel(client, `${p} hp`, 16) };
}

/** QUIC variable-length integer at `off`: [value, bytes used], or null past the end. */
function varint(b: Buffer, off: number): [number, number] | null {
  if (off >= b.length) return null;
  const len = 1 << (b[off]! >> 6);
  if (off + len > b.length) return null;
  let v = b[off]! & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
  return [v, len];
}

/** True for a datagram starting with a QUIC long-header Initial of a version we can decrypt. */
export function looksLikeQuicInitial(datagram: Buffer): boolean {
  if (datagram.length < 7 || (datagram[0]! & 0xc0) !== 0xc0) return false;
  const v = VERSIONS.get(datagram.readUInt32BE(1));
  return v !== undefined && ((datagram[0]! >> 4) & 3) === v.initialType;
}

/** Collects one connection's client Initial packets until the ClientHello is complete. */
export class QuicInitialParser {
  private keys: Keys | null = null;
  private version: VersionParams | null = null;
  private readonly chunks = new Map<number, Buffer>();
  private result: ClientHello | null | 'incomplete' = 'incomplete';

  /**
   * Feed one client -> server UDP payload. Returns the ClientHello once complete, null when this is not
   * QUIC we can read (or the hello is malformed), 'incomplete' while more Initial packets are needed.
   */
  push(datagram: Buffer): ClientHello | null | 'incomplete' {
    if (this.result !== 'incomplete') return this.result;
    let off = 0;
    let sawInitial = false;
    while (off < datagram.length) {
      const used = this.packet(datagram, off);
      if (used === null) break;
      if (used.initial) sawInitial = true;
      off += used.length;
    }
    if (!sawInitial && this.keys === null) {
      this.result = null;
      return null;
    }
    this.result = parseClientHelloMessage(this.contiguous());
    return this.result;
  }

  /** The CRYPTO stream from offset 0 up to the first hole. */
  private contiguous(): Buffer {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      // a frame may start before `at` and overlap it (retransmission with different framing)
      let next: Buffer | undefined;
      for (const [o, b] of this.chunks) {
        if (o <= at && o + b.length > at) {
          next = b.subarray(at - o);
          break;
        }
      }
      if (!next) break;
      parts.push(next);
      at += next.length;
    }
    return Buffer.concat(parts);
  }

  /** Decrypt one long-header packet at `off`; returns its length, or null to stop reading the datagram. */
  private packet(d: Buffer, off: number): { length: number; initial: boolean } | null {
    const first = d[off]!;
    if ((first & 0x80) === 0 || off + 7 > d.length) return null;
    const version = VERSIONS.get(d.readUInt32BE(off + 1));
    if (!version) return null;
    let p = off + 5;
    const dcidLen = d[p++]!;
    const dcid = d.subarray(p, p + dcidLen);
    p += dcidLen;
    if (p >= d.length) return null;
    const scidLen = d[p++]!;
    p += scidLen;
    const type = (first >> 4) & 3;
    const isInitial = type === version.initialType;
    if (isInitial) {
      const tok = varint(d, p);
      if (!tok) return null;
      p += tok[1] + tok[0];
    }
    const len = varint(d, p);
    if (!len) return null;
    p += len[1];
    const pnOffset = p;
    const end = pnOffset + len[0];
    if (end > d.length) return null;
    if (!isInitial) return { length: end - off, initial: false };
    if (!this.keys) {
      // why: the client keeps the keys of its first Destination Connection ID for all its Initials
      this.keys = clientInitialKeys(version, dcid);
      this.version = version;
    }
    if (this.version !== version || pnOffset + 4 + 16 > end) return { length: end - off, initial: true };
    const plain = this.unprotect(d.subarray(off, end), pnOffset - off);
    if (plain) this.frames(plain);
    return { length: end - off, initial: true };
  }

  private unprotect(pkt: Buffer, pnOffset: number): Buffer | null {
    const keys = this.keys!;
    const sample = pkt.subarray(pnOffset + 4, pnOffset + 20);
    const mask = createCipheriv('aes-128-ecb', keys.hp, null).setAutoPadding(false).update(sample);
    const header = Buffer.from(pkt.subarray(0, pnOffset + 4));
    header[0] = header[0]! ^ (mask[0]! & 0x0f);
    const pnLen = (header[0]! & 3) + 1;
    let pn = 0;
    for (let i = 0; i < pnLen; i++) {
      header[pnOffset + i] = header[pnOffset + i]! ^ mask[1 + i]!;
      pn = pn * 256 + header[pnOffset + i]!;
    }
    const aad = header.subarray(0, pnOffset + pnLen);
    const nonce = Buffer.from(keys.iv);
    for (let i = 0; i < 6; i++) nonce[11 - i] = nonce[11 - i]! ^ (Math.floor(pn / 2 ** (8 * i)) & 0xff);
    const body = pkt.subarray(pnOffset + pnLen);
    if (body.length < 16) return null;
    try {
      const dec = createDecipheriv('aes-128-gcm', keys.key, nonce);
      dec.setAAD(aad);
      dec.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([dec.update(body.subarray(0, body.length - 16)), dec.final()]);
    } catch {
      // authentication failed: not a packet protected with these keys (or corrupted)
      return null;
    }
  }

  private frames(b: Buffer): void {
    let p = 0;
    const next = (): number | null => {
      const v = varint(b, p);
      if (!v) return null;
      p += v[1];
      return v[0];
    };
    while (p < b.length) {
      const type = next();
      if (type === null) return;
      if (type === 0x00 || type === 0x01) continue; // PADDING, PING
      if (type === 0x02 || type === 0x03) {
        next();
        next();
        const ranges = next();
        if (ranges === null) return;
        next();
        for (let i = 0; i < ranges; i++) {
          next();
          next();
        }
        if (type === 0x03) {
          next();
          next();
          next();
        }
        continue;
      }
      if (type === 0x06) {
        const offset = next();
        const len = next();
        if (offset === null || len === null || p + len > b.length) return;
        if (offset + len <= MAX_CRYPTO && !this.chunks.has(offset)) this.chunks.set(offset, Buffer.from(b.subarray(p, p + len)));
        p += len;
        continue;
      }
      // CONNECTION_CLOSE or anything unexpected in an Initial: nothing more we need from this packet
      return;
    }
  }
}
