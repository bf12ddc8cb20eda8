// QUIC Initial packets: remove header protection, decrypt with the Initial keys every observer can derive from the
// client's Destination Connection ID (RFC 9001 §5.2; after a Retry, from the one the Retry gave), collect CRYPTO frames
// by offset (a ClientHello with post-quantum key shares spans several packets, and clients reorder CRYPTO frames on
// purpose) and hand the assembled message to the TLS dissector. The client's give its ClientHello (the result feeds
// ja4(ch, 'quic')); the server's, when fed, its ServerHello: the cipher suite and TLS version it chose.
import type { ClientHello, ServerHello } from './tls.js';
import { QUIC_VERSIONS, QuicInitials, longHeader, quicVersion } from './quic-packet.js';

/** True for a datagram starting with a QUIC long-header Initial of a version we can decrypt. */
export function looksLikeQuicInitial(datagram: Buffer): boolean {
  if (datagram.length < 7 || (datagram[0]! & 0xc0) !== 0xc0) return false;
  const raw = datagram.readUInt32BE(1);
  const v = quicVersion(raw);
  if (v === undefined || ((datagram[0]! >> 4) & 3) !== v.initialType) return false;
  // (a greased version's (0x?a?a?a?a) only as a client's first Initial is: padded to 1,200 bytes, a DCID of at most 20;
  // any datagram of 0xca bytes would pass for one otherwise)
  return QUIC_VERSIONS.has(raw) || (datagram.length >= 1200 && datagram[5]! <= 20);
}

/** Collects one connection's Initial packets until the ClientHello (and, when fed, the ServerHello) is complete. */
export class QuicInitialParser {
  /** both sides' Initials, with the keys of the client's first Destination Connection ID's (or a Retry's) */
  private initials: QuicInitials | null = null;
  private result: ClientHello | null | 'incomplete' = 'incomplete';
  private server: ServerHello | null | 'incomplete' = 'incomplete';
  /** the server sent a Retry (seen by pushServer): the client's Initials after it hold the keys of its Initial */
  private retry = false;

  /**
   * Feed one client -> server UDP payload. Returns the ClientHello once complete, null when this is not
   * QUIC we can read (or the hello is malformed), 'incomplete' while more Initial packets are needed.
   */
  push(datagram: Buffer): ClientHello | null | 'incomplete' {
    // why: after a Retry the server's Initial opens only with the keys the client's next Initial begins, so that
    // Initial is read even when the hello came whole before the Retry
    if (this.result !== 'incomplete' && !(this.retry && this.server === 'incomplete' && !this.initials!.retried)) return this.result;
    let sawInitial = false;
    for (let off = 0; off < datagram.length;) {
      const h = longHeader(datagram, off);
      if (!h) break;
      if (h.initial) {
        sawInitial = true;
        this.initials ??= new QuicInitials(h.version, h.dcid);
        this.initials.read(datagram, off, h, true);
      }
      off = h.end;
    }
    if (this.initials === null) {
      if (!sawInitial) this.result = null;
      return this.result;
    }
    if (this.result === 'incomplete') this.result = this.initials.clientHello();
    return this.result;
  }

  /**
   * Feed one server -> client UDP payload (after the client's first Initial, whose connection ID the keys come from).
   * Returns the ServerHello once complete (a HelloRetryRequest skipped), null when the server's Initial CRYPTO data is
   * no ServerHello, 'incomplete' until then.
   */
  pushServer(datagram: Buffer): ServerHello | null | 'incomplete' {
    if (this.server !== 'incomplete' || this.initials === null) return this.server;
    for (let off = 0; off < datagram.length;) {
      const h = longHeader(datagram, off);
      if (!h) break;
      if (h.retry) this.retry = true;
      else if (h.initial) this.initials.read(datagram, off, h, false);
      off = h.end;
    }
    this.server = this.initials.serverHello();
    return this.server;
  }
}
