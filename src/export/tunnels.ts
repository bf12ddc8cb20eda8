// The tunnels the export's redaction looks into: a packet that carries another packet (an overlay network's, a
// mirror's) whose HTTP Wireshark shows, since tshark decodes these by default: VXLAN (UDP 4789; also 8472, the Linux
// kernel's own port and flannel's and Cilium's, when its header reads as VXLAN's), VXLAN-GPE (4790), Geneve (6081),
// GRE (IP protocol 47, and in UDP on 4754) with IPv4, IPv6, Ethernet (TEB), MPLS or ERSPAN in it, IP in IP (4), IPv6
// in IP (41), Teredo (3544) and GTP-U (2152). The flow table does not decode tunnels (`flows` shows the outer UDP or IP
// flow); this is for redaction only.
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../pcapng/types.js';
import { be16, be32 } from '../pcapng/bytes.js';
import { PROTO_UDP, type DecodedPacket } from '../flows/decode.js';

/**
 * What a tunnel packet carries: the inner frame data[start, end) and its link type, or null when what it carries
 * cannot be read here (PPTP's PPP, L2TP, a protocol of Geneve's not IP or Ethernet, a header cut short): such bytes
 * may still be HTTP. `tag` names the tunnel, the same both ways, so that its inner connections are followed apart from
 * others with the same addresses.
 */
export interface Tunnel {
  linkType: number | null;
  start: number;
  end: number;
  tag: string;
}

const IPPROTO_IPIP = 4;
const IPPROTO_IPV6 = 41;
const IPPROTO_GRE = 47;

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_TEB = 0x6558;
const ETH_MPLS = 0x8847;
const ETH_MPLS_MULTICAST = 0x8848;
const ETH_ERSPAN_2 = 0x88be;
const ETH_ERSPAN_3 = 0x22eb;

/** The tunnel `d` is a packet of; null when it is none. */
export function tunnelOf(d: DecodedPacket): Tunnel | null {
  if (d.proto === PROTO_UDP) {
    // (the server end's port: a tunnel's receiver listens on it; its sender's is any)
    return udpTunnel(d, d.dstPort) ?? udpTunnel(d, d.srcPort);
  }
  const start = d.ipPayloadStart;
  const end = d.ipPayloadEnd;
  if (start >= end) return null;
  if (d.proto === IPPROTO_IPIP || d.proto === IPPROTO_IPV6) return { linkType: LINKTYPE_RAW, start, end, tag: `ip${d.proto}|${outerEnds(d)}` };
  if (d.proto === IPPROTO_GRE) return gre(d.data, start, end, outerEnds(d));
  return null;
}

function udpTunnel(d: DecodedPacket, port: number): Tunnel | null {
  const data = d.data;
  const start = d.payloadStart;
  const end = d.payloadEnd;
  switch (port) {
    case 4789:
    case 8472: {
      if (end - start < 8) return unreadable(start, end, `vxlan|${outerEnds(d)}`);
      // (8472 is not VXLAN's own port: only a header that reads as VXLAN's, its I flag (and GBP's G) and no other)
      if (port === 8472 && ((data[start]! & 0x77) !== 0 || (data[start]! & 0x08) === 0 || data[start + 7] !== 0)) return null;
      return { linkType: LINKTYPE_ETHERNET, start: start + 8, end, tag: `vxlan|${vni(data, start)}` };
    }
    case 4790: {
      // VXLAN-GPE: flags, reserved, its next protocol (1 IPv4, 2 IPv6, 3 Ethernet), the VNI
      if (end - start < 8) return unreadable(start, end, `gpe|${outerEnds(d)}`);
      const next = data[start + 3];
      const tag = `gpe|${vni(data, start)}`;
      if (next === 1 || next === 2) return { linkType: LINKTYPE_RAW, start: start + 8, end, tag };
      if (next === 3) return { linkType: LINKTYPE_ETHERNET, start: start + 8, end, tag };
      return unreadable(start + 8, end, tag);
    }
    case 6081: {
      // Geneve: version and options' length (in 4 bytes), flags, protocol (an ethertype), the VNI, then the options
      if (end - start < 8) return unreadable(start, end, `geneve|${outerEnds(d)}`);
      const at = start + 8 + (data[start]! & 0x3f) * 4;
      return byEthertype(data, be16(data, start + 2), Math.min(at, end), end, `geneve|${vni(data, start)}`);
    }
    case 4754:
      return gre(data, start, end, outerEnds(d));
    case 3544:
      return teredo(d, start, end);
    case 2152:
      return gtpU(data, start, end, `gtp|${outerEnds(d)}`);
    case 1701:
      // (L2TP: read by tshark, not here)
      return unreadable(start, end, `l2tp|${outerEnds(d)}`);
    default:
      return null;
  }
}

/** A GRE packet's payload (RFC 2784, 2890: checksum, key and sequence number when flagged). */
function gre(data: Buffer, start: number, end: number, ends: string): Tunnel {
  if (end - start < 4) return unreadable(start, end, `gre|${ends}`);
  const flags = data[start]!;
  const version = data[start + 1]! & 0x07;
  const key = flags & 0x20 ? 4 : 0;
  const at = start + 4 + (flags & 0xc0 ? 4 : 0) + key + (flags & 0x10 ? 4 : 0);
  const tag = `gre|${key && at <= end ? be32(data, start + 4 + (flags & 0xc0 ? 4 : 0)) : ''}|${ends}`;
  // (version 1 is PPTP's, PPP in it; RFC 1701's routing fields are not read)
  if (version !== 0 || flags & 0x40 || at > end) return unreadable(Math.min(start + 4, end), end, tag);
  const proto = be16(data, start + 2);
  // ERSPAN (a mirror's copy of a frame): type I has no header of its own, II has 8 bytes, III 12 and a subheader of 8
  // when its O flag says so
  if (proto === ETH_ERSPAN_2) return { linkType: LINKTYPE_ETHERNET, start: Math.min(at + (flags & 0x10 ? 8 : 0), end), end, tag };
  if (proto === ETH_ERSPAN_3) {
    if (at + 12 > end) return unreadable(at, end, tag);
    return { linkType: LINKTYPE_ETHERNET, start: Math.min(at + 12 + (data[at + 11]! & 0x01 ? 8 : 0), end), end, tag };
  }
  return byEthertype(data, proto, at, end, tag);
}

/**
 * GTP-U (3GPP TS 29.281): a G-PDU carries an IP packet after its 8 bytes, 4 more when a sequence number, N-PDU number
 * or extension header is flagged, and the extension headers (each its length in 4 bytes, its last byte the next one's
 * type). Its other messages (echo, error indication) carry none.
 */
function gtpU(data: Buffer, start: number, end: number, tag: string): Tunnel | null {
  if (end - start < 8) return unreadable(start, end, tag);
  const flags = data[start]!;
  if (flags >> 5 !== 1 || data[start + 1] !== 0xff) return null;
  let at = start + 8;
  if (flags & 0x07) {
    at += 4;
    for (let next = flags & 0x04 ? data[at - 1] : 0; next && at < end; next = data[at - 1]) at += (data[at]! || 1) * 4;
  }
  if (at >= end) return unreadable(Math.min(at, end), end, tag);
  return byIpVersion(data, at, end, tag);
}

/** Teredo (IPv6 in UDP): an IPv6 packet after an optional authentication and origin indication. */
function teredo(d: DecodedPacket, start: number, end: number): Tunnel | null {
  const data = d.data;
  let at = start;
  if (at + 2 <= end && be16(data, at) === 0x0001) at += 13 + (at + 4 <= end ? data[at + 2]! + data[at + 3]! : 0);
  if (at + 2 <= end && be16(data, at) === 0x0000) at += 8;
  // (a Teredo bubble or anything else that is not IPv6: nothing carried)
  if (at >= end || data[at]! >> 4 !== 6) return null;
  return { linkType: LINKTYPE_RAW, start: at, end, tag: `teredo|${outerEnds(d)}` };
}

function byEthertype(data: Buffer, type: number, start: number, end: number, tag: string): Tunnel {
  if (type === ETH_IPV4 || type === ETH_IPV6) return { linkType: LINKTYPE_RAW, start, end, tag };
  if (type === ETH_TEB) return { linkType: LINKTYPE_ETHERNET, start, end, tag };
  if (type === ETH_MPLS || type === ETH_MPLS_MULTICAST) {
    // (labels of 4 bytes up to the one with the bottom-of-stack bit; what follows told by its IP version, as tshark does)
    let at = start;
    while (at + 4 <= end && !(data[at + 2]! & 0x01)) at += 4;
    return at + 4 < end ? byIpVersion(data, at + 4, end, tag) : unreadable(start, end, tag);
  }
  return unreadable(start, end, tag);
}

function byIpVersion(data: Buffer, start: number, end: number, tag: string): Tunnel {
  const v = data[start]! >> 4;
  return v === 4 || v === 6 ? { linkType: LINKTYPE_RAW, start, end, tag } : unreadable(start, end, tag);
}

function unreadable(start: number, end: number, tag: string): Tunnel {
  return { linkType: null, start, end, tag };
}

function vni(data: Buffer, start: number): number {
  return data.readUIntBE(start + 4, 3);
}

/** The tunnel's two ends, the same both ways. */
function outerEnds(d: DecodedPacket): string {
  const a = d.src;
  const b = d.dst;
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
