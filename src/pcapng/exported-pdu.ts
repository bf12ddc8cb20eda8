// Exported-PDU (LINKTYPE_WIRESHARK_UPPER_PDU, 252) records: Tapscope's decrypted TLS plaintext packets.
// Tags are big-endian `u16 tag, u16 length, value` padded to 4 bytes, ended by tag 0 (native/FORMAT.md).
import { ipv4ToString, ipv6ToString, ipToBytes } from '../util/ip.js';
import { be32s, LastText } from './bytes.js';

export const EXP_PDU_TAG_END = 0;
export const EXP_PDU_TAG_PROTO_NAME = 12;
export const EXP_PDU_TAG_IPV4_SRC = 20;
export const EXP_PDU_TAG_IPV4_DST = 21;
export const EXP_PDU_TAG_IPV6_SRC = 22;
export const EXP_PDU_TAG_IPV6_DST = 23;
export const EXP_PDU_TAG_PORT_TYPE = 24;
export const EXP_PDU_TAG_SRC_PORT = 25;
export const EXP_PDU_TAG_DST_PORT = 26;
/** EXP_PDU_TAG_PORT_TYPE's values (Wireshark's port_type): a record of a TCP connection, of a UDP one (DTLS). */
export const PT_TCP = 2;
export const PT_UDP = 3;

/** A record's endpoint; `v4`: an IPv4 address (also one mapped into IPv6) as its signed 32-bit number, else null. */
export interface PduEndpoint { ip: string; port: number; v4: number | null }

export interface ExportedPdu {
  protoName: string | null;
  src: PduEndpoint | null;
  dst: PduEndpoint | null;
  /** the ports are UDP's (port type PT_UDP: a DTLS connection's record); else TCP's, as records without the tag are */
  udp: boolean;
  /** Offset of the payload inside the packet data. */
  payloadOffset: number;
  payload: Buffer;
}

/** A record's tags, without its payload; tagsLength: the bytes from the record's start to its payload. */
export interface PduHead {
  protoName: string | null;
  src: PduEndpoint | null;
  dst: PduEndpoint | null;
  /** see ExportedPdu.udp */
  udp: boolean;
  tagsLength: number;
}

/**
 * Parses the tag list of the record data[start, end) (default: all of data); null when the tags are malformed (no
 * end tag inside the record). payloadOffset indexes data.
 */
export function parseExportedPdu(data: Buffer, start = 0, end = data.length): ExportedPdu | null {
  const h = readPduHead(data, start, end);
  if (!h) return null;
  const p = start + h.tagsLength;
  return { protoName: h.protoName, src: h.src, dst: h.dst, udp: h.udp, payloadOffset: p, payload: data.subarray(p, end) };
}

/**
 * The tags of the record data[start, end), as parseExportedPdu reads them. A record that starts with the last
 * record's tag bytes gets the same object again: read it, never change it.
 */
export function readPduHead(data: Buffer, start = 0, end = data.length): PduHead | null {
  // why: a connection's records come in runs with the same tags (a response read in chunks: 440k records of 20k
  // hooked flows in the bench); such a record shares the last parse instead of building its address text and
  // endpoints again
  const n = lastHead.tagsLength;
  if (n > 0 && end - start >= n) {
    let same = true;
    for (let i = 0; i < n && same; i++) same = data[start + i] === lastTags[i];
    if (same) return lastHead;
  }
  let p = start;
  let protoName: string | null = null;
  let srcIp: string | null = null;
  let dstIp: string | null = null;
  let src4: number | null = null;
  let dst4: number | null = null;
  let srcPort: number | null = null;
  let dstPort: number | null = null;
  let udp = false;
  for (;;) {
    if (p + 4 > end) return null;
    const tag = data.readUInt16BE(p);
    const len = data.readUInt16BE(p + 2);
    const vstart = p + 4;
    // why: Wireshark pads tag values to 4 bytes only in some writers; FORMAT.md says padded, and so do we.
    p = vstart + ((len + 3) & ~3);
    if (tag === EXP_PDU_TAG_END) {
      p = vstart + len;
      break;
    }
    if (vstart + len > end) return null;
    switch (tag) {
      case EXP_PDU_TAG_PROTO_NAME: protoName = protoNames.of(data, vstart, vstart + len); break;
      case EXP_PDU_TAG_IPV4_SRC: if (len >= 4) { srcIp = ipv4ToString(data, vstart); src4 = be32s(data, vstart); } break;
      case EXP_PDU_TAG_IPV4_DST: if (len >= 4) { dstIp = ipv4ToString(data, vstart); dst4 = be32s(data, vstart); } break;
      case EXP_PDU_TAG_IPV6_SRC: if (len >= 16) { srcIp = ipv6ToString(data, vstart); src4 = mapped4(data, vstart); } break;
      case EXP_PDU_TAG_IPV6_DST: if (len >= 16) { dstIp = ipv6ToString(data, vstart); dst4 = mapped4(data, vstart); } break;
      case EXP_PDU_TAG_SRC_PORT: if (len >= 4) srcPort = data.readUInt32BE(vstart); break;
      case EXP_PDU_TAG_DST_PORT: if (len >= 4) dstPort = data.readUInt32BE(vstart); break;
      case EXP_PDU_TAG_PORT_TYPE: if (len >= 4) udp = data.readUInt32BE(vstart) === PT_UDP; break;
      default: break;
    }
  }
  const head: PduHead = {
    protoName,
    src: srcIp !== null && srcPort !== null ? { ip: srcIp, port: srcPort, v4: src4 } : null,
    dst: dstIp !== null && dstPort !== null ? { ip: dstIp, port: dstPort, v4: dst4 } : null,
    udp,
    tagsLength: p - start,
  };
  // (an end tag whose value runs past the record leaves an empty payload and is not remembered)
  if (p <= end && head.tagsLength <= lastTags.length) {
    data.copy(lastTags, 0, start, p);
    lastHead = head;
  } else lastHead = NO_HEAD;
  return head;
}

// the last parsed record's tag bytes (lastTags[0, lastHead.tagsLength)) and its head (see readPduHead)
const lastTags = Buffer.alloc(256);
const NO_HEAD: PduHead = { protoName: null, src: null, dst: null, udp: false, tagsLength: 0 };
let lastHead = NO_HEAD;

/** The IPv4 address mapped into the IPv6 address at data[o] (::ffff:a.b.c.d) as a signed number; null when not one. */
function mapped4(data: Buffer, o: number): number | null {
  for (let i = 0; i < 10; i++) if (data[o + i] !== 0) return null;
  return data[o + 10] === 0xff && data[o + 11] === 0xff ? be32s(data, o + 12) : null;
}

// why: every record names its protocol, and there are a few names; the last one's text is used again
const protoNames = new LastText();

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

/** Builds an exported-PDU packet (tests and synthetic captures); `udp`: a DTLS connection's record (port type PT_UDP). */
export function buildExportedPdu(protoName: string, src: { ip: string; port: number } | null, dst: { ip: string; port: number } | null, payload: Buffer, udp = false): Buffer {
  // why: Wireshark's reader does not skip padding; it expects the length field to include the NUL padding.
  const name = Buffer.from(protoName, 'utf8');
  const parts: Buffer[] = [tag(EXP_PDU_TAG_PROTO_NAME, Buffer.concat([name, Buffer.alloc(((name.length + 3) & ~3) - name.length)]))];
  if (src && dst) {
    const s = ipToBytes(src.ip);
    const d = ipToBytes(dst.ip);
    if (s && d) {
      const v6 = s.length === 16;
      parts.push(tag(v6 ? EXP_PDU_TAG_IPV6_SRC : EXP_PDU_TAG_IPV4_SRC, s), tag(v6 ? EXP_PDU_TAG_IPV6_DST : EXP_PDU_TAG_IPV4_DST, d));
      parts.push(tag(EXP_PDU_TAG_PORT_TYPE, u32be(udp ? PT_UDP : PT_TCP)), tag(EXP_PDU_TAG_SRC_PORT, u32be(src.port)), tag(EXP_PDU_TAG_DST_PORT, u32be(dst.port)));
    }
  }
  parts.push(Buffer.alloc(4));
  parts.push(payload);
  return Buffer.concat(parts);
}

/** The attribution of a decrypted record (its EPB comment, native/FORMAT.md); a key the comment lacks is undefined. */
export class TlsAttrs {
  pid: string | undefined = undefined;
  tid: string | undefined = undefined;
  comm: string | undefined = undefined;
  lib: string | undefined = undefined;
  fn: string | undefined = undefined;
  dir: string | undefined = undefined;
  len: string | undefined = undefined;
  trunc: string | undefined = undefined;
  conn: string | undefined = undefined;
  netns: string | undefined = undefined;
}

const TLS_KEYS = ['pid', 'tid', 'comm', 'lib', 'fn', 'dir', 'len', 'trunc', 'conn', 'netns'] as const;

/**
 * Parses the `tapscope-tls key=value ...` EPB comment (space-separated, values without spaces; other keys
 * are ignored, the last of a repeated key counts). One pass and one object of a fixed shape: splitting
 * into pieces and an object keyed by each was a fifth of the time of a capture with many records.
 */
export function parseTlsComment(comment: string): TlsAttrs | null {
  if (!comment.startsWith('tapscope-tls')) return null;
  const out = new TlsAttrs();
  const n = comment.length;
  let i = comment.indexOf(' ');
  if (i < 0) return out;
  while (i < n) {
    i++;
    let end = comment.indexOf(' ', i);
    if (end < 0) end = n;
    const eq = comment.indexOf('=', i);
    if (eq > i && eq < end) {
      for (const k of TLS_KEYS) {
        if (k.length === eq - i && comment.startsWith(k, i)) {
          out[k] = comment.slice(eq + 1, end);
          break;
        }
      }
    }
    i = end;
  }
  return out;
}

// why: the records of one reader or writer repeat their comment (a bulk transfer reads full records: the same
// pid, library, direction and length), so the last one parsed is given again for the same text
let lastComment = '';
let lastAttrs: TlsAttrs | null = null;

/**
 * True when the process that recorded a decrypted record wrote it (its end is the record's source), false when it
 * read it: the attribution's `dir`, else the EPB flags' direction (2: outbound).
 */
export function recordWritten(attrs: TlsAttrs | null, flags: number | null): boolean {
  return attrs?.dir ? attrs.dir === 'out' : ((flags ?? 0) & 2) !== 0;
}

/** The attribution in the first of a record's comments that is one (see parseTlsComment); do not mutate it. */
export function tlsAttrsOf(comments: readonly string[]): TlsAttrs | null {
  for (const c of comments) {
    if (c === lastComment && lastAttrs) return lastAttrs;
    const a = parseTlsComment(c);
    if (a) {
      lastComment = c;
      lastAttrs = a;
      return a;
    }
  }
  return null;
}
