// QUIC packet protection (RFC 9001 §5): the versions read, variable-length integers, the keys made from a secret,
// header protection removed and the payload opened. Shared by the Initial reader (quic.ts: every observer can derive
// the Initial keys) and the 1-RTT decryption with a key log's secrets (quic-decrypt.ts).
import { createCipheriv, createHmac } from 'node:crypto';
import { expandLabel, open, suite13, xorNonce, type Aead, type Suite } from './tls-keylog.js';

export interface QuicVersion {
  salt: Buffer;
  /** HKDF label prefix: "quic" (v1, drafts) or "quicv2" (RFC 9369) */
  labelPrefix: string;
  /** long-header packet type bits of an Initial (the others follow it: 0-RTT, Handshake, Retry) */
  initialType: number;
}

// RFC 9001 §5.2 (v1), RFC 9369 §3.2-3.3 (v2), draft-ietf-quic-tls-29.
export const QUIC_VERSIONS = new Map<number, QuicVersion>([
  [0x00000001, { salt: Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'), labelPrefix: 'quic', initialType: 0 }],
  [0x6b3343cf, { salt: Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex'), labelPrefix: 'quicv2', initialType: 1 }],
  [0xff00001d, { salt: Buffer.from('afbfec289993d24c9e9786f19c6111e04390a899', 'hex'), labelPrefix: 'quic', initialType: 0 }],
]);

/** QUIC variable-length integer at `off`: [value, bytes used], or null past the end. */
export function varint(b: Buffer, off: number): [number, number] | null {
  if (off >= b.length) return null;
  const len = 1 << (b[off]! >> 6);
  if (off + len > b.length) return null;
  let v = b[off]! & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
  return [v, len];
}

/** One direction's packet protection keys. */
export interface PacketKeys {
  suite: Suite;
  key: Buffer;
  iv: Buffer;
  /** header protection key: kept across key updates (RFC 9001 §6) */
  hp: Buffer;
}

/** The keys a traffic secret makes (RFC 9001 §5.1); `hp`: the header protection key to keep instead (a key update). */
export function packetKeys(suite: Suite, secret: Buffer, prefix: string, hp?: Buffer): PacketKeys {
  return {
    suite,
    key: expandLabel(suite.hash, secret, `${prefix} key`, suite.keyLen),
    iv: expandLabel(suite.hash, secret, `${prefix} iv`, 12),
    hp: hp ?? expandLabel(suite.hash, secret, `${prefix} hp`, suite.keyLen),
  };
}

/** The next generation's secret after a key update (RFC 9001 §6.1). */
export function nextSecret(suite: Suite, secret: Buffer, prefix: string): Buffer {
  return expandLabel(suite.hash, secret, `${prefix} ku`, secret.length);
}

const INITIAL_SUITE = suite13(0x1301)!;

/** The Initial keys of one side ("client in" or "server in"), from the client's first Destination Connection ID. */
export function initialKeys(version: QuicVersion, dcid: Buffer, side: 'client in' | 'server in'): PacketKeys {
  const initial = createHmac('sha256', version.salt).update(dcid).digest();
  return packetKeys(INITIAL_SUITE, expandLabel('sha256', initial, side, 32), version.labelPrefix);
}

/** The header protection mask of a packet: five bytes from the 16-byte sample after the packet number's 4 bytes. */
function headerMask(keys: PacketKeys, sample: Buffer): Buffer {
  const aead: Aead | null = keys.suite.aead;
  if (aead === 'chacha20-poly1305') return createCipheriv('chacha20', keys.hp, sample).update(Buffer.alloc(5));
  return createCipheriv(keys.hp.length === 32 ? 'aes-256-ecb' : 'aes-128-ecb', keys.hp, null).setAutoPadding(false).update(sample);
}

/** A packet whose header protection was removed. */
export interface Unmasked {
  /** the header with its first byte and packet number in the clear: the AEAD's associated data */
  header: Buffer;
  /** the packet number's low bits as sent, and their length in bytes */
  truncated: number;
  pnLength: number;
  /** the first byte in the clear (a short header's key phase bit is 0x04) */
  first: number;
  /** the protected payload with its tag */
  sealed: Buffer;
}

/**
 * Removes the header protection of the packet `pkt` (from its first byte to its end), whose packet number starts at
 * `pnOffset`; `long`: a long header (4 protected bits in the first byte) or a short one (5). Null when too short.
 */
export function unmask(pkt: Buffer, pnOffset: number, keys: PacketKeys, long: boolean): Unmasked | null {
  if (pnOffset + 4 + 16 > pkt.length) return null;
  const mask = headerMask(keys, pkt.subarray(pnOffset + 4, pnOffset + 20));
  const first = pkt[0]! ^ (mask[0]! & (long ? 0x0f : 0x1f));
  const pnLength = (first & 3) + 1;
  const header = Buffer.from(pkt.subarray(0, pnOffset + pnLength));
  header[0] = first;
  let truncated = 0;
  for (let i = 0; i < pnLength; i++) {
    header[pnOffset + i] = header[pnOffset + i]! ^ mask[1 + i]!;
    truncated = truncated * 256 + header[pnOffset + i]!;
  }
  return { header, truncated, pnLength, first, sealed: pkt.subarray(pnOffset + pnLength) };
}

/** The full packet number from its sent low bits and the largest one received in its space (RFC 9000 §A.3). */
export function fullPacketNumber(largest: number, truncated: number, pnLength: number): number {
  const expected = largest + 1;
  const win = 2 ** (pnLength * 8);
  const half = win / 2;
  const candidate = expected - (expected % win) + truncated;
  if (candidate <= expected - half && candidate + win < 2 ** 53) return candidate + win;
  if (candidate > expected + half && candidate >= win) return candidate - win;
  return candidate;
}

/** The payload of an unmasked packet numbered `pn`, or null when it does not authenticate under `keys`. */
export function openPacket(keys: PacketKeys, u: Unmasked, pn: number): Buffer | null {
  return open(keys.suite.aead!, keys.key, xorNonce(keys.iv, BigInt(pn)), u.header, u.sealed);
}

// why: a ClientHello or ServerHello is far below this; the cap bounds memory for a hostile stream of CRYPTO frames
const MAX_CRYPTO = 0x10000;

/** One side's CRYPTO stream in its Initial packets, by offset. */
export class CryptoStream {
  private readonly chunks = new Map<number, Buffer>();

  add(offset: number, data: Buffer): void {
    if (offset + data.length <= MAX_CRYPTO && !this.chunks.has(offset)) this.chunks.set(offset, Buffer.from(data));
  }

  /** The stream from offset 0 to its first hole. */
  contiguous(): Buffer {
    const parts: Buffer[] = [];
    for (let at = 0; ;) {
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
}
