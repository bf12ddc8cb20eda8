// A QUIC sender for tests, written from RFC 9001 with its own HKDF (not the reader's key schedule): packet keys from a
// secret (§5.1), packets sealed and their headers protected (§5.3-5.4), and client Initials whose keys come from the
// Destination Connection ID (§5.2), as every observer can derive them.
import { createCipheriv, createHmac } from 'node:crypto';

export const V1_SALT = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');

/** HKDF-Expand-Label (RFC 8446 §7.1) for outputs of one SHA-256 block, with an empty context. */
export function label(secret: Buffer, name: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${name}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0, 1])]);
  return createHmac('sha256', secret).update(info).digest().subarray(0, length);
}

export interface Keys { key: Buffer; iv: Buffer; hp: Buffer }

/** AES-128-GCM packet keys of a secret (RFC 9001 §5.1); `hp` kept from the first generation across updates (§6). */
export function keysOf(secret: Buffer, hp?: Buffer): Keys {
  return { key: label(secret, 'quic key', 16), iv: label(secret, 'quic iv', 12), hp: hp ?? label(secret, 'quic hp', 16) };
}

/** The Initial keys of one side (QUIC v1) from the client's first Destination Connection ID (RFC 9001 §5.2). */
export function initialKeysOf(dcid: Buffer, side: 'client in' | 'server in'): Keys {
  return keysOf(label(createHmac('sha256', V1_SALT).update(dcid).digest(), side, 32));
}

/**
 * Seals a packet (RFC 9001 §5.3-5.4): `header` ends with its packet number `pn` (one byte); the payload is encrypted
 * with the header as associated data, then the header protected with a mask from a sample of the ciphertext.
 */
export function seal(k: Keys, header: Buffer, pn: number, payload: Buffer, long: boolean): Buffer {
  const nonce = Buffer.from(k.iv);
  nonce[11] = nonce[11]! ^ pn;
  const c = createCipheriv('aes-128-gcm', k.key, nonce);
  c.setAAD(header);
  const pkt = Buffer.concat([header, c.update(payload), c.final(), c.getAuthTag()]);
  const pnOffset = header.length - 1;
  const mask = createCipheriv('aes-128-ecb', k.hp, null).setAutoPadding(false).update(pkt.subarray(pnOffset + 4, pnOffset + 20));
  pkt[0] = pkt[0]! ^ (mask[0]! & (long ? 0x0f : 0x1f));
  pkt[pnOffset] = pkt[pnOffset]! ^ mask[1]!;
  return pkt;
}

/**
 * An Initial packet (QUIC v1's protection; its header's version `version`, 1 unless given) numbered `pn` (under 256)
 * carrying the frames `frames` (padded to 64 bytes more).
 */
export function initialPacket(k: Keys, dcid: Buffer, scid: Buffer, frames: Buffer, pn = 0, version = 1): Buffer {
  const payload = Buffer.concat([frames, Buffer.alloc(64)]);
  const length = 1 + payload.length + 16;
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version >>> 0);
  const header = Buffer.concat([
    Buffer.from([0xc0]), v, Buffer.from([dcid.length]), dcid, Buffer.from([scid.length]), scid,
    Buffer.from([0x00, 0x40 | (length >> 8), length & 0xff, pn]),
  ]);
  return seal(k, header, pn, payload, true);
}

/** A CRYPTO frame (RFC 9000 §19.6) of `data` at `offset` (both under 16384: two-byte varints). */
export function cryptoFrame(offset: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x06, 0x40 | (offset >> 8), offset & 0xff, 0x40 | (data.length >> 8), data.length & 0xff]), data]);
}
