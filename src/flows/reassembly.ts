// TCP reassembly for one direction of a connection: delivers the byte stream in order to a sink,
// buffering out-of-order segments (bounded), dropping retransmitted bytes, and declaring a gap when the
// missing bytes do not arrive before the buffer limit is reached.

export interface StreamSink {
  data(chunk: Buffer, ts: number): void;
  /** `bytes` were lost before the next data() chunk. */
  gap(bytes: number): void;
}

export interface ReassemblyLimits {
  /** Bytes of out-of-order data buffered before giving up on the hole (default 256 KiB). */
  maxBuffered: number;
  /** Out-of-order segments buffered before giving up on the hole. */
  maxSegments: number;
}

export const DEFAULT_LIMITS: ReassemblyLimits = { maxBuffered: 256 * 1024, maxSegments: 512 };

interface Pending {
  seq: number;
  data: Buffer;
  ts: number;
}

export class TcpReassembler {
  /** Next expected sequence number (raw, uint32); null until the first segment or SYN. */
  private next: number | null = null;
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private stopped = false;
  delivered = 0;
  retransmittedBytes = 0;
  gaps = 0;
  lostBytes = 0;

  constructor(private readonly sink: StreamSink, private readonly limits: ReassemblyLimits = DEFAULT_LIMITS) {}

  /** Bytes held for a hole right now (the memory this direction uses beyond the sink). */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** The next byte's sequence number the stream waits for (raw, uint32); null before the first segment or SYN. */
  get expected(): number | null {
    return this.next;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** The SYN's sequence number: data starts at seq + 1. */
  syn(seq: number): void {
    if (this.next === null) this.next = (seq + 1) >>> 0;
  }

  /** The stream continues at `seq` (its earlier bytes went to the sink another way). */
  expect(seq: number): void {
    if (this.next === null) this.next = seq >>> 0;
  }

  /** Stop reassembling (the dissectors have what they need); frees buffered segments. */
  stop(): void {
    this.stopped = true;
    if (this.pending.length > 0) this.pending = [];
    this.pendingBytes = 0;
  }

  /**
   * True when a segment at `seq` would be delivered whole right now: it starts exactly at the next expected
   * byte and no out-of-order data waits. The caller may then consume it itself (see skip).
   */
  inOrder(seq: number): boolean {
    return !this.stopped && this.next === (seq >>> 0) && this.pending.length === 0;
  }

  /** Counts `n` in-order bytes (inOrder held) as delivered without handing them to the sink. */
  skip(n: number): void {
    this.next = ((this.next ?? 0) + n) >>> 0;
    this.delivered += n;
  }

  segment(seq: number, payload: Buffer, ts: number): void {
    if (this.stopped || payload.length === 0) return;
    if (this.next === null) this.next = seq >>> 0;
    const diff = (seq - this.next) | 0;
    if (diff <= 0) {
      this.deliverAt(diff, payload, ts);
      this.flushPending();
      return;
    }
    // Out of order: keep a copy (the packet buffer belongs to the reader) unless we already hold it.
    for (const p of this.pending) {
      if (p.seq === (seq >>> 0) && p.data.length >= payload.length) {
        this.retransmittedBytes += payload.length;
        return;
      }
    }
    this.pending.push({ seq: seq >>> 0, data: Buffer.from(payload), ts });
    this.pendingBytes += payload.length;
    if (this.pendingBytes > this.limits.maxBuffered || this.pending.length > this.limits.maxSegments) this.skipHole();
  }

  /**
   * The stream is over (the capture ended, a reset) or all that can come of it came (its FIN, and nothing for the holes
   * before it): each hole left is declared lost and the data buffered after it delivered, in order. Without this, a
   * segment lost by the capture held back everything after it on the connection until 256 KiB more came.
   */
  flush(): void {
    while (this.pending.length > 0 && !this.stopped) {
      const before = this.pending.length;
      this.skipHole();
      if (this.pending.length === before) break;
    }
  }

  /**
   * The stream ends at `seq` (its FIN's sequence number): bytes before it that never came are declared lost, after
   * those buffered (see flush).
   */
  endAt(seq: number): void {
    this.flush();
    if (this.stopped || this.next === null) return;
    const missing = ((seq >>> 0) - this.next) | 0;
    if (missing <= 0) return;
    this.gaps++;
    this.lostBytes += missing;
    this.next = seq >>> 0;
    this.sink.gap(missing);
  }

  /** Declares the current hole lost and continues from the earliest buffered segment. */
  private skipHole(): void {
    if (this.next === null || this.pending.length === 0) return;
    let best: Pending | undefined;
    let bestDiff = Infinity;
    for (const p of this.pending) {
      const d = (p.seq - this.next) | 0;
      if (d < bestDiff) { bestDiff = d; best = p; }
    }
    if (!best || bestDiff <= 0) { this.flushPending(); return; }
    this.gaps++;
    this.lostBytes += bestDiff;
    this.sink.gap(bestDiff);
    this.next = best.seq;
    this.flushPending();
  }

  private deliverAt(diff: number, payload: Buffer, ts: number): void {
    if (diff + payload.length <= 0) {
      this.retransmittedBytes += payload.length;
      return;
    }
    const chunk = diff < 0 ? payload.subarray(-diff) : payload;
    if (diff < 0) this.retransmittedBytes += -diff;
    this.next = ((this.next ?? 0) + chunk.length) >>> 0;
    this.delivered += chunk.length;
    this.sink.data(chunk, ts);
  }

  private flushPending(): void {
    let progressed = true;
    while (progressed && this.pending.length > 0 && !this.stopped) {
      progressed = false;
      for (let i = 0; i < this.pending.length; i++) {
        const p = this.pending[i]!;
        const d = (p.seq - (this.next ?? 0)) | 0;
        if (d <= 0) {
          this.pending.splice(i, 1);
          this.pendingBytes -= p.data.length;
          this.deliverAt(d, p.data, p.ts);
          progressed = true;
          break;
        }
      }
    }
  }
}
