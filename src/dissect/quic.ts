// QUIC Initial packets (client -> server UDP datagrams): remove header protection, decrypt with the
// Initial keys every observer can derive from the Destination Connection ID (RFC 9001 §5.2), collect
// CRYPTO frames by offset (a ClientHello with post-quantum key shares spans several packets, and
// clients reorder CRYPTO frames on purpose) and hand the assembled message to the TLS dissector.
// The result feeds ja4(ch, 'quic').
import { parseClientHelloMessage, type ClientHello } from './tls.js';
import { CryptoStream, LongHeaderSpace, QUIC_VERSIONS as VERSIONS, initialKeys, longHeader, readFrames, type QuicVersion } from './quic-packet.js';

/** True for a datagram starting with a QUIC long-header Initial of a version we can decrypt. */
export function looksLikeQuicInitial(datagram: Buffer): boolean {
  if (datagram.length < 7 || (datagram[0]! & 0xc0) !== 0xc0) return false;
  const v = VERSIONS.get(datagram.readUInt32BE(1));
  return v !== undefined && ((datagram[0]! >> 4) & 3) === v.initialType;
}

/** Collects one connection's client Initial packets until the ClientHello is complete. */
export class QuicInitialParser {
  /** the client's Initials, with the keys of its first Destination Connection ID (it keeps them for all of them) */
  private space: LongHeaderSpace | null = null;
  private version: QuicVersion | null = null;
  private readonly crypto = new CryptoStream();
  private result: ClientHello | null | 'incomplete' = 'incomplete';

  /**
   * Feed one client -> server UDP payload. Returns the ClientHello once complete, null when this is not
   * QUIC we can read (or the hello is malformed), 'incomplete' while more Initial packets are needed.
   */
  push(datagram: Buffer): ClientHello | null | 'incomplete' {
    if (this.result !== 'incomplete') return this.result;
    let sawInitial = false;
    for (let off = 0; off < datagram.length;) {
      const h = longHeader(datagram, off);
      if (!h) break;
      if (h.initial) {
        sawInitial = true;
        this.space ??= new LongHeaderSpace(initialKeys(h.version, h.dcid, 'client in'));
        this.version ??= h.version;
        const plain = this.version === h.version ? this.space.open(datagram, off, h) : null;
        if (plain) readFrames(plain, { crypto: (offset, data) => this.crypto.add(offset, data) });
      }
      off = h.end;
    }
    if (!sawInitial && this.space === null) {
      this.result = null;
      return null;
    }
    this.result = parseClientHelloMessage(this.crypto.contiguous());
    return this.result;
  }
}
