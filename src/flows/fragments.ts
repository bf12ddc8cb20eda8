// IP fragments put together again, as the receiving host does (RFC 791, RFC 8200 §4.5) and tshark does before its UDP
// dissectors. A datagram over the path's MTU comes in fragments, and only the first carries the ports: a DNS answer
// with DNSSEC records or many addresses, an EDNS answer of 4 KiB over a 1,500-byte link. Each fragment counts for its
// datagram's flow (its packets and bytes, and a filtered export carries it), and a UDP datagram whose fragments all
// came goes to the dissectors whole; one that never completes goes as far as its first fragment's bytes reach, as
// before. Bounded: at most MAX_DATAGRAMS datagrams waiting (the oldest gives up first), each at most
// MAX_DATAGRAM_BYTES in MAX_PARTS fragments, and a datagram waits FRAGMENT_TIMEOUT_MS of capture time at most.
import { DecodedPacket, PROTO_UDP } from './decode.js';

/** Linux's net.ipv4.ipfrag_time: how long a host waits for a datagram's fragments */
export const FRAGMENT_TIMEOUT_MS = 30_000;
export const MAX_DATAGRAMS = 1024;
const MAX_PARTS = 64;
/** an IPv4 datagram's largest (IPv6 jumbograms are not fragmented) */
const MAX_DATAGRAM_BYTES = 65_535;

export interface Datagram<T> {
  readonly key: string;
  /** the flow of its first fragment; null before that came */
  flow: T | null;
  fromClient: boolean;
  /** its bytes are kept for the dissectors (a UDP datagram's; a TCP segment's are only counted) */
  keep: boolean;
  /** the fragments by their offset in the datagram's fragmentable part, with their bytes when kept */
  parts: { at: number; len: number; bytes: Buffer | null }[];
  held: number;
  /** the fragmentable part's length, once the last fragment came; else -1 */
  end: number;
  /** where the transport header begins in the fragmentable part (after IPv6 extension headers), from the first fragment */
  transportAt: number;
  srcPort: number;
  dstPort: number;
  ipVersion: 4 | 6;
  /** the source and destination addresses' bytes, for the whole datagram's DecodedPacket */
  addresses: Buffer;
  /** fragments that came before the first: counted for the flow when the first comes */
  waitingPackets: number;
  waitingBytes: number;
  waitingLast: number;
  /** capture time of its first fragment seen, for the timeout */
  since: number;
  /** too many fragments or bytes: no longer kept, only counted */
  overflow: boolean;
}

export class FragmentTable<T> {
  private readonly waiting = new Map<string, Datagram<T>>();

  /** `giveUp`: a datagram that will not complete (timed out, pushed out, or the capture ended), already removed. */
  constructor(private readonly giveUp: (dg: Datagram<T>) => void) {}

  get size(): number {
    return this.waiting.size;
  }

  /** A fragment after the first (no ports): its datagram, made if it is the first fragment of it seen. */
  later(node: string, d: DecodedPacket, ts: number): Datagram<T> {
    const dg = this.datagram(node, d, ts);
    if (!d.moreFragments) dg.end = Math.max(dg.end, d.fragOffset + (d.fragEnd - d.fragStart));
    // (a TCP datagram's bytes are not kept: whether a datagram is TCP's is known from its first fragment, held till then)
    this.hold(dg, d, dg.flow === null || dg.keep);
    return dg;
  }

  /** A first fragment (ports known) of `flow`'s; `keep`: its datagram's bytes go to the dissectors. */
  first(node: string, d: DecodedPacket, ts: number, flow: T, fromClient: boolean, keep: boolean): Datagram<T> {
    const dg = this.datagram(node, d, ts);
    dg.flow = flow;
    dg.fromClient = fromClient;
    dg.keep = keep;
    dg.srcPort = d.srcPort;
    dg.dstPort = d.dstPort;
    dg.transportAt = d.transportAt;
    if (!d.moreFragments) dg.end = Math.max(dg.end, d.fragEnd - d.fragStart);
    if (!keep) {
      for (const p of dg.parts) p.bytes = null;
      dg.held = 0;
    }
    this.hold(dg, d, keep);
    return dg;
  }

  /**
   * The whole datagram as one packet once all its fragments came (the datagram is then done with, removed), else null.
   * Overlapping fragments: the bytes that came first stand, as Linux keeps them (RFC 5722 drops the datagram for IPv6).
   */
  whole(dg: Datagram<T>): DecodedPacket | null {
    if (dg.flow === null || dg.end < 0 || this.covered(dg) < dg.end) return null;
    this.waiting.delete(dg.key);
    return dg.keep && !dg.overflow ? this.packet(dg, dg.end) : null;
  }

  /** As far as a datagram's bytes reach without a hole from its start (a datagram given up), or null without its first. */
  partial(dg: Datagram<T>): DecodedPacket | null {
    if (dg.flow === null || !dg.keep) return null;
    return this.packet(dg, this.covered(dg));
  }

  /** Every datagram still waiting gives up (the capture ended). */
  drain(): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const dg of all) this.giveUp(dg);
  }

  /** The fragmentable part's bytes from its start without a hole. */
  private covered(dg: Datagram<T>): number {
    const parts = [...dg.parts].sort((a, b) => a.at - b.at);
    let to = 0;
    for (const p of parts) {
      if (p.at > to) break;
      to = Math.max(to, p.at + p.len);
    }
    return to;
  }

  private packet(dg: Datagram<T>, upTo: number): DecodedPacket | null {
    const a = dg.addresses.length;
    const part = Buffer.alloc(upTo);
    // (later fragments first, so that the bytes that came first are written last and stand)
    for (let i = dg.parts.length - 1; i >= 0; i--) {
      const p = dg.parts[i]!;
      if (p.bytes && p.at < upTo) p.bytes.copy(part, p.at, 0, Math.min(p.bytes.length, upTo - p.at));
    }
    const udp = part.subarray(dg.transportAt);
    if (udp.length < 8) return null;
    const data = Buffer.concat([dg.addresses, udp]);
    const d = new DecodedPacket(dg.ipVersion, data, 0, data.length);
    d.proto = PROTO_UDP;
    d.srcPort = dg.srcPort;
    d.dstPort = dg.dstPort;
    d.payloadStart = a + 8;
    d.payloadEnd = data.length;
    // (the length its UDP header declares: more than the bytes when a datagram given up was cut)
    d.payloadLen = Math.max(0, udp.readUInt16BE(4) - 8);
    return d;
  }

  private hold(dg: Datagram<T>, d: DecodedPacket, bytes: boolean): void {
    if (dg.overflow) return;
    const len = d.fragEnd - d.fragStart;
    if (dg.parts.length >= MAX_PARTS || dg.held + len > MAX_DATAGRAM_BYTES || d.fragOffset + len > MAX_DATAGRAM_BYTES) {
      dg.overflow = true;
      return;
    }
    // (a copy: the packet's bytes are the reader's buffer, read into again)
    dg.parts.push({ at: d.fragOffset, len, bytes: bytes ? Buffer.from(d.data.subarray(d.fragStart, d.fragEnd)) : null });
    if (bytes) dg.held += len;
  }

  private keyOf(node: string, d: DecodedPacket): string {
    const addrLen = d.ipVersion === 4 ? 8 : 32;
    return `${node}\0${d.ipVersion}\0${d.data.toString('latin1', d.addrOffset, d.addrOffset + addrLen)}\0${d.proto}\0${d.fragId}`;
  }

  private datagram(node: string, d: DecodedPacket, ts: number): Datagram<T> {
    const key = this.keyOf(node, d);
    let dg = this.waiting.get(key);
    if (dg) return dg;
    this.expire(ts);
    const addrLen = d.ipVersion === 4 ? 8 : 32;
    dg = {
      key, flow: null, fromClient: true, keep: true, parts: [], held: 0, end: -1, transportAt: -1, srcPort: 0, dstPort: 0, ipVersion: d.ipVersion,
      addresses: Buffer.from(d.data.subarray(d.addrOffset, d.addrOffset + addrLen)), waitingPackets: 0, waitingBytes: 0, waitingLast: ts,
      since: ts, overflow: false,
    };
    this.waiting.set(key, dg);
    return dg;
  }

  /** Datagrams waiting past the timeout give up, and the oldest while too many wait (the map keeps arrival order). */
  private expire(now: number): void {
    for (const [key, dg] of this.waiting) {
      if (this.waiting.size < MAX_DATAGRAMS && dg.since >= now - FRAGMENT_TIMEOUT_MS) break;
      this.waiting.delete(key);
      this.giveUp(dg);
    }
  }
}
