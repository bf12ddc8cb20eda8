// DNS message dissector over UDP or TCP (2-byte length prefix), using the dns-packet package; answers
// are flattened to text so every consumer (CLI, filter, UI) shows the same thing. A message with a record that cannot
// be read is read up to that record, as tshark does, and says so (malformed).
import { createRequire } from 'node:module';
import type DnsPacketLib from 'dns-packet';
import type { DnsAnswer } from 'dns-packet';
import type DnsTypes from 'dns-packet/types.js';

// why require, on first use: imported as ESM, the CommonJS package is first scanned for its exports, a few ms
// of every start-up, also of captures without DNS (as hpack.js in http2.ts)
let dnsPacketLib: typeof DnsPacketLib | null = null;
function dnsPacket(): typeof DnsPacketLib {
  return (dnsPacketLib ??= createRequire(import.meta.url)('dns-packet') as typeof DnsPacketLib);
}
let dnsTypes: typeof DnsTypes | null = null;
/** A record type's name as dns-packet gives it ("A", "TYPE65280"). */
function typeName(type: number): string {
  return (dnsTypes ??= createRequire(import.meta.url)('dns-packet/types.js') as typeof DnsTypes).toString(type);
}

export interface DnsMessage {
  id: number;
  qr: boolean;
  questions: { name: string; type: string }[];
  answers: { name: string; type: string; data: string }[];
  rcode: string;
  /** the message was cut short in the capture (a snap length, the first fragment of a datagram): only its answers before the cut are listed */
  cut: boolean;
  /**
   * a question or record could not be read (a name whose compression pointers loop or lead out of the message, a bad
   * label, data its type's reader refuses): only the questions and answers before it are listed
   */
  malformed: boolean;
}

/**
 * Decode one DNS message; null when the payload is not one (its counts or its names' lengths do not fit it). One with a
 * question or record that cannot be read is read up to it (malformed).
 */
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
  const bytes = cut ? firstAnswers(body, shape.answers, shape.answersEnd) : body;
  try {
    const p = dnsPacket().decode(bytes);
    return {
      id: p.id ?? 0,
      qr: p.type === 'response',
      questions: (p.questions ?? []).map((q) => ({ name: q.name, type: q.type })),
      answers: (p.answers ?? []).map((a) => ({ name: a.name, type: a.type, data: answerText(a) })),
      rcode: p.rcode ?? 'NOERROR',
      cut,
      malformed: false,
    };
  } catch {
    // why: dns-packet throws the whole message away for one bad record, its question too: a resolver, or someone on
    // the path, could so hide what was asked
    return recordByRecord(bytes, cut);
  }
}

/**
 * The message `buf` (its layout checked) read one question and record at a time up to the first that cannot be read,
 * as tshark reads one; malformed from there. Names are read by readName, so one whose pointer leads forward (tshark
 * reads it, dns-packet refuses it) is read too, in questions and owner names; dns-packet reads only record data.
 */
function recordByRecord(buf: Buffer, cut: boolean): DnsMessage {
  const lib = dnsPacket();
  // (the header as dns-packet reads it, from a copy whose counts are zero)
  const header = lib.decode(Buffer.concat([buf.subarray(0, 4), Buffer.alloc(8)]));
  const msg: DnsMessage = { id: header.id ?? 0, qr: header.type === 'response', questions: [], answers: [], rcode: header.rcode ?? 'NOERROR', cut, malformed: true };
  try {
    let at = 12;
    for (let i = buf.readUInt16BE(4); i > 0; i--) {
      const name = readName(buf, at);
      msg.questions.push({ name: name.name, type: typeName(buf.readUInt16BE(name.end)) });
      at = name.end + 4;
    }
    const answers = buf.readUInt16BE(6);
    for (let i = 0, records = answers + buf.readUInt16BE(8) + buf.readUInt16BE(10); i < records; i++) {
      const r = readRecord(lib, buf, at);
      if (i < answers) msg.answers.push({ name: r.answer.name, type: r.answer.type, data: answerText(r.answer) });
      at = r.end;
    }
    msg.malformed = false;
  } catch {
    // (the first question or record that cannot be read ends what is read)
  }
  return msg;
}

/**
 * The record at buf[at] and where it ends: its owner name readName's, its type, class, TTL and data length read here, its
 * data by dns-packet's reader of its type (an OPT's, its options, read too but not kept: dns-packet gives OPT no data).
 * why not dns-packet's reader of the whole record first: in this fallback it mostly refuses the owner name, and each
 * refusal, an Error with its stack, cost more than the rest of the record (a message of such records took 12 times as
 * long as one without)
 */
function readRecord(lib: typeof DnsPacketLib, buf: Buffer, at: number): { answer: DnsAnswer; end: number } {
  const name = readName(buf, at);
  const type = typeName(buf.readUInt16BE(name.end));
  const end = name.end + 10 + buf.readUInt16BE(name.end + 8);
  if (end > buf.length) throw new RangeError('record past the message');
  const data: unknown = lib.record(type).decode(buf, name.end + 8);
  return { answer: { name: name.name, type, data: type === 'OPT' ? undefined : data } as DnsAnswer, end };
}

// (a pointer leads to a label or to another pointer: more of them than a name has labels, 127, is a loop)
const MAX_POINTERS = 128;

/**
 * The name at buf[at] and where it ends there, written as dns-packet writes names (its labels as UTF-8 joined by dots,
 * the root "."). Its compression pointers are followed wherever they lead in the message; a loop of them, a pointer or
 * label past its end, a bad label type or a name past 255 bytes throws.
 */
function readName(buf: Buffer, at: number): { name: string; end: number } {
  const labels: string[] = [];
  const end = walkName(buf, at, labels);
  if (end < 0) throw new RangeError(end === NO_NAME ? 'bad label or compression pointer' : 'name past the message');
  return { name: labels.length === 0 ? '.' : labels.join('.'), end };
}

/** walkName's answer for a name that runs past the message's end */
const PAST_END = -1;
/** walkName's and recordEnd's answer for a name that is none (a label of a reserved type, past 255 bytes; a bad pointer) */
const NO_NAME = -2;

/**
 * Where the name at buf[at] ends there (after its first compression pointer, or its root label); PAST_END when it runs past
 * the message, NO_NAME when it is none (a label of a reserved type, a name past 255 bytes). Given `labels`, its pointers
 * are followed (a loop of them, or one that leads past the message, is NO_NAME) and its labels' text put there; without,
 * it is only measured.
 */
function walkName(buf: Buffer, at: number, labels: string[] | null): number {
  let end = -1;
  let length = 1;
  for (let pointers = 0; ;) {
    const len = buf[at];
    if (len === undefined) return end < 0 ? PAST_END : NO_NAME;
    if (len === 0) return end < 0 ? at + 1 : end;
    if ((len & 0xc0) === 0xc0) {
      if (at + 2 > buf.length) return end < 0 ? PAST_END : NO_NAME;
      if (end < 0) end = at + 2;
      if (labels === null) return end;
      if (++pointers > MAX_POINTERS) return NO_NAME;
      at = buf.readUInt16BE(at) & 0x3fff;
      continue;
    }
    length += len + 1;
    if ((len & 0xc0) !== 0 || length > 255) return NO_NAME;
    if (at + 1 + len > buf.length) return end < 0 ? PAST_END : NO_NAME;
    labels?.push(buf.toString('utf8', at + 1, at + 1 + len));
    at += 1 + len;
  }
}

/** Where the record at `at` ends; PAST_END when it runs past the message, NO_NAME when its name is none. */
function recordEnd(buf: Buffer, at: number): number {
  const n = walkName(buf, at, null);
  if (n < 0) return n;
  if (n + 10 > buf.length) return PAST_END;
  const e = n + 10 + buf.readUInt16BE(n + 8);
  return e <= buf.length ? e : PAST_END;
}

/**
 * The message `buf` as its lengths lay it out, in one walk: how many of its answers lie whole in it and where they end,
 * and whether every record does (not: the capture cut it); null when its questions do not. A name that is none (NO_NAME)
 * ends the walk: the message is whole as far as can be told, and malformed there (parseDns reads it up to that name).
 */
function layout(buf: Buffer): { answers: number; answersEnd: number; whole: boolean } | null {
  let at = 12;
  for (let i = buf.readUInt16BE(4); i > 0; i--) {
    const n = walkName(buf, at, null);
    if (n === NO_NAME) return { answers: 0, answersEnd: at, whole: true };
    if (n < 0 || n + 4 > buf.length) return null;
    at = n + 4;
  }
  const count = buf.readUInt16BE(6);
  let answers = 0;
  for (; answers < count; answers++) {
    const e = recordEnd(buf, at);
    if (e === NO_NAME) return { answers, answersEnd: at, whole: true };
    if (e < 0) break;
    at = e;
  }
  const answersEnd = at;
  let whole = answers === count;
  for (let i = buf.readUInt16BE(8) + buf.readUInt16BE(10); whole && i > 0; i--) {
    at = recordEnd(buf, at);
    if (at === NO_NAME) break;
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
 * reserved Z bit clear, at most one question, and counts the length can hold; a message already whole must read whole
 * (not malformed).
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
  if (buf.length < 2 + len) return true;
  const msg = parseDns(buf.subarray(0, 2 + len), true);
  return msg !== null && !msg.malformed;
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
