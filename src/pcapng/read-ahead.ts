// Reading a large capture file on a second thread, ahead of the parse: the kernel's copy of each chunk (a
// quarter of a `tapscope flows` run on the 1 GB bench capture) then happens on the other core while this one
// parses the chunk before. The chunks go round a ring of slots in shared memory; each slot's state word says
// whose it is. The reader is a small script (no module to find: it runs the same from the sources, the build
// and an Electron archive) that reads at positions, so the file's own offset is never shared.
import { Worker } from 'node:worker_threads';

/** A slot's state word: empty (the reader's to fill) or full (the parser's to read). */
const EMPTY = 0;
const FULL = 1;
/**
 * Control words after the slots' states and lengths: the reader is running; go on (1) or stop (2); the slot the
 * parse waits on to fill (its index + 1, 0 for none), so that the reader wakes it only then.
 */
const CTL_READY = 0;
const CTL_GO = 1;
const CTL_PARSE_WAITS = 2;
const CTL_WORDS = 3;
/**
 * How long the reader sleeps while the ring is full before it looks again (ms). The parse never wakes it: a
 * wake-up of a waiting thread cost the waker ~150 us on the 2-vCPU VM the benchmarks run on (the other vCPU is
 * woken from halt), a tenth of the time a chunk takes to parse, where the reader looking every POLL_MS costs the
 * parse nothing. With half the ring (1 MiB, ~1 ms of parsing) still full when the reader waits, a poll this often
 * refills it before the parse gets to its end.
 */
const POLL_MS = 0.25;
const GO = 1;
const STOP = 2;

/** Atomics.waitAsync (Node 16 on; ES2024's lib, newer than this project's) */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** Why the reader thread stopped reading: the read's error code and message. */
export interface ReadAheadError {
  code: string | null;
  message: string;
}

const READER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { words, start, fd, chunks } = workerData;
const slots = chunks.length;
const ctl = slots * 2;
Atomics.store(words, ctl + ${CTL_READY}, 1);
while (Atomics.load(words, ctl + ${CTL_GO}) === 0) Atomics.wait(words, ctl + ${CTL_GO}, 0);
let pos = start[0];
let i = 0;
try {
  for (; Atomics.load(words, ctl + ${CTL_GO}) === ${GO}; i = (i + 1) % slots) {
    if (Atomics.load(words, i) !== ${EMPTY}) {
      // the ring is full: sleep until half of it is free again (the parse frees the slots in order)
      const w = (i + (slots >> 1) - 1) % slots;
      // (longer naps while the parse is held up elsewhere: a consumer that yields for long)
      for (let nap = ${POLL_MS}; Atomics.load(words, w) !== ${EMPTY} && Atomics.load(words, ctl + ${CTL_GO}) === ${GO}; nap = Math.min(nap * 2, 20)) {
        Atomics.wait(words, w, ${FULL}, nap);
      }
      if (Atomics.load(words, ctl + ${CTL_GO}) !== ${GO}) break;
    }
    const chunk = chunks[i];
    const n = readSync(fd, chunk, 0, chunk.length, pos);
    pos += n;
    words[slots + i] = n;
    Atomics.store(words, i, ${FULL});
    if (Atomics.load(words, ctl + ${CTL_PARSE_WAITS}) === i + 1) Atomics.notify(words, i);
    if (n === 0) break;
  }
} catch (e) {
  parentPort.postMessage({ code: (e && e.code) || null, message: String((e && e.message) || e) });
  // (in the slot being filled: the parse reaches it after every chunk read before the error)
  words[slots + i] = -1;
  Atomics.store(words, i, ${FULL});
  Atomics.notify(words, i);
}
`;

/**
 * A reader thread for the regular file open as `fd`. It starts at once; begin(position) sets it reading
 * (until then the caller may read the file itself). The caller takes the chunks in order with next(), hands
 * each back with release(), and must await close() before closing fd.
 */
export class ReadAhead {
  private readonly words: Int32Array;
  private readonly start = new Float64Array(new SharedArrayBuffer(8));
  private readonly chunks: Uint8Array[];
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private at = 0;
  private begun = false;
  private error: ReadAheadError | null = null;
  private readonly errorSeen: Promise<ReadAheadError>;

  constructor(fd: number, private readonly slots = 8, slotSize = 256 * 1024) {
    const data = new SharedArrayBuffer(slots * slotSize);
    this.words = new Int32Array(new SharedArrayBuffer(4 * (slots * 2 + CTL_WORDS)));
    this.chunks = Array.from({ length: slots }, (_, i) => new Uint8Array(data, i * slotSize, slotSize));
    this.worker = new Worker(READER, { eval: true, workerData: { words: this.words, start: this.start, fd, chunks: this.chunks } });
    this.errorSeen = new Promise((res) => this.worker.once('message', (m: ReadAheadError) => res((this.error = m))));
    this.exited = new Promise((res) => {
      this.worker.once('exit', () => res());
      // why: a reader thread that failed (one that could not start: no threads left) wakes a parse waiting on it
      this.worker.once('error', (e) => {
        this.error ??= { code: null, message: `the capture's reader thread failed: ${e.message}` };
        Atomics.notify(this.words, this.at);
      });
    });
  }

  /** Whether the thread is running, waiting for begin(). */
  get ready(): boolean {
    return Atomics.load(this.words, this.slots * 2 + CTL_READY) !== 0;
  }

  /** Sets the reader reading from `position` on; from now on only it reads the file. */
  begin(position: number): void {
    this.begun = true;
    this.start[0] = position;
    Atomics.store(this.words, this.slots * 2 + CTL_GO, GO);
    Atomics.notify(this.words, this.slots * 2 + CTL_GO);
  }

  /** The next chunk (a view of shared memory): empty at the end of the file; throws ReadAheadError when the read failed. */
  async next(): Promise<Buffer> {
    const i = this.at;
    const waits = this.slots * 2 + CTL_PARSE_WAITS;
    while (Atomics.load(this.words, i) !== FULL) {
      if (this.error) throw this.error;
      // (said before the wait looks at the slot: the reader, filling it after, sees it and wakes this)
      Atomics.store(this.words, waits, i + 1);
      const w = waitAsync(this.words, i, EMPTY);
      if (w.async) await w.value;
      Atomics.store(this.words, waits, 0);
    }
    const n = this.words[this.slots + i]!;
    if (n < 0) throw this.error ?? (await this.errorSeen);
    const c = this.chunks[i]!;
    return Buffer.from(c.buffer, c.byteOffset, n);
  }

  /** Hands the chunk next() gave back to the reader (its bytes are then overwritten). */
  release(): void {
    const i = this.at;
    // (no wake-up: the reader looks again by itself, see POLL_MS)
    Atomics.store(this.words, i, EMPTY);
    this.at = (i + 1) % this.slots;
  }

  /** Stops the reader and waits until it is gone, so the file descriptor can be closed. */
  async close(): Promise<void> {
    // why not wait for a thread that never read: it has not touched the file (and may not have started yet)
    if (!this.begun) {
      void this.worker.terminate();
      return;
    }
    Atomics.store(this.words, this.slots * 2 + CTL_GO, STOP);
    Atomics.notify(this.words, this.slots * 2 + CTL_GO);
    for (let i = 0; i < this.slots; i++) Atomics.notify(this.words, i);
    await this.exited;
  }
}
