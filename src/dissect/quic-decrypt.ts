// A QUIC connection decrypted with a key log's secrets (RFC 9001): both sides' Initial packets (keys every observer
// can make, from the client's connection ID or after a Retry the Retry's: see QuicInitials) give the client random that
// finds the secrets and the cipher suite the server chose; the 1-RTT packets,
// opened with keys from CLIENT_TRAFFIC_SECRET_0 / SERVER_TRAFFIC_SECRET_0 (and the key updates after them), give
// their STREAM frames, reassembled per stream and read as HTTP/3 (http3.ts); so do the client's 0-RTT packets (early
// data on a resumed session: the requests it sends with its hello), opened with CLIENT_EARLY_TRAFFIC_SECRET's keys.
// Of the Handshake packets only the server's first are read, with SERVER_HANDSHAKE_TRAFFIC_SECRET's keys, for its
// EncryptedExtensions: whether it took the early data. A client whose early data was declined sends it again in 1-RTT
// packets: declined 0-RTT packets opened after that is known are not read as stream bytes, and the same stream bytes
// are read once otherwise. Until its secrets come (a key log followed while the capture runs) a connection keeps its
// 0-RTT, 1-RTT and first Handshake packets, up to a bound.
import type { HttpMessage } from './http1.js';
import { Http3Connection } from './http3.js';
import {
  CryptoStream, LongHeaderSpace, QuicInitials, quicVersion, fullPacketNumber, longHeader, nextSecret, openPacket, packetKeys, readFrames, unmask,
  type PacketKeys, type QuicVersion, type Unmasked,
} from './quic-packet.js';
import type { EarlyDataStatus } from '../model/flow.js';
import { earlyDataTaken, suite13, type ConnectionSecrets } from './tls-keylog.js';
import { cipherName } from './tls.js';
import { Later } from '../util/in-order.js';

/** Out-of-order STREAM bytes kept per stream direction before the stream is given up. */
const MAX_STREAM_PENDING = 256 * 1024;
/** ... and per connection, all its streams together */
const MAX_PENDING = 4 * 1024 * 1024;
/**
 * Stream directions remembered per connection: past it the oldest finished ones are forgotten (a long-lived
 * connection carries a stream per request; a retransmission of one that old is not expected).
 */
const MAX_STREAMS = 4096;
/** The largest UDP payload on a wire (an Ethernet MTU's); a larger datagram is a GSO batch (see segments). */
const MAX_DATAGRAM = 1500 - 28;
/** Segment sizes QUIC senders use (RFC 9000's minimum, common path MTUs less IPv4/IPv6 and UDP headers). */
const SEGMENT_SIZES = [1200, 1232, 1252, 1280, 1350, 1357, 1392, 1406, 1452, 1472];
/** 1-RTT bytes kept per direction while the secrets are not there. */
const QUIC_AWAIT_BYTES = 256 * 1024;

/** One direction's 1-RTT protection: the current generation's keys and secret, the previous keys for late packets. */
interface Direction {
  keys: PacketKeys | null;
  secret: Buffer | null;
  /** the current generation's key phase bit (0 or 4) */
  phase: number;
  previous: PacketKeys | null;
  largest: number;
  /** 1-RTT packets opened */
  packets: number;
  /** ... that carried STREAM data */
  streamPackets: number;
  /** 1-RTT packets that did not authenticate under any of the keys */
  failed: number;
  /** the largest packet opened that was no GSO batch: the size its batches' segments likely have */
  segment: number;
  /** 1-RTT packets kept until the secrets come, and their bytes */
  waiting: { pkt: Buffer; ts: number }[];
  waitingBytes: number;
  /** 1-RTT packets dropped while waiting (past QUIC_AWAIT_BYTES) */
  dropped: number;
}

/** The client's 0-RTT packets: their keys, those opened, those not, those kept until the secrets come. */
interface EarlyPackets {
  keys: PacketKeys | null;
  packets: number;
  /** ... that carried STREAM data */
  streamPackets: number;
  /** seen and not opened: no keys for them (counted once the secrets came without them), or they did not authenticate */
  unread: number;
  waiting: { pkt: Buffer; pnOffset: number; ts: number }[];
  waitingBytes: number;
}

/** The server's first Handshake packets, read for its EncryptedExtensions (whether it took the client's 0-RTT packets). */
interface ServerHandshake {
  space: LongHeaderSpace | null;
  crypto: CryptoStream;
  /** earlyDataTaken of its EncryptedExtensions, once read */
  taken: boolean | null;
  waiting: { pkt: Buffer; pnOffset: number }[];
  /** packets seen before its EncryptedExtensions was read */
  seen: number;
}

/** A server's Handshake packets read for its EncryptedExtensions, which is in its first unless one was lost. */
const MAX_HANDSHAKE_PACKETS = 8;

function direction(): Direction {
  return { keys: null, secret: null, phase: 0, previous: null, largest: -1, segment: 0, packets: 0, streamPackets: 0, failed: 0, waiting: [], waitingBytes: 0, dropped: 0 };
}

/** One direction of one stream, reassembled. */
interface StreamBytes {
  next: number;
  /** its pieces after a hole */
  later: Later;
  /** where the stream ends (its FIN's offset), -1 until known */
  end: number;
  finished: boolean;
  lost: boolean;
}

export class QuicDecryptor {
  private readonly version: QuicVersion;
  private readonly initials: QuicInitials;
  /** the client's and the server's connection IDs (their Source Connection IDs): the length of a short header's */
  private clientCid: Buffer | null = null;
  private serverCid: Buffer | null = null;
  private readonly c2s = direction();
  private readonly s2c = direction();
  private readonly early: EarlyPackets = { keys: null, packets: 0, streamPackets: 0, unread: 0, waiting: [], waitingBytes: 0 };
  private readonly hs: ServerHandshake = { space: null, crypto: new CryptoStream(), taken: null, waiting: [], seen: 0 };
  private readonly streams = new Map<string, StreamBytes>();
  /** out-of-order STREAM bytes kept, all streams */
  private pending = 0;
  private readonly h3 = new Http3Connection();
  private secretsSet = false;
  private cipherCode: number | null = null;
  /** why its 1-RTT packets cannot be opened, once known (secrets without what the keys need, given up) */
  private why: string | null = null;

  /** `first`: the client's first datagram (its Initial names the version and the connection ID the keys come from). */
  constructor(first: Buffer) {
    const version = quicVersion(first.readUInt32BE(1));
    if (!version) throw new Error('not a QUIC version this reader knows');
    this.version = version;
    this.initials = new QuicInitials(version, first.subarray(6, 6 + first[5]!));
  }

  /** The ClientHello's random (the key log's index), once the client's Initials carried it. */
  get clientRandom(): Buffer | null {
    return this.initials.clientRandom();
  }

  /** The cipher suite of the server's ServerHello, once its Initials carried it. */
  get cipher(): number | null {
    this.cipherCode ??= this.initials.serverCipher();
    return this.cipherCode;
  }

  /**
   * Why its 1-RTT packets cannot be opened: once known (secrets without what the keys need, given up); before its
   * secrets are set, while its server's ServerHello is not read, that (its cipher suite is what the keys are made for).
   */
  get reason(): string | null {
    return this.why ?? (this.secretsSet || this.cipher !== null ? null : this.initials.serverHelloMissing);
  }

  get hasSecrets(): boolean {
    return this.secretsSet;
  }

  /** 1-RTT packets opened, both directions, and those that carried stream data per direction. */
  get packets(): number {
    return this.c2s.packets + this.s2c.packets;
  }

  streamPackets(c2s: boolean): number {
    // (early data the server declined is no plaintext of the client's it read)
    return (c2s ? this.c2s : this.s2c).streamPackets + (c2s && this.hs.taken !== false ? this.early.streamPackets : 0);
  }

  /**
   * The client's 0-RTT packets, when it sent some: declined by the server (its EncryptedExtensions, when the key log has
   * its handshake secret), else read or not.
   */
  get earlyData(): EarlyDataStatus | null {
    const e = this.early;
    if (this.hs.taken === false && e.packets + e.unread > 0) return { status: 'rejected', records: e.packets + e.unread, reason: null };
    if (e.unread > 0) {
      return { status: 'not-decrypted', records: e.unread, reason: e.keys ? "they did not authenticate with the key log's CLIENT_EARLY_TRAFFIC_SECRET" : 'the key log has no CLIENT_EARLY_TRAFFIC_SECRET for it' };
    }
    return e.packets > 0 ? { status: 'decrypted', records: e.packets, reason: null } : null;
  }

  /** Why some of its packets were not read, in words; null when all were. */
  get problems(): string | null {
    const out: string[] = [];
    if (this.reason) out.push(this.reason);
    for (const [name, d] of [['client to server', this.c2s], ['server to client', this.s2c]] as const) {
      if (d.failed > 0) out.push(`${name}: ${d.failed} packets did not authenticate with the key log's keys`);
      if (d.dropped > 0) out.push(`${name}: ${d.dropped} packets were not kept while it waited for its secrets`);
    }
    if (this.h3.failedStreams > 0) out.push(`${this.h3.failedStreams} HTTP/3 stream directions could not be read (bytes lost or malformed)`);
    return out.length > 0 ? out.join('; ') : null;
  }

  /** One datagram's packets; HTTP messages they completed are returned. */
  push(datagram: Buffer, c2s: boolean, ts: number): HttpMessage[] {
    const out: HttpMessage[] = [];
    for (let off = 0; off < datagram.length;) {
      const used = (datagram[off]! & 0x80) !== 0 ? this.longPacket(datagram, off, c2s, ts, out) : this.shortPacket(datagram.subarray(off), c2s, ts, out, true);
      if (used <= 0) break;
      off += used;
    }
    return out;
  }

  /**
   * The connection's secrets (from the key log): the waiting 1-RTT packets are opened; returns the messages they made.
   * Without both traffic secrets, or without the server's cipher, its packets stay unread (reason).
   */
  setSecrets(secrets: ConnectionSecrets): HttpMessage[] {
    const out: HttpMessage[] = [];
    if (this.secretsSet) return out;
    this.secretsSet = true;
    const code = this.cipher;
    const suite = code === null ? null : suite13(code);
    if (!secrets.client0 || !secrets.server0) this.why = 'the key log has no CLIENT_TRAFFIC_SECRET_0 and SERVER_TRAFFIC_SECRET_0 for it';
    else if (code === null) this.why = this.initials.serverHelloMissing;
    else if (!suite) this.why = `its cipher suite ${cipherName(code)} is not one QUIC uses`;
    else if (secrets.client0.length !== (suite.hash === 'sha384' ? 48 : 32) || secrets.server0.length !== secrets.client0.length) this.why = `its secrets do not fit its cipher suite ${suite.name}`;
    if (this.why) {
      this.giveUp();
      return out;
    }
    for (const [d, secret] of [[this.c2s, secrets.client0!], [this.s2c, secrets.server0!]] as const) {
      d.secret = secret;
      d.keys = packetKeys(suite!, secret, this.version.labelPrefix);
    }
    // (early data is under the resumed session's suite, the server's when it takes it)
    if (secrets.clientEarly?.length === secrets.client0!.length) this.early.keys = packetKeys(suite!, secrets.clientEarly, this.version.labelPrefix);
    // (the server's Handshake packets first: whether the 0-RTT packets were taken, before their stream bytes are read)
    if (secrets.serverHandshake?.length === secrets.client0!.length) this.hs.space = new LongHeaderSpace(packetKeys(suite!, secrets.serverHandshake, this.version.labelPrefix));
    const hs = this.hs.waiting;
    this.hs.waiting = [];
    for (const w of hs) this.serverHandshake(w.pkt, w.pnOffset, false);
    // (the 0-RTT packets next: the client's stream bytes in them come before its 1-RTT packets')
    const early = this.early.waiting;
    this.early.waiting = [];
    this.early.waitingBytes = 0;
    for (const w of early) this.zeroRtt(w.pkt, w.pnOffset, w.ts, out, false);
    for (const [d, c2s] of [[this.c2s, true], [this.s2c, false]] as const) {
      const waiting = d.waiting;
      d.waiting = [];
      d.waitingBytes = 0;
      for (const w of waiting) this.shortPacket(w.pkt, c2s, w.ts, out, false);
    }
    return out;
  }

  /** No secrets will come: the packets kept for them are let go. */
  giveUp(reason?: string): void {
    if (reason && !this.why) this.why = reason;
    for (const d of [this.c2s, this.s2c, this.early]) {
      d.waiting = [];
      d.waitingBytes = 0;
    }
    this.hs.waiting = [];
  }

  /** A long-header packet at `off`: its length, or 0 to stop reading the datagram. */
  private longPacket(d: Buffer, off: number, c2s: boolean, ts: number, out: HttpMessage[]): number {
    const h = longHeader(d, off);
    if (!h || h.version !== this.version) return 0;
    if (c2s) this.clientCid ??= Buffer.from(h.scid);
    // (a Retry's Source Connection ID is only for the client's next Initials: the server's own is in its Initial)
    else if (!h.retry) this.serverCid ??= Buffer.from(h.scid);
    if (h.initial) this.initials.read(d, off, h, c2s);
    else if (h.zeroRtt && c2s) {
      this.zeroRtt(d.subarray(off, h.end), h.pnOffset - off, ts, out, true);
    } else if (h.handshake && !c2s) {
      this.serverHandshake(d.subarray(off, h.end), h.pnOffset - off, true);
    }
    return h.end - off;
  }

  /**
   * One of the server's Handshake packets, until its EncryptedExtensions is read: opened with its handshake keys, kept
   * when the secrets are not there yet (`keep`); its CRYPTO frames' bytes are the handshake messages.
   */
  private serverHandshake(pkt: Buffer, pnOffset: number, keep: boolean): void {
    const hs = this.hs;
    if (hs.taken !== null || ++hs.seen > MAX_HANDSHAKE_PACKETS) return;
    if (!hs.space) {
      if (keep && !this.secretsSet) hs.waiting.push({ pkt: Buffer.from(pkt), pnOffset });
      return;
    }
    const plain = hs.space.openPacket(pkt, pnOffset);
    if (!plain) return;
    readFrames(plain, { crypto: (offset, data) => hs.crypto.add(offset, data) });
    hs.taken = earlyDataTaken(hs.crypto.contiguous());
  }

  /**
   * A 0-RTT packet of the client's (its packet number at `pnOffset`): opened with the early keys, kept when the secrets
   * are not there yet (`keep`). Its packet numbers are those of the 1-RTT packets after it (one space, RFC 9000 §12.3).
   */
  private zeroRtt(pkt: Buffer, pnOffset: number, ts: number, out: HttpMessage[], keep: boolean): void {
    const e = this.early;
    if (!e.keys) {
      if (!keep || this.secretsSet) e.unread++;
      else if (e.waitingBytes + pkt.length > QUIC_AWAIT_BYTES) this.c2s.dropped++;
      else {
        e.waiting.push({ pkt: Buffer.from(pkt), pnOffset, ts });
        e.waitingBytes += pkt.length;
      }
      return;
    }
    const u = unmask(pkt, pnOffset, e.keys, true);
    const pn = u ? fullPacketNumber(this.c2s.largest, u.truncated, u.pnLength) : -1;
    const plain = u ? openPacket(e.keys, u, pn) : null;
    if (!plain) {
      e.unread++;
      return;
    }
    this.c2s.largest = Math.max(this.c2s.largest, pn);
    e.packets++;
    // (declined, as known already: the client sends its stream bytes again in 1-RTT packets, the ones the server read)
    if (this.hs.taken === false ? readFrames(plain, {}) : this.frames(plain, true, ts, out)) e.streamPackets++;
  }

  /**
   * A short-header (1-RTT) packet, the rest of its datagram: opened with the direction's keys, kept when they are not
   * there yet (`keep`). Returns the bytes it took (all).
   */
  private shortPacket(pkt: Buffer, c2s: boolean, ts: number, out: HttpMessage[], keep: boolean): number {
    const dir = c2s ? this.c2s : this.s2c;
    // (the Destination Connection ID is the other side's: the server's for the client's packets)
    const cid = c2s ? this.serverCid : this.clientCid;
    // (the fixed bit 0x40 is not checked: a peer that allows it greases it, RFC 9287, as ngtcp2 does)
    if (cid === null) return pkt.length;
    if (!dir.keys) {
      if (keep && !this.secretsSet) {
        if (dir.waitingBytes + pkt.length > QUIC_AWAIT_BYTES) dir.dropped++;
        else {
          dir.waiting.push({ pkt: Buffer.from(pkt), ts });
          dir.waitingBytes += pkt.length;
        }
      }
      return pkt.length;
    }
    const u = unmask(pkt, 1 + cid.length, dir.keys, false);
    if (!u) return pkt.length;
    const pn = fullPacketNumber(dir.largest, u.truncated, u.pnLength);
    const plain = this.open1Rtt(dir, u, pn, true);
    if (!plain) {
      if (pkt.length > MAX_DATAGRAM && this.segments(pkt, c2s, ts, out)) return pkt.length;
      dir.failed++;
      return pkt.length;
    }
    if (pkt.length <= MAX_DATAGRAM) dir.segment = Math.max(dir.segment, pkt.length);
    dir.largest = Math.max(dir.largest, pn);
    dir.packets++;
    if (this.frames(plain, c2s, ts, out)) dir.streamPackets++;
    return pkt.length;
  }

  /**
   * A 1-RTT packet opened with the direction's keys for its key phase: the current generation's, or after a key update
   * (RFC 9001 §6) the next one's (`advance`: the direction moves to it) or, for a late packet, the one before.
   */
  private open1Rtt(dir: Direction, u: Unmasked, pn: number, advance: boolean): Buffer | null {
    const keys = dir.keys!;
    const phase = u.first & 0x04;
    if (phase === dir.phase) return openPacket(keys, u, pn);
    const late = dir.previous ? openPacket(dir.previous, u, pn) : null;
    if (late) return late;
    const secret = nextSecret(keys.suite, dir.secret!, this.version.labelPrefix);
    const next = packetKeys(keys.suite, secret, this.version.labelPrefix, keys.hp);
    const plain = openPacket(next, u, pn);
    if (plain && advance) {
      dir.previous = keys;
      dir.keys = next;
      dir.secret = secret;
      dir.phase = phase;
    }
    return plain;
  }

  /**
   * A datagram larger than any on a wire: a sender's UDP segmentation offload (GSO) batch captured before the kernel
   * split it (loopback, veth, a host's own traffic). Its packets are its segments, all of one size but the last; the
   * size is found by opening the first segment at the sizes packets have (this direction's largest so far, then
   * common ones). True when one fit and the segments were read.
   */
  private segments(batch: Buffer, c2s: boolean, ts: number, out: HttpMessage[]): boolean {
    const dir = c2s ? this.c2s : this.s2c;
    const cid = c2s ? this.serverCid : this.clientCid;
    for (const size of new Set([dir.segment, ...SEGMENT_SIZES])) {
      if (size <= 0 || size >= batch.length) continue;
      const u = unmask(batch.subarray(0, size), 1 + cid!.length, dir.keys!, false);
      if (!u || !this.open1Rtt(dir, u, fullPacketNumber(dir.largest, u.truncated, u.pnLength), false)) continue;
      for (let at = 0; at < batch.length; at += size) this.shortPacket(batch.subarray(at, Math.min(at + size, batch.length)), c2s, ts, out, false);
      return true;
    }
    return false;
  }

  /** The capture ended: the HTTP/3 requests and responses whose headers came, their streams not ended, as they are. */
  end(): HttpMessage[] {
    const out: HttpMessage[] = [];
    this.h3.close(out);
    return out;
  }

  /** A 0-RTT or 1-RTT packet's frames: STREAM data, and CONNECTION_CLOSE ending HTTP/3; true when it carried stream data. */
  private frames(b: Buffer, c2s: boolean, ts: number, out: HttpMessage[]): boolean {
    return readFrames(b, {
      stream: (id, offset, data, fin) => this.streamData(id, c2s, offset, data, fin, ts, out),
      close: () => this.h3.close(out),
    });
  }

  /** A STREAM frame's bytes: the stream's in-order bytes go to HTTP/3, later ones wait for the hole before them. */
  private streamData(id: number, c2s: boolean, offset: number, data: Buffer, fin: boolean, ts: number, out: HttpMessage[]): void {
    const key = `${id}${c2s ? 'c' : 's'}`;
    let s = this.streams.get(key);
    if (!s) {
      this.streams.set(key, (s = { next: 0, later: new Later(), end: -1, finished: false, lost: false }));
      if (this.streams.size > MAX_STREAMS) {
        for (const [k, old] of this.streams) {
          if (this.streams.size <= MAX_STREAMS) break;
          if (old.finished || old.lost) this.streams.delete(k);
        }
      }
    }
    if (s.finished || s.lost) return;
    if (fin) s.end = offset + data.length;
    if (offset > s.next) {
      if (s.later.bytes + data.length > MAX_STREAM_PENDING || this.pending + data.length > MAX_PENDING) {
        s.lost = true;
        this.pending -= s.later.bytes;
        s.later.clear();
        this.h3.gap(id, c2s);
        return;
      }
      if (s.later.wants(offset, data.length)) {
        s.later.push(offset, Buffer.from(data));
        this.pending += data.length;
      }
      return;
    }
    let chunk: Buffer | null = offset + data.length > s.next ? data.subarray(s.next - offset) : null;
    while (chunk) {
      s.next += chunk.length;
      const done = s.end >= 0 && s.next >= s.end;
      this.h3.data(id, c2s, chunk, done, ts, out);
      if (done) {
        s.finished = true;
        this.pending -= s.later.bytes;
        s.later.clear();
        return;
      }
      const before = s.later.bytes;
      chunk = s.later.from(s.next);
      this.pending -= before - s.later.bytes;
    }
    if (s.end >= 0 && s.next >= s.end && !s.finished) {
      // (a FIN with no bytes of its own)
      s.finished = true;
      this.h3.data(id, c2s, Buffer.alloc(0), true, ts, out);
    }
  }
}
