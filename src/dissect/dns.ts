// DNS message dissector over UDP or TCP (2-byte length prefix), using the dns-packet package; answers
// are flattened to text so every consumer (CLI, filter, UI) shows the same thing.
import { createRequire } from 'node:module';
import type DnsPacketLib from 'dns-packet';
import type { DnsAnswer } from 'dns-packet';

// why require, on first use: imported as ESM, the CommonJS package is first scanned for its exports, a few ms
// of every start-up, also of captures without DNS (as hpack.js in http2.ts)
let dnsPacketLib: typeof DnsPacketLib | null = null;
function dnsPacket(): typeof DnsPacketLib {
  return (dnsPacketLib ??= createRequire(import.meta.url)('dns-packet') as typeof DnsPacketLib);
}

export interface DnsMessage {
  id: number;
  qr: boolean;
  questions: { name: string; type: string }[];
  answers: { name: string; type: string; data: string }[];
  rcode: string;
  /** the message was cut short in the capture (a snap length, the first fragment of a datagram): only its answers before the cut are listed */
  cut: boolean;
}

/** Decode one DNS message; null when the payload is not a well-formed DNS message. */
export function parseDns(payload: Buffer, overTcp: boolean): DnsMessage | null {
  let body = payload;
  if (overTcp) {
    if (payload.length < 2) return null;
    const len = payload.readUInt16BE(0);
    if (payload.length < 2 + len) return null;
    body = payload.subarray(2, 2 + len);
  }
  if (body.length < 12) return null;
  // why: the header's counts are taken as they are (an array of each count made before the first record is read), and
  // a payload that is not DNS (another protocol on port 53, a flood of garbage) has counts in the tens of thousands:
  // 1-3 ms of each such datagram went into making and failing them: counts the message cannot hold make it no DNS
  if (!countsFit(body, 0, body.length)) return null;
  // why: dns-packet reads a record's data as far as its length says without looking at the buffer's end, so a message the
  // capture cut (a snap length; a large answer whose other fragments the capture lost) gave its last answer made-up text
  // ("TXT v=spf1 inclu") as if whole. A cut message is read as the records that came whole, and says it was cut.
  const shape = layout(body);
  if (shape === null) return null;
  const cut = !shape.whole;
  try {
    const p = dnsPacket().decode(cut ? firstAnswers(body, shape.answers, shape.answersEnd) : body);
    return {
      id: p.id ?? 0,
      qr: p.type === 'response',
      questions: (p.questions ?? []).map((q) => ({ name: q.name, type: q.type })),
      answers: (p.answers ?? []).map((a) => ({ name: a.name, type: a.type, data: answerText(a) })),
      rcode: p.rcode ?? 'NOERROR',
      cut,
    };
  } catch {
    return null;
  }
}

/** Where the name at buf[at] ends (a pointer ends it), or -1 when it runs past `end` or is not a name. */
function nameEnd(buf: Buffer, at: number, end: number): number {
  // (a name has at most 127 labels)
  for (let labels = 0; labels < 128 && at < end; labels++) {
    const len = buf[at]!;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2 <= end ? at + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    at += 1 + len;
  }
  return -1;
}

/** Where the record at `at` ends, or -1 when it runs past `end`. */
function recordEnd(buf: Buffer, at: number, end: number): number {
  const n = nameEnd(buf, at, end);
  if (n < 0 || n + 10 > end) return -1;
  const e = n + 10 + buf.readUInt16BE(n + 8);
  return e <= end ? e : -1;
}

/**
 * The message `buf` as its lengths lay it out, in one walk: how many of its answers lie whole in it and where they end,
 * and whether every record does (not: the capture cut it); null when its questions do not.
 */
function layout(buf: Buffer): { answers: number; answersEnd: number; whole: boolean } | null {
  let at = 12;
  for (let i = buf.readUInt16BE(4); i > 0; i--) {
    const n = nameEnd(buf, at, buf.length);
    if (n < 0 || n + 4 > buf.length) return null;
    at = n + 4;
  }
  const count = buf.readUInt16BE(6);
  let answers = 0;
  for (; answers < count; answers++) {
    const e = recordEnd(buf, at, buf.length);
    if (e < 0) break;
    at = e;
  }
  const answersEnd = at;
  let whole = answers === count;
  for (let i = buf.readUInt16BE(8) + buf.readUInt16BE(10); whole && i > 0; i--) {
    at = recordEnd(buf, at, buf.length);
    whole = at >= 0;
  }
  return { answers, answersEnd, whole };
}

/** The message `buf` as its questions and first `n` answers alone, which end at `end` (the rest of it cut off). */
function firstAnswers(buf: Buffer, n: number, end: number): Buffer {
  const out = Buffer.from(buf.subarray(0, end));
  out.writeUInt16BE(n, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

/**
 * Whether the counts of the header at buf[at] fit a message of `length` bytes: a question is at least 5 bytes (the root
 * name, type, class), a record at least 11 (a TTL and a data length too).
 */
function countsFit(buf: Buffer, at: number, length: number): boolean {
  const least = 5 * buf.readUInt16BE(at + 4) + 11 * (buf.readUInt16BE(at + 6) + buf.readUInt16BE(at + 8) + buf.readUInt16BE(at + 10));
  return least <= length - 12;
}

/**
 * Whether `buf`, a TCP direction's first bytes in a connection taken up in the middle, begins a DNS message after its
 * two-byte length: a query from the client (`response` false), an answer from the server. Its header must be one: the
 * length at least the header's, the QR bit the side's, a standard opcode (QUERY, IQUERY, STATUS, NOTIFY, UPDATE), the
 * reserved Z bit clear, at most one question, and counts the length can hold; a message already whole must decode.
 * why this strict: a segment in the middle of a long answer would otherwise be read as messages of made-up lengths.
 */
export function beginsDnsMessage(buf: Buffer, response: boolean): boolean {
  if (buf.length < 14) return false;
  const len = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(4);
  const opcode = (flags >> 11) & 0xf;
  if (len < 12 || (flags >> 15 === 1) !== response || opcode === 3 || opcode > 5 || (flags & 0x40) !== 0) return false;
  const qd = buf.readUInt16BE(6);
  if (qd > 1 || !countsFit(buf, 2, len)) return false;
  return buf.length < 2 + len || parseDns(buf.subarray(0, 2 + len), true) !== null;
}

function answerText(a: DnsAnswer): string {
  const d = a.data;
  if (d === undefined || d === null) return '';
  if (typeof d === 'string') return d;
  if (Buffer.isBuffer(d)) return d.toString('hex');
  if (Array.isArray(d)) return d.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x))).join(' ');
  if (typeof d === 'object') {
    const o = d as Record<string, unknown>;
    switch (a.type) {
      case 'MX': return `${String(o.preference)} ${String(o.exchange)}`;
      case 'SRV': return `${String(o.priority)} ${String(o.weight)} ${String(o.port)} ${String(o.target)}`;
      case 'SOA': return `${String(o.mname)} ${String(o.rname)} ${String(o.serial)}`;
      case 'CAA': return `${String(o.flags)} ${String(o.tag)} "${String(o.value)}"`;
      default:
        return JSON.stringify(o, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
    }
  }
  return String(d);
}
