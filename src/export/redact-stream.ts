// One direction of a byte stream (a TCP direction by sequence number, or a direction of decrypted TLS records
// by running offset) scanned for HTTP/1 secrets across packets (Http1Stream), or a TCP direction of cleartext
// HTTP/2 (H2Stream); H2cUpgrade finds where a TCP direction read as HTTP/1 turns to HTTP/2 (h2c's 101).
// Http1Stream's state is bounded: the scan state at the highest byte seen so far plus a few
// checkpoints (scan state at recent packet starts and at the start of a gap), so a retransmission or the
// packet filling a gap is scanned from where it really starts. Anything else behind or beyond a gap starts
// from resyncState (conservative: see redact.ts).
import { MASK, copyState, lineStartState, resyncState, scanHttp1, type Http1State } from './redact.js';
import type { H2Redactor } from './redact-h2.js';
import { headEnd } from '../dissect/http1.js';

const CHECKPOINTS = 8;

interface Checkpoint {
  seq: number;
  state: Http1State;
}

/** Signed distance a - b in 32-bit sequence space. */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export class Http1Stream {
  /** Sequence number just past the highest byte seen; null before the first byte. */
  private next: number | null = null;
  /** Scan state at `next`; null when the bytes right before `next` were not captured. */
  private state: Http1State | null = null;
  private readonly checkpoints: Checkpoint[] = [];

  /** A SYN (or the start of a record stream): the next byte, at `seq`, starts the stream at a line start. */
  open(seq: number): void {
    this.next = seq >>> 0;
    this.state = lineStartState();
  }

  /**
   * Scans the bytes `buf` found at `seq`; `wireLen` is how many stream bytes the packet carried (more than
   * buf.length when the capture cut it). Returns a masked copy of `buf`, or null when nothing was masked.
   */
  push(seq: number, buf: Buffer, wireLen = buf.length): Buffer | null {
    seq >>>= 0;
    const start = this.startState(seq, buf);
    const st = copyState(start);
    const out = scanHttp1(st, buf);
    const end = (seq + wireLen) >>> 0;
    if (this.next === null || seqDiff(end, this.next) > 0) {
      if (this.next !== null && this.state && seqDiff(seq, this.next) > 0) this.remember(this.next, this.state);
      this.remember(seq, start);
      this.next = end;
      this.state = wireLen > buf.length ? null : st;
    }
    return out;
  }

  private startState(seq: number, buf: Buffer): Http1State {
    if (this.next !== null && seq === this.next && this.state) return this.state;
    const cp = this.checkpoints.find((c) => c.seq === seq);
    return cp ? cp.state : resyncState(buf);
  }

  private remember(seq: number, state: Http1State): void {
    const i = this.checkpoints.findIndex((c) => c.seq === seq);
    if (i >= 0) this.checkpoints.splice(i, 1);
    this.checkpoints.push({ seq, state });
    if (this.checkpoints.length > CHECKPOINTS) this.checkpoints.shift();
  }
}

/** The runs of bytes where `out` differs from `buf`. */
function patchesOf(buf: Buffer, out: Buffer): [number, Buffer][] {
  const patches: [number, Buffer][] = [];
  for (let i = 0; i < buf.length;) {
    if (buf[i] === out[i]) { i++; continue; }
    let j = i;
    while (j < buf.length && buf[j] !== out[j]) j++;
    patches.push([i, Buffer.from(out.subarray(i, j))]);
    i = j;
  }
  return patches;
}

/** How many recent segments (and gaps) an H2Stream remembers for retransmissions. */
const RECENT = 16;
/** Bytes of early segments an H2Stream holds until the gap before them is filled. */
const REORDER_CAP = 1 << 20;

/**
 * One TCP direction of cleartext HTTP/2 (h2c, e.g. plaintext gRPC): segments in sequence order go through an
 * H2Redactor. A segment that arrives before the bytes ahead of it is masked whole (its place in the frames is
 * not known yet) and held until the gap is filled; then it is run through the redactor after the filler, so
 * frame and HPACK state stay right. A gap that lies inside a DATA (or other non-header) frame is skipped at
 * once instead, and the early segment is redacted normally. A retransmission of a recent segment gets that
 * segment's redacted bytes, data filling a skipped gap is left as it is, and any other data behind the
 * stream's front cannot be placed, so it is masked whole. Beyond REORDER_CAP held bytes a gap is skipped as
 * missing bytes (the redactor then turns conservative).
 */
export class H2Stream {
  private next: number;
  /** Recent segments and the bytes their redaction replaced (offset, new bytes); TCP resends the same bytes. */
  private readonly recent: { seq: number; len: number; patches: [number, Buffer][] }[] = [];
  private readonly harmlessGaps: { from: number; to: number }[] = [];
  /** Early segments, already written masked, to run through the redactor once the gap before them is filled. */
  private held: { seq: number; buf: Buffer; wireLen: number }[] = [];
  private heldBytes = 0;

  constructor(seq: number, private readonly h2: H2Redactor) {
    this.next = seq >>> 0;
  }

  /** Whether a segment at `seq` would begin a frame: it continues the stream, and no frame is being read. */
  framesStartAt(seq: number): boolean {
    return seq >>> 0 === this.next && this.held.length === 0 && this.h2.betweenFrames;
  }

  push(seq: number, buf: Buffer, wireLen = buf.length): Buffer | null {
    seq >>>= 0;
    const ahead = seqDiff(seq, this.next);
    if (ahead > 0) {
      if (this.h2.insideOtherFrame(ahead)) {
        this.h2.skip(ahead);
        this.keep(this.harmlessGaps, { from: this.next, to: seq });
      } else if (this.heldBytes + buf.length <= REORDER_CAP) {
        if (!this.held.some((h) => h.seq === seq)) {
          this.held.push({ seq, buf: Buffer.from(buf), wireLen });
          this.heldBytes += buf.length;
        }
        return Buffer.alloc(buf.length, MASK);
      } else {
        this.h2.skip(ahead);
      }
    }
    if (ahead >= 0) {
      const out = this.take(seq, buf, wireLen);
      this.release();
      return out;
    }
    const old = -ahead;
    if (old >= wireLen) return this.behind(seq, buf);
    // a resend that also carries new bytes: the part already seen is masked, the new part redacted
    const out = Buffer.alloc(buf.length, MASK);
    if (old < buf.length) {
      const fresh = buf.subarray(old);
      (this.take(this.next, fresh, wireLen - old) ?? fresh).copy(out, old);
      this.release();
    } else {
      this.take(this.next, Buffer.alloc(0), wireLen - old);
    }
    return out;
  }

  /** Redacts the bytes at the front of the stream. */
  private take(seq: number, buf: Buffer, wireLen: number): Buffer | null {
    const out = this.h2.redact(buf, wireLen - buf.length);
    this.next = (seq + wireLen) >>> 0;
    this.keep(this.recent, { seq, len: buf.length, patches: out ? patchesOf(buf, out) : [] });
    return out;
  }

  /** Runs held segments that now continue the stream through the redactor (their masked copies are written). */
  private release(): void {
    for (let h = this.held.find((x) => x.seq === this.next); h; h = this.held.find((x) => x.seq === this.next)) {
      this.take(h.seq, h.buf, h.wireLen);
      this.held = this.held.filter((x) => x !== h);
      this.heldBytes -= h.buf.length;
    }
    const stale = this.held.filter((x) => seqDiff(x.seq, this.next) < 0);
    for (const x of stale) this.heldBytes -= x.buf.length;
    if (stale.length > 0) this.held = this.held.filter((x) => seqDiff(x.seq, this.next) >= 0);
  }

  private behind(seq: number, buf: Buffer): Buffer | null {
    const same = this.recent.find((r) => r.seq === seq && r.len === buf.length);
    if (same) {
      if (same.patches.length === 0) return null;
      const out = Buffer.from(buf);
      for (const [off, bytes] of same.patches) bytes.copy(out, off);
      return out;
    }
    const end = (seq + buf.length) >>> 0;
    if (this.harmlessGaps.some((g) => seqDiff(seq, g.from) >= 0 && seqDiff(g.to, end) >= 0)) return null;
    return Buffer.alloc(buf.length, MASK);
  }

  private keep<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > RECENT) list.shift();
  }
}

const LF = 0x0a;
/** A 101's status line, as far as its first bytes go (the held bytes of a head may stop inside it). */
const STATUS_101 = 'HTTP/1.x 101 ';
const HTTP_1 = Buffer.from('HTTP/1.', 'latin1');
// (the version's minor digit is any; the status code is followed by its reason or the line's end)
const SWITCHING = /^HTTP\/1\.\d 101[ \r\n]/;
const UPGRADE_H2C = /\nupgrade[ \t]*:[ \t]*h2c[ \t]*\r?\n/i;
/** At most this much of a 101's head is held across segments (a real one is under 100 bytes). */
const HEAD_CAP = 2048;

/**
 * Watches a TCP direction read as HTTP/1 for h2c by Upgrade (RFC 7540 §3.2, `curl --http2 http://...`): a
 * `101 Switching Protocols` whose `Upgrade` is h2c, after which the direction is HTTP/2 frames. The server writes its
 * first frames (its SETTINGS, the answer to the upgraded request) right after the 101's head, often in the same segment,
 * before the client's preface, so the switch is found in the server's bytes, where the head ends. feed() takes the
 * direction's segments and returns the offset in the segment where the frames begin, -1 while none did. A 101's head
 * split over segments is held (up to HEAD_CAP bytes); after a segment out of order or cut by the capture, the watch
 * starts again at the next line start. why the SETTINGS check: a 101 found at a line start may be a body's text, and
 * the server's first frame must be its SETTINGS (RFC 9113 §3.4).
 */
export class H2cUpgrade {
  /** Sequence number just past the last segment looked into; null before the first. */
  private next: number | null = null;
  /** The next byte begins a line. */
  private lineStart = true;
  /** The bytes of a 101's head so far, from its status line. */
  private held: Buffer | null = null;

  feed(seq: number, buf: Buffer, wireLen = buf.length): number {
    seq >>>= 0;
    if (this.next !== null && seq !== this.next) {
      // (a resend was looked into already; after a gap, where lines start is not known)
      if (seqDiff(seq, this.next) < 0) return -1;
      this.held = null;
      this.lineStart = false;
    }
    this.next = (seq + wireLen) >>> 0;
    const base = this.held?.length ?? 0;
    const data = this.held ? Buffer.concat([this.held, buf]) : buf;
    // (held bytes begin with their status line)
    const startsLine = this.held !== null || this.lineStart;
    this.held = null;
    this.lineStart = buf.length > 0 ? buf[buf.length - 1] === LF : startsLine;
    const at = this.switchIn(data, startsLine);
    if (wireLen > buf.length) {
      // (bytes the capture cut: what follows them is not known)
      this.held = null;
      this.lineStart = false;
    }
    return at < 0 ? -1 : at - base;
  }

  /** Where in data the frames after a 101 to h2c begin; -1 when they do not (a head cut short is held). */
  private switchIn(data: Buffer, startsLine: boolean): number {
    // (found by its version's bytes: a native search, as most segments hold none)
    for (let at = data.indexOf(HTTP_1); at >= 0; at = data.indexOf(HTTP_1, at + 1)) {
      if (at === 0 ? !startsLine : data[at - 1] !== LF) continue;
      if (!SWITCHING.test(data.toString('latin1', at, Math.min(data.length, at + STATUS_101.length)))) continue;
      const end = headEnd(data, at);
      if (end < 0) {
        this.hold(data, at);
        return -1;
      }
      if (UPGRADE_H2C.test(data.toString('latin1', at, end)) && settingsMayStart(data, end)) return end;
    }
    // (a status line the segment's end cut: its rest comes next)
    const last = data.lastIndexOf(LF) + 1;
    if ((last > 0 || startsLine) && last < data.length && data.length - last < STATUS_101.length && isStatusPrefix(data.toString('latin1', last))) this.hold(data, last);
    return -1;
  }

  private hold(data: Buffer, at: number): void {
    if (data.length - at <= HEAD_CAP) this.held = Buffer.from(data.subarray(at));
  }
}

/** Whether text, shorter than a 101's status line up to its code, begins one. */
function isStatusPrefix(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const want = STATUS_101[i]!;
    if (want === 'x' ? !/\d/.test(text[i]!) : text[i] !== want) return false;
  }
  return true;
}

/** Whether the bytes from `at` (as many as there are, up to a frame header's 9) can begin a SETTINGS frame on stream 0. */
function settingsMayStart(data: Buffer, at: number): boolean {
  for (let i = 0; i < 9 && at + i < data.length; i++) {
    const b = data[at + i]!;
    // (its length, under 16 KiB: a first byte 0; its type 4; bytes 5-8 its stream, 0)
    if ((i === 0 || i >= 5) && b !== 0) return false;
    if (i === 3 && b !== 4) return false;
  }
  return true;
}
