// Packet decoding from link layer to transport: Ethernet, LINUX_SLL, LINUX_SLL2, RAW, NULL/LOOP; then VLAN/QinQ tags,
// PPPoE sessions and MPLS label stacks; IPv4 and IPv6 (extension headers; a fragment says where its bytes go, for
// the analyzer's reassembly in fragments.ts); TCP and UDP headers.
import {
  LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW,
} from '../pcapng/types.js';
import { ipv4ToString, ipv6ToString } from '../util/ip.js';
import { be16, be32, be32s, le32 } from '../pcapng/bytes.js';

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/**
 * One decoded packet. Addresses and payload are computed on first use: the flow table reads them only for
 * packets that start a flow or feed a dissector, and skipping the allocations is most of its speed.
 */
export class DecodedPacket {
  proto = 0;
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  tcpFlags = 0;
  /** Transport payload length according to the IP header. */
  payloadLen = 0;
  /** Part of a fragmented datagram. Non-first fragments carry no ports (proto set, ports 0). */
  fragment = false;
  firstFragment = false;
  /** Where the captured transport payload lies in `data`. */
  payloadStart = 0;
  payloadEnd = 0;
  /**
   * Where the IP payload (the transport header on) lies in `data`, whatever the protocol: for the export's redaction,
   * which reads tunnels (IP in IP, GRE) the flow table does not. 0 and 0 for a fragment after the first.
   */
  ipPayloadStart = 0;
  ipPayloadEnd = 0;
  /**
   * A fragment's (set only when `fragment`): the datagram's identification (IPv4's 16 bits, IPv6's 32), where its
   * fragmentable part lies in `data` and at which offset of the datagram's it goes, whether more follow, and (a first
   * fragment) where its transport header begins in that part.
   */
  fragId = 0;
  fragStart = 0;
  fragEnd = 0;
  fragOffset = 0;
  moreFragments = false;
  transportAt = 0;

  constructor(
    public ipVersion: 4 | 6,
    public data: Buffer,
    /** Offset of the IP source address in `data` (the destination follows it). */
    public addrOffset: number,
    /** Where the frame ends in `data`. */
    public frameEnd = data.length,
  ) {}

  /** Re-initialises a scratch instance (the flow table decodes every packet into the same object). */
  reset(ipVersion: 4 | 6, data: Buffer, addrOffset: number, frameEnd: number): this {
    this.ipVersion = ipVersion;
    this.data = data;
    this.addrOffset = addrOffset;
    this.frameEnd = frameEnd;
    this.proto = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.seq = 0;
    this.ack = 0;
    this.tcpFlags = 0;
    this.payloadLen = 0;
    this.fragment = false;
    this.firstFragment = false;
    this.payloadStart = 0;
    this.payloadEnd = 0;
    this.ipPayloadStart = 0;
    this.ipPayloadEnd = 0;
    return this;
  }

  /**
   * IPv4 source as a signed 32-bit number (IPv4 only): the flow table's key form. Signed, so addresses from
   * 128.0.0.0 up stay small integers: an unsigned one above 2^31 is a heap number, and the first such address
   * made the optimized flow-table code start over.
   */
  get src4(): number {
    return be32s(this.data, this.addrOffset);
  }

  get dst4(): number {
    return be32s(this.data, this.addrOffset + 4);
  }

  get src(): string {
    return this.ipVersion === 4 ? ipv4ToString(this.data, this.addrOffset) : ipv6ToString(this.data, this.addrOffset);
  }

  get dst(): string {
    return this.ipVersion === 4 ? ipv4ToString(this.data, this.addrOffset + 4) : ipv6ToString(this.data, this.addrOffset + 16);
  }

  /** Transport payload as captured (may be shorter than payloadLen after a snaplen cut). */
  get payload(): Buffer {
    return this.data.subarray(this.payloadStart, this.payloadEnd);
  }

  get payloadSize(): number {
    return this.payloadEnd - this.payloadStart;
  }
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_QINQ_OLD = 0x9100;
const ETH_PPPOE_SESSION = 0x8864;
const ETH_MPLS = 0x8847;
const ETH_MPLS_MULTICAST = 0x8848;
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;

/**
 * Decodes the frame data[start, end) (default: all of data); null for non-IP frames (ARP, LLDP, ...) and
 * frames too short to decode. Offsets in the result index `data`. `into` (a scratch instance) avoids an
 * allocation when the caller keeps nothing of it.
 */
export function decodePacket(linkType: number, data: Buffer, into?: DecodedPacket, start = 0, end = data.length): DecodedPacket | null {
  let off: number;
  let etherType: number;
  const len = end - start;
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      if (len < 14) return null;
      etherType = be16(data, start + 12);
      off = start + 14;
      break;
    }
    // why: an SLL or SLL2 protocol field can be a VLAN TPID with the tag after the header: libpcap on Linux puts the tag
    // the kernel stripped back in where the protocol was (pcap-linux.c, vlan_offset 14 for SLL), so `tcpdump -i any`
    // on a trunk writes such frames. They go through the same tag walk as Ethernet's (decodeEncapsulated).
    case LINKTYPE_LINUX_SLL:
      if (len < 16) return null;
      etherType = be16(data, start + 14);
      off = start + 16;
      break;
    case LINKTYPE_LINUX_SLL2:
      if (len < 20) return null;
      etherType = be16(data, start);
      off = start + 20;
      break;
    case LINKTYPE_RAW:
    case 12: // why: LINKTYPE_RAW's old number on some BSDs, written by some tools on Linux too
    case 14:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6: {
      if (len < 1) return null;
      const v = (data[start] ?? 0) >> 4;
      etherType = v === 4 ? ETH_IPV4 : v === 6 ? ETH_IPV6 : 0;
      off = start;
      break;
    }
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      if (len < 4) return null;
      // why: NULL stores the address family in the capturing host's byte order, LOOP in network order.
      const fam = linkType === LINKTYPE_LOOP ? be32(data, start) : (le32(data, start) < 0x10000 ? le32(data, start) : be32(data, start));
      etherType = fam === 2 ? ETH_IPV4 : fam === 24 || fam === 28 || fam === 30 || fam === 10 ? ETH_IPV6 : 0;
      off = start + 4;
      break;
    }
    default:
      return null;
  }
  if (etherType === ETH_IPV4) return decodeIpv4(data, off, end, into);
  if (etherType === ETH_IPV6) return decodeIpv6(data, off, end, into);
  return decodeEncapsulated(etherType, data, off, end, into);
}

/**
 * Walks what lies between a link header and IP: 802.1Q/802.1ad tags, a PPPoE session header, an MPLS label stack, in
 * any nesting (a VLAN carrying PPPoE, MPLS over QinQ), then decodes the IPv4 or IPv6 packet found; null for anything
 * else. It runs only for frames that are not IP right after the link header, so untagged traffic pays nothing for it.
 */
function decodeEncapsulated(etherType: number, data: Buffer, off: number, end: number, into?: DecodedPacket): DecodedPacket | null {
  // why: no step reads a length from the packet and every one moves on by at least 4 bytes, so the walk ends with
  // the frame whatever its bytes are.
  for (;;) {
    if (etherType === ETH_IPV4) return decodeIpv4(data, off, end, into);
    if (etherType === ETH_IPV6) return decodeIpv6(data, off, end, into);
    if (etherType === ETH_VLAN || etherType === ETH_QINQ || etherType === ETH_QINQ_OLD) {
      // A tag is the TCI, then the type of what follows.
      if (off + 4 > end) return null;
      etherType = be16(data, off + 2);
      off += 4;
    } else if (etherType === ETH_PPPOE_SESSION) {
      // Version/type, code, session id and length (6 bytes), then the PPP protocol number.
      if (off + 7 > end) return null;
      // why: PPP may send its protocol number as one byte (protocol field compression, RFC 1661 6.5); a compressed
      // one is odd, and a full one's first byte is always even. tshark reads both.
      let ppp = data[off + 6] ?? 0;
      if ((ppp & 1) === 0) {
        if (off + 8 > end) return null;
        ppp = be16(data, off + 6);
        off += 8;
      } else {
        off += 7;
      }
      etherType = ppp === PPP_IPV4 ? ETH_IPV4 : ppp === PPP_IPV6 ? ETH_IPV6 : 0;
    } else if (etherType === ETH_MPLS || etherType === ETH_MPLS_MULTICAST) {
      // Labels of 4 bytes each, until the one with the bottom-of-stack bit.
      let bottom = 0;
      while (bottom === 0) {
        if (off + 4 > end) return null;
        bottom = (data[off + 2] ?? 0) & 1;
        off += 4;
      }
      // why: the stack does not say what it carries (only the label's meaning to the routers does), so the IP
      // version nibble decides, as tshark's guess does; anything else (a pseudowire's control word) is not decoded.
      const v = (data[off] ?? 0) >> 4;
      etherType = v === 4 ? ETH_IPV4 : v === 6 ? ETH_IPV6 : 0;
    } else {
      return null;
    }
  }
}

function decodeIpv4(data: Buffer, off: number, end: number, into?: DecodedPacket): DecodedPacket | null {
  if (end < off + 20) return null;
  const vihl = data[off] ?? 0;
  if (vihl >> 4 !== 4) return null;
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20 || end < off + ihl) return null;
  const totalLen = be16(data, off + 2);
  const fragField = be16(data, off + 6);
  const moreFragments = (fragField & 0x2000) !== 0;
  const fragOffset = fragField & 0x1fff;
  const d = into ? into.reset(4, data, off + 12, end) : new DecodedPacket(4, data, off + 12, end);
  d.proto = data[off + 9] ?? 0;
  // why: totalLen trims Ethernet padding; 0 happens with TSO on outgoing captures — trust the capture then.
  const ipEnd = totalLen >= ihl ? Math.min(end, off + totalLen) : end;
  const l4Len = totalLen >= ihl ? totalLen - ihl : end - off - ihl;
  d.fragment = moreFragments || fragOffset > 0;
  if (d.fragment) {
    d.fragId = be16(data, off + 4);
    d.fragStart = off + ihl;
    d.fragEnd = Math.max(d.fragStart, ipEnd);
    d.fragOffset = fragOffset * 8;
    d.moreFragments = moreFragments;
    d.transportAt = 0;
  }
  if (fragOffset > 0) return d;
  d.firstFragment = d.fragment;
  transport(d, off + ihl, ipEnd, l4Len);
  return d;
}

function decodeIpv6(data: Buffer, off: number, frameEnd: number, into?: DecodedPacket): DecodedPacket | null {
  if (frameEnd < off + 40) return null;
  if ((data[off] ?? 0) >> 4 !== 6) return null;
  const payloadLength = be16(data, off + 4);
  let next = data[off + 6] ?? 0;
  const d = into ? into.reset(6, data, off + 8, frameEnd) : new DecodedPacket(6, data, off + 8, frameEnd);
  let p = off + 40;
  const end = payloadLength > 0 ? Math.min(frameEnd, p + payloadLength) : frameEnd;
  for (let hops = 0; hops < 16; hops++) {
    if (next === 0 || next === 43 || next === 60 || next === 135 || next === 139 || next === 140) {
      if (p + 8 > end) return null;
      const nh = data[p] ?? 0;
      p += ((data[p + 1] ?? 0) + 1) * 8;
      next = nh;
    } else if (next === 44) {
      if (p + 8 > end) return null;
      const nh = data[p] ?? 0;
      const fo = be16(data, p + 2);
      d.fragment = true;
      d.fragId = be32(data, p + 4);
      d.fragOffset = fo & 0xfff8;
      d.moreFragments = (fo & 1) !== 0;
      p += 8;
      d.fragStart = Math.min(p, end);
      d.fragEnd = end;
      next = nh;
      if ((fo & 0xfff8) !== 0) {
        d.proto = next;
        return d;
      }
      d.firstFragment = true;
    } else if (next === 51) {
      if (p + 8 > end) return null;
      const nh = data[p] ?? 0;
      p += ((data[p + 1] ?? 0) + 2) * 4;
      next = nh;
    } else {
      break;
    }
  }
  d.proto = next;
  // (extension headers may follow the fragment header, in the fragmentable part, before the transport's)
  if (d.fragment) d.transportAt = p - d.fragStart;
  const l4Len = payloadLength > 0 ? off + 40 + payloadLength - p : frameEnd - p;
  transport(d, p, end, l4Len);
  return d;
}

function transport(d: DecodedPacket, p: number, end: number, l4Len: number): void {
  const data = d.data;
  d.ipPayloadStart = Math.min(p, end);
  d.ipPayloadEnd = end;
  if (d.proto === PROTO_TCP) {
    if (p + 20 > d.frameEnd) return;
    const doff = ((data[p + 12] ?? 0) >> 4) * 4;
    d.srcPort = be16(data, p);
    d.dstPort = be16(data, p + 2);
    d.seq = be32(data, p + 4);
    d.ack = be32(data, p + 8);
    d.tcpFlags = data[p + 13] ?? 0;
    if (doff >= 20) {
      d.payloadStart = Math.min(p + doff, end);
      d.payloadEnd = Math.max(d.payloadStart, end);
      d.payloadLen = Math.max(0, l4Len - doff);
    }
  } else if (d.proto === PROTO_UDP) {
    if (p + 8 > d.frameEnd) return;
    d.srcPort = be16(data, p);
    d.dstPort = be16(data, p + 2);
    d.payloadStart = Math.min(p + 8, end);
    d.payloadEnd = Math.max(d.payloadStart, end);
    d.payloadLen = Math.max(0, l4Len - 8);
  }
}
