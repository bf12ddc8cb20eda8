// QUIC Initial packets (client -> server UDP datagrams): remove header protection, decrypt with the
// Initial keys every observer can derive from the Destination Connection ID (RFC 9001 §5.2), collect
// CRYPTO frames by offset (a ClientHello with post-quantum key shares spans several packets, and
// clients reorder CRYPTO frames on purpose) and hand the assembled message to the TLS dissector.
// The result feeds ja4(ch, 'quic').
import { parseClientHelloMessage, type ClientHello } from './tls.js';
import { CryptoStream, QUIC_VERSIONS as VERSIONS, fullPacketNumber, initialKeys, openPacket, unmask, varint, type PacketKeys, type QuicVersion } from './quic-packet.js';

/** True for a datagram starting with a QUIC long-header Initial of a version we can decrypt. */
export function looksLikeQuicInitial(datagram: Buffer): boolean {
  if (datagram.length < 7 || (datagram[0]! & 0xc0) !== 0xc0) return false;
  const v = VERSIONS.get(datagram.readUInt32BE(1));
  return v !== undefined && ((datagram[0]! >> 4) & 3) === v.initialType;
}

/** Collects one connection's client Initial packets until the ClientHello is complete. */
export class QuicInitialParser {
  private keys: PacketKeys | null = null;
  private version: QuicVersion | null = null;
  private largest = -1;
  private readonly crypto = new CryptoStream();
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
    this.result = parseClientHelloMessage(this.crypto.contiguous());
    return this.result;
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
      this.keys = initialKeys(version, dcid, 'client in');
      this.version = version;
    }
    if (this.version !== version || pnOffset + 4 + 16 > end) return { length: end - off, initial: true };
    const plain = this.unprotect(d.subarray(off, end), pnOffset - off);
    if (plain) this.frames(plain);
    return { length: end - off, initial: true };
  }

  private unprotect(pkt: Buffer, pnOffset: number): Buffer | null {
    const u = unmask(pkt, pnOffset, this.keys!, true);
    if (!u || u.sealed.length < 16) return null;
    const pn = fullPacketNumber(this.largest, u.truncated, u.pnLength);
    const plain = openPacket(this.keys!, u, pn);
    // (a packet that does not authenticate is no packet of this connection's, or a corrupted one)
    if (plain) this.largest = Math.max(this.largest, pn);
    return plain;
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
        this.crypto.add(offset, b.subarray(p, p + len));
        p += len;
        continue;
      }
      // CONNECTION_CLOSE or anything unexpected in an Initial: nothing more we need from this packet
      return;
    }
  }
}
