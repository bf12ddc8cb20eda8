// One direction of a byte stream (a TCP direction by sequence number, or a direction of decrypted TLS records
// by running offset) scanned for HTTP/1 secrets across packets. Bounded state: the scan state at the
// highest byte seen so far plus a few checkpoints (scan state at recent packet starts and at the start of a
// gap), so a retransmission or the packet filling a gap is scanned from where it really starts. Anything
// else behind or beyond a gap starts from resyncState (conservative: see redact.ts).
import { copyState, lineStartState, resyncState, scanHttp1, type Http1State } from './redact.js';

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
    this.checkpoints.push({ seq, state: copyState(state) });
    if (this.checkpoints.length > CHECKPOINTS) this.checkpoints.shift();
  }
}
