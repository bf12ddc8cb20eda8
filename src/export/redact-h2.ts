// Secret redaction inside HTTP/2 header blocks of decrypted records (pcapng export). HPACK literals of
// Authorization, Proxy-Authorization, Cookie and Set-Cookie get their value bytes overwritten in place: raw
// strings with 'x', Huffman strings with a bit pattern that decodes to '0's — lengths stay, so Wireshark still
// decodes every frame. Fields sent as an index into the dynamic table carry no value bytes (they repeat an
// earlier literal, which was redacted where it appeared). Limits: a header block split across two records,
// and a literal whose name is itself a dynamic-table reference, are left as they are.
import hpack from 'hpack.js';
import { isSecretHeader } from './redact.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADERS = 0x1;
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_CONTINUATION = 0x9;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/** RFC 7541 static table indexes of the secret header names. */
const SECRET_STATIC = new Set([23, 32, 49, 55]);

function readInt(buf: Buffer, p: number, prefixBits: number, end: number): { value: number; next: number } | null {
  if (p >= end) return null;
  const mask = (1 << prefixBits) - 1;
  let value = (buf[p] ?? 0) & mask;
  p++;
  if (value < mask) return { value, next: p };
  let m = 0;
  for (;;) {
    if (p >= end || m > 28) return null;
    const b = buf[p++] ?? 0;
    value += (b & 0x7f) * 2 ** m;
    m += 7;
    if ((b & 0x80) === 0) return { value, next: p };
  }
}

function readString(buf: Buffer, p: number, end: number): { huffman: boolean; start: number; end: number } | null {
  if (p >= end) return null;
  const huffman = ((buf[p] ?? 0) & 0x80) !== 0;
  const len = readInt(buf, p, 7, end);
  if (!len || len.next + len.value > end) return null;
  return { huffman, start: len.next, end: len.next + len.value };
}

function decodeName(buf: Buffer, p: number, end: number): string | null {
  try {
    const d = hpack.decoder.create();
    d.push(buf.subarray(p, end));
    return hpack.utils.stringify(d.decodeStr());
  } catch {
    return null;
  }
}

/** Overwrites a string's bytes: 'x' for raw strings; for Huffman, zeros ('0' is code 00000) and EOS-1s padding. */
function blank(out: Buffer, s: { huffman: boolean; start: number; end: number }): void {
  if (!s.huffman) {
    out.fill(0x78, s.start, s.end);
    return;
  }
  out.fill(0, s.start, s.end);
  const pad = ((s.end - s.start) * 8) % 5;
  if (pad > 0 && s.end > s.start) out[s.end - 1] = (out[s.end - 1] ?? 0) | ((1 << pad) - 1);
}

/** Redacts the secret literals of one header block fragment buf[p..end) into `out` (a copy). Returns whether it changed. */
function redactBlock(buf: Buffer, out: Buffer, p: number, end: number): boolean {
  let changed = false;
  while (p < end) {
    const b = buf[p] ?? 0;
    if (b & 0x80) {
      const r = readInt(buf, p, 7, end);
      if (!r) return changed;
      p = r.next;
      continue;
    }
    if ((b & 0xe0) === 0x20) {
      const r = readInt(buf, p, 5, end);
      if (!r) return changed;
      p = r.next;
      continue;
    }
    const idx = readInt(buf, p, b & 0x40 ? 6 : 4, end);
    if (!idx) return changed;
    p = idx.next;
    let secret = false;
    if (idx.value === 0) {
      const name = readString(buf, p, end);
      if (!name) return changed;
      const text = name.huffman ? decodeName(buf, p, name.end) : buf.toString('latin1', name.start, name.end);
      secret = text !== null && isSecretHeader(text);
      p = name.end;
    } else {
      secret = SECRET_STATIC.has(idx.value);
    }
    const value = readString(buf, p, end);
    if (!value) return changed;
    if (secret && value.end > value.start) {
      blank(out, value);
      changed = true;
    }
    p = value.end;
  }
  return changed;
}

/** Follows one direction of an HTTP/2 connection across decrypted records and redacts its header blocks. */
export class H2Redactor {
  /** Bytes of a frame that began in an earlier record. */
  private skip = 0;
  private prefaceLeft: number;
  /** A frame header was split across records: frame boundaries are lost for this direction. */
  private lost = false;

  constructor(fromClient: boolean) {
    this.prefaceLeft = fromClient ? PREFACE.length : 0;
  }

  /** Returns a redacted copy of the record payload, or null when nothing changed. */
  redact(buf: Buffer): Buffer | null {
    if (this.lost) return null;
    let p = 0;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, buf.length);
      if (!buf.subarray(0, n).equals(PREFACE.subarray(PREFACE.length - this.prefaceLeft, PREFACE.length - this.prefaceLeft + n))) this.prefaceLeft = 0;
      else {
        this.prefaceLeft -= n;
        p = n;
      }
    }
    if (this.skip > 0) {
      const n = Math.min(this.skip, buf.length - p);
      this.skip -= n;
      p += n;
    }
    let out: Buffer | null = null;
    while (p < buf.length) {
      if (p + 9 > buf.length) {
        this.lost = true;
        break;
      }
      const len = buf.readUIntBE(p, 3);
      const type = buf[p + 3] ?? 0;
      const flags = buf[p + 4] ?? 0;
      const end = p + 9 + len;
      if (end > buf.length) {
        this.skip = end - buf.length;
        break;
      }
      if (type === FRAME_HEADERS || type === FRAME_CONTINUATION || type === FRAME_PUSH_PROMISE) {
        let s = p + 9;
        let e = end;
        if (type !== FRAME_CONTINUATION && flags & FLAG_PADDED) {
          e -= buf[s] ?? 0;
          s += 1;
        }
        if (type === FRAME_HEADERS && flags & FLAG_PRIORITY) s += 5;
        if (type === FRAME_PUSH_PROMISE) s += 4;
        if (s <= e) {
          const target: Buffer = out ?? Buffer.from(buf);
          if (redactBlock(buf, target, s, e)) out = target;
        }
      }
      p = end;
    }
    return out;
  }
}
