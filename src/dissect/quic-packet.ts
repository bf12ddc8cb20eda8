// QUIC packet protection (RFC 9001 §5): the versions read, variable-length integers, the keys made from a secret,
// header protection removed and the payload opened; a connection's Initial packets and their hellos, through a Retry
// (QuicInitials). Shared by the Initial reader (quic.ts: every observer can derive the Initial keys) and the 1-RTT
// decryption with a key log's secrets (quic-decrypt.ts).
import { createCipheriv, createHmac } from 'node:crypto';
import { expandLabel, open, suite13, xorNonce, type Aead, type Suite } from './tls-keylog.js';
import { MAX_HELLO, parseClientHelloMessage, parseServerHelloBody, type ClientHello, type ServerHello } from './tls.js';
import { InOrder } from '../util/in-order.js';

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

/**
 * A version's Initial protection: a known one's, and for a version reserved to exercise version negotiation (RFC 9000
 * §15: 0x?a?a?a?a) v1's, as clients that send one protect it (ngtcp2's) and tshark reads it.
 */
export function quicVersion(v: number): QuicVersion | undefined {
  return QUIC_VERSIONS.get(v) ?? ((v & 0x0f0f0f0f) === 0x0a0a0a0a ? QUIC_VERSIONS.get(1) : undefined);
}

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
  private readonly run = new InOrder();

  add(offset: number, data: Buffer): void {
    if (offset + data.length <= MAX_CRYPTO) this.run.add(offset, data);
  }

  /** The stream from offset 0 to its first hole. */
  contiguous(): Buffer {
    return this.run.bytes();
  }
}

const NO_TOKEN = Buffer.alloc(0);

/** A long-header packet's fields (RFC 9000 §17.2), offsets into its datagram. */
export interface LongHeader {
  version: QuicVersion;
  initial: boolean;
  /** a 0-RTT packet (the client's early data) */
  zeroRtt: boolean;
  /** a Handshake packet */
  handshake: boolean;
  /** a Retry (the server's: RFC 9000 §17.2.5) */
  retry: boolean;
  dcid: Buffer;
  scid: Buffer;
  /** an Initial's token (a client's after a Retry, or from a NEW_TOKEN frame); empty for the other types */
  token: Buffer;
  /** where its packet number starts; -1 for a Retry (no packet number, no length: the rest of the datagram) */
  pnOffset: number;
  /** where it ends */
  end: number;
}

/** The long-header packet at `off` of datagram `d`; null when it is cut short, not a long header or of a version not known. */
export function longHeader(d: Buffer, off: number): LongHeader | null {
  if ((d[off]! & 0x80) === 0 || off + 7 > d.length) return null;
  const version = quicVersion(d.readUInt32BE(off + 1));
  if (!version) return null;
  let p = off + 5;
  const dcidLen = d[p++]!;
  const dcid = d.subarray(p, p + dcidLen);
  p += dcidLen;
  if (p >= d.length) return null;
  const scidLen = d[p++]!;
  const scid = d.subarray(p, p + scidLen);
  p += scidLen;
  // (the type bits from the version's Initial on: Initial, 0-RTT, Handshake, Retry)
  const kind = (((d[off]! >> 4) & 3) + 4 - version.initialType) & 3;
  if (kind === 3) return { version, initial: false, zeroRtt: false, handshake: false, retry: true, dcid, scid, token: NO_TOKEN, pnOffset: -1, end: d.length };
  let token: Buffer = NO_TOKEN;
  if (kind === 0) {
    const n = varint(d, p);
    if (!n) return null;
    token = d.subarray(p + n[1], p + n[1] + n[0]);
    p += n[1] + n[0];
  }
  const len = varint(d, p);
  if (!len) return null;
  p += len[1];
  const end = p + len[0];
  if (end > d.length) return null;
  return { version, initial: kind === 0, zeroRtt: kind === 1, handshake: kind === 2, retry: false, dcid, scid, token, pnOffset: p, end };
}

/**
 * One direction's packets of a packet number space opened with keys that do not change (its Initial packets, with its
 * Initial keys; its Handshake packets, with its handshake secret's); the largest packet number opened decodes the next.
 */
export class LongHeaderSpace {
  private largest = -1;

  constructor(readonly keys: PacketKeys) {}

  /** The payload of the long-header packet `h` of datagram `d` (starting at `off`); null when it does not open. */
  open(d: Buffer, off: number, h: LongHeader): Buffer | null {
    return this.openPacket(d.subarray(off, h.end), h.pnOffset - off);
  }

  /** The payload of the long-header packet `pkt`, its packet number at `pnOffset`; null when it does not open. */
  openPacket(pkt: Buffer, pnOffset: number): Buffer | null {
    const u = unmask(pkt, pnOffset, this.keys, true);
    if (!u) return null;
    const pn = fullPacketNumber(this.largest, u.truncated, u.pnLength);
    const plain = openPacket(this.keys, u, pn);
    // (a packet that does not authenticate is no packet of this connection's, or a corrupted one)
    if (plain) this.largest = Math.max(this.largest, pn);
    return plain;
  }
}

const HS_SERVER_HELLO = 2;

/** One side's Initial packets under one set of Initial keys: their packet number space and CRYPTO stream. */
interface InitialFlight {
  space: LongHeaderSpace;
  crypto: CryptoStream;
}

function flight(keys: PacketKeys): InitialFlight {
  return { space: new LongHeaderSpace(keys), crypto: new CryptoStream() };
}

/** The Initial keys of one Destination Connection ID, each side's flight under them (the server's made when needed). */
class InitialEpoch {
  readonly client: InitialFlight;
  private serverFlight: InitialFlight | null = null;

  constructor(private readonly version: QuicVersion, readonly dcid: Buffer) {
    this.client = flight(initialKeys(version, dcid, 'client in'));
  }

  get server(): InitialFlight {
    return (this.serverFlight ??= flight(initialKeys(this.version, this.dcid, 'server in')));
  }
}

/**
 * A connection's Initial packets, both sides, and the CRYPTO bytes (the hellos) they carry. Their keys come from the
 * Destination Connection ID of the client's first Initial, and after a Retry (RFC 9000 §17.2.5) from the connection ID
 * the Retry gave, which the client's next Initials carry as theirs (RFC 9001 §5.2). Which keys hold is taken from what
 * the client did, not from the Retry: its Initial that carries a token (the Retry's, §17.2.5.2), does not open with the
 * keys so far and opens with those of its own Destination Connection ID begins the new keys, for both sides. So a
 * Retry the client discarded (one whose integrity tag did not verify, RFC 9001 §5.8; one after the server's Initial)
 * changes nothing, and one lost from the capture changes the keys all the same. Each keys' CRYPTO bytes are kept apart:
 * after a Retry the client sends its hello again from offset 0.
 */
export class QuicInitials {
  /** the keys of the client's first Destination Connection ID, then (at most one Retry per connection) the Retry's */
  private readonly epochs: InitialEpoch[];
  /** the server's Initial packets seen, and those of them that opened */
  private serverPackets = 0;
  private serverOpened = 0;
  private random: Buffer | null = null;
  private sh: ServerHello | null | 'incomplete' = 'incomplete';

  /** `dcid`: the Destination Connection ID of the client's first Initial */
  constructor(readonly version: QuicVersion, dcid: Buffer) {
    this.epochs = [new InitialEpoch(version, Buffer.from(dcid))];
  }

  /** Whether the client's Initials moved to a Retry's keys. */
  get retried(): boolean {
    return this.epochs.length > 1;
  }

  /** The Initial packet `h` of datagram `d` (at `off`), the client's (`c2s`) or the server's: true when it opened. */
  read(d: Buffer, off: number, h: LongHeader, c2s: boolean): boolean {
    if (!h.initial || h.version !== this.version) return false;
    const now = this.epochs[this.epochs.length - 1]!;
    if (!c2s) {
      this.serverPackets++;
      if (!take(now.server, d, off, h)) return false;
      this.serverOpened++;
      return true;
    }
    if (take(now.client, d, off, h)) return true;
    // (a late Initial of the client's, sent before the Retry)
    if (this.epochs.length > 1) return take(this.epochs[0]!.client, d, off, h);
    // why: a client takes no Retry once it read a server Initial (RFC 9000 §17.2.5.2), and carries the Retry's token
    // in every Initial after it: other Initials that do not open are not worth a key derivation
    if (this.serverOpened > 0 || h.token.length === 0 || h.dcid.equals(now.dcid)) return false;
    const next = new InitialEpoch(this.version, Buffer.from(h.dcid));
    if (!take(next.client, d, off, h)) return false;
    this.epochs.push(next);
    this.random = null;
    return true;
  }

  /**
   * The ClientHello, from whichever keys' Initials carried it whole (the latest first); 'incomplete' while none did,
   * null when it is malformed.
   */
  clientHello(): ClientHello | null | 'incomplete' {
    let r: ClientHello | null | 'incomplete' = null;
    for (let i = this.epochs.length - 1; i >= 0; i--) {
      const ch = parseClientHelloMessage(this.epochs[i]!.client.crypto.contiguous());
      if (ch !== null && ch !== 'incomplete') return ch;
      if (ch === 'incomplete') r = ch;
    }
    return r;
  }

  /** The ClientHello's random (the key log's index), once the client's Initials carried it; the latest keys' first. */
  clientRandom(): Buffer | null {
    for (let i = this.epochs.length - 1; i >= 0 && this.random === null; i--) {
      const ch = this.epochs[i]!.client.crypto.contiguous();
      // (handshake header 4 bytes, legacy version 2, then the random)
      if (ch.length >= 38 && ch[0] === 0x01) this.random = Buffer.from(ch.subarray(6, 38));
    }
    return this.random;
  }

  /** The server's CRYPTO bytes so far, from offset 0 (a server Initial opened keeps the keys it opened with: all its Initials are under the latest). */
  private serverBytes(): Buffer | null {
    return this.serverOpened > 0 ? this.epochs[this.epochs.length - 1]!.server.crypto.contiguous() : null;
  }

  /** The server's ServerHello, once its Initials carried it whole ('incomplete' until then, null when malformed). */
  serverHello(): ServerHello | null | 'incomplete' {
    const b = this.sh === 'incomplete' ? this.serverBytes() : null;
    if (b) this.sh = serverHelloMessage(b);
    return this.sh;
  }

  /** The cipher suite of the server's ServerHello, as soon as its Initials carried the bytes up to it. */
  serverCipher(): number | null {
    const b = this.serverBytes();
    if (!b || b.length < 39 || b[0] !== HS_SERVER_HELLO) return null;
    // (handshake header 4 bytes, legacy version 2, random 32, then the session ID and the cipher suite)
    const at = 39 + b[38]!;
    return b.length >= at + 2 ? b.readUInt16BE(at) : null;
  }

  /** Why the ServerHello's cipher suite was not read, in words. */
  get serverHelloMissing(): string {
    const what = "its server's Initial (the ServerHello, which names the cipher suite)";
    if (this.serverPackets === 0) return `${what} was not seen`;
    if (this.serverOpened === 0) {
      return `${what} was not read: none of its ${this.serverPackets} Initial packets opened with the Initial keys of its client's Destination Connection ID${this.retried ? ' after the Retry' : ''}`;
    }
    const b = this.serverBytes()!;
    return b.length > 0 && b[0] !== HS_SERVER_HELLO ? `${what} held no ServerHello` : `${what} was not read whole: the server's Initial packets that carried the rest were not seen`;
  }
}

/** Opens the Initial `h` of `d` (at `off`) with a flight's keys; its CRYPTO frames go to the flight's stream. */
function take(f: InitialFlight, d: Buffer, off: number, h: LongHeader): boolean {
  const plain = f.space.open(d, off, h);
  if (plain) readFrames(plain, { crypto: (offset, data) => f.crypto.add(offset, data) });
  return plain !== null;
}

/**
 * The ServerHello at the start of a server's Initial CRYPTO stream (bare handshake messages, no TLS records); past a
 * HelloRetryRequest (RFC 8446 §4.1.4), the ServerHello after it, which is the one that chose. 'incomplete' while its
 * bytes are not all there, null when they are no ServerHello.
 */
function serverHelloMessage(stream: Buffer): ServerHello | null | 'incomplete' {
  for (let at = 0; ;) {
    if (stream.length < at + 4) return stream.length > at && stream[at] !== HS_SERVER_HELLO ? null : 'incomplete';
    if (stream[at] !== HS_SERVER_HELLO) return null;
    const end = at + 4 + stream.readUIntBE(at + 1, 3);
    if (end > MAX_HELLO) return null;
    if (stream.length < end) return 'incomplete';
    const sh = parseServerHelloBody(stream, at + 4, end);
    if (sh === null || !sh.retry) return sh;
    at = end;
  }
}

/** What a packet's frames carry, for readFrames. */
export interface FrameSink {
  crypto?(offset: number, data: Buffer): void;
  stream?(id: number, offset: number, data: Buffer, fin: boolean): void;
  /** a CONNECTION_CLOSE */
  close?(): void;
}

/**
 * Reads a packet's frames (RFC 9000 §19), handing the data of CRYPTO and STREAM frames and a CONNECTION_CLOSE to `sink`.
 * Stops at a frame cut short, at a CONNECTION_CLOSE, or at a type it does not know (its length is not known). True when
 * it read a STREAM frame.
 */
export function readFrames(b: Buffer, sink: FrameSink): boolean {
  let p = 0;
  let stream = false;
  const next = (): number => {
    const v = varint(b, p);
    if (!v) throw RangeError('frame cut short');
    p += v[1];
    return v[0];
  };
  try {
    while (p < b.length) {
      const type = next();
      if (type === 0x00 || type === 0x01 || type === 0x1e) continue; // PADDING, PING, HANDSHAKE_DONE
      if (type === 0x02 || type === 0x03) {
        next();
        next();
        const ranges = next();
        next();
        for (let i = 0; i < ranges; i++) { next(); next(); }
        if (type === 0x03) { next(); next(); next(); }
      } else if (type === 0x06) {
        const offset = next();
        const len = next();
        if (p + len > b.length) return stream;
        sink.crypto?.(offset, b.subarray(p, p + len));
        p += len;
      } else if (type >= 0x08 && type <= 0x0f) {
        const id = next();
        const offset = type & 0x04 ? next() : 0;
        const len = type & 0x02 ? next() : b.length - p;
        if (p + len > b.length) return stream;
        sink.stream?.(id, offset, b.subarray(p, p + len), (type & 0x01) !== 0);
        stream = true;
        p += len;
      } else if (type === 0x04) { next(); next(); next(); } // RESET_STREAM
      else if (type === 0x05 || type === 0x11 || type === 0x15) { next(); next(); } // STOP_SENDING, MAX_STREAM_DATA, STREAM_DATA_BLOCKED
      else if (type === 0x07) { // NEW_TOKEN (its length read before p is: `p += next()` would add to p's old value)
        const n = next();
        p += n;
      }
      else if (type === 0x10 || type === 0x12 || type === 0x13 || type === 0x14 || type === 0x16 || type === 0x17 || type === 0x19) next();
      else if (type === 0x18) { // NEW_CONNECTION_ID
        next();
        next();
        const n = b[p] ?? 0;
        p += 1 + n + 16;
      } else if (type === 0x1a || type === 0x1b) p += 8; // PATH_CHALLENGE, PATH_RESPONSE
      else if (type === 0x1c || type === 0x1d) { // CONNECTION_CLOSE
        sink.close?.();
        return stream;
      } else if (type === 0x30 || type === 0x31) { // DATAGRAM
        const n = type === 0x31 ? next() : b.length - p;
        p += n;
      } else return stream;
    }
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  return stream;
}
