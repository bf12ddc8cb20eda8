// Exported-PDU (LINKTYPE_WIRESHARK_UPPER_PDU, 252) records: Tapscope's decrypted TLS plaintext packets.
// Tags are big-endian `u16 tag, u16 length, value` padded to 4 bytes, ended by tag 0 (native/FORMAT.md).
import { ipv4ToString, ipv6ToString, ipToBytes } from '../util/ip.js';

export const EXP_PDU_TAG_END = 0;
export const EXP_PDU_TAG_PROTO_NAME = 12;
export const EXP_PDU_TAG_IPV4_SRC = 20;
export const EXP_PDU_TAG_IPV4_DST = 21;
export const EXP_PDU_TAG_IPV6_SRC = 22;
export const EXP_PDU_TAG_IPV6_DST = 23;
export const EXP_PDU_TAG_PORT_TYPE = 24;
export const EXP_PDU_TAG_SRC_PORT = 25;
export const EXP_PDU_TAG_DST_PORT = 26;

export interface ExportedPdu {
  protoName: string | null;
  src: { ip: string; port: number } | null;
  dst: { ip: string; port: number } | null;
  /** Offset of the payload inside the packet data. */
  payloadOffset: number;
  payload: Buffer;
}

/** Parses the tag list; null when the tags are malformed (no end tag inside the packet). */
export function parseExportedPdu(data: Buffer): ExportedPdu | null {
  let p = 0;
  let protoName: string | null = null;
  let srcIp: string | null = null;
  let dstIp: string | null = null;
  let srcPort: number | null = null;
  let dstPort: number | null = null;
  for (;;) {
    if (p + 4 > data.length) return null;
    const tag = data.readUInt16BE(p);
    const len = data.readUInt16BE(p + 2);
    const vstart = p + 4;
    // why: Wireshark pads tag values to 4 bytes only in some writers; FORMAT.md says padded, and so do we.
    p = vstart + ((len + 3) & ~3);
    if (tag === EXP_PDU_TAG_END) {
      p = vstart + len;
      break;
    }
    if (vstart + len > data.length) return null;
    switch (tag) {
      case EXP_PDU_TAG_PROTO_NAME: protoName = data.toString('utf8', vstart, vstart + len).replace(/\0+$/, ''); break;
      case EXP_PDU_TAG_IPV4_SRC: if (len >= 4) srcIp = ipv4ToString(data, vstart); break;
      case EXP_PDU_TAG_IPV4_DST: if (len >= 4) dstIp = ipv4ToString(data, vstart); break;
      case EXP_PDU_TAG_IPV6_SRC: if (len >= 16) srcIp = ipv6ToString(data, vstart); break;
      case EXP_PDU_TAG_IPV6_DST: if (len >= 16) dstIp = ipv6ToString(data, vstart); break;
      case EXP_PDU_TAG_SRC_PORT: if (len >= 4) srcPort = data.readUInt32BE(vstart); break;
      case EXP_PDU_TAG_DST_PORT: if (len >= 4) dstPort = data.readUInt32BE(vstart); break;
      default: break;
    }
  }
  const payload = data.subarray(p);
  return {
    protoName,
    src: srcIp !== null && srcPort !== null ? { ip: srcIp, port: srcPort } : null,
    dst: dstIp !== null && dstPort !== null ? { ip: dstIp, port: dstPort } : null,
    payloadOffset: p,
    payload,
  };
}

function tag(t: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + ((value.length + 3) & ~3));
  out.writeUInt16BE(t, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

function u32be(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** Builds an exported-PDU packet (tests and synthetic captures). */
export function buildExportedPdu(protoName: string, src: { ip: string; port: number } | null, dst: { ip: string; port: number } | null, payload: Buffer): Buffer {
  // why: Wireshark's reader does not skip padding; it expects the length field to include the NUL padding.
  const name = Buffer.from(protoName, 'utf8');
  const parts: Buffer[] = [tag(EXP_PDU_TAG_PROTO_NAME, Buffer.concat([name, Buffer.alloc(((name.length + 3) & ~3) - name.length)]))];
  if (src && dst) {
    const s = ipToBytes(src.ip);
    const d = ipToBytes(dst.ip);
    if (s && d) {
      const v6 = s.length === 16;
      parts.push(tag(v6 ? EXP_PDU_TAG_IPV6_SRC : EXP_PDU_TAG_IPV4_SRC, s), tag(v6 ? EXP_PDU_TAG_IPV6_DST : EXP_PDU_TAG_IPV4_DST, d));
      parts.push(tag(EXP_PDU_TAG_PORT_TYPE, u32be(2)), tag(EXP_PDU_TAG_SRC_PORT, u32be(src.port)), tag(EXP_PDU_TAG_DST_PORT, u32be(dst.port)));
    }
  }
  parts.push(Buffer.alloc(4));
  parts.push(payload);
  return Buffer.concat(parts);
}

/** Parses the `tapscope-tls key=value ...` EPB comment. */
export function parseTlsComment(comment: string): Record<string, string> | null {
  if (!comment.startsWith('tapscope-tls')) return null;
  const out: Record<string, string> = {};
  for (const part of comment.split(' ').slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}
