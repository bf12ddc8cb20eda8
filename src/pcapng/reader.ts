// Streaming pcapng/pcap reading: a Node Transform (bytes in, decoded blocks out, with backpressure) and
// file helpers. A partial last block is E_PCAPNG_TRUNCATED after everything complete before it was delivered.
import { fstatSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { TapscopeError, isTapscopeError } from '../errors.js';
import { PcapngParser, type RawPacketSink } from './parser.js';
import type { PcapngBlock } from './types.js';

export interface TruncatedTail {
  offset: number;
  pending: number;
}

export interface ReaderOptions {
  /** Treat a partial last block as the normal end of a capture that was cut off (emits 'truncated' instead of an error). */
  tolerateTruncatedTail?: boolean;
}

export interface ReadBlocksOptions extends ReaderOptions {
  /** Takes packets in place before a block object is made for them (see RawPacketSink). */
  onPacket?: RawPacketSink | null;
  /** Bytes per file read (default 1 MiB; tests make it small to cross block boundaries often). */
  readSize?: number;
  /**
   * Read a file on a second thread, a few reads ahead of the parse (default: for regular files from
   * READ_AHEAD_MIN on, when the machine has a second core).
   */
  readAhead?: boolean;
}

// why: 1 MiB stays in the core's cache between the read and the parse (4 MiB and more measured slower)
const READ_SIZE = 1024 * 1024;
const YIELD_MS = 50;
// why: below this, starting the reading thread costs more than the copies it takes off the parsing thread
const READ_AHEAD_MIN = 32 * 1024 * 1024;
const AHEAD_SLOTS = 4;

/** Bytes in, `PcapngBlock` objects out. Emits 'truncated' (TruncatedTail) when tolerated. */
export class PcapngReader extends Transform {
  private readonly parser = new PcapngParser();
  private readonly tolerate: boolean;
  truncated: TruncatedTail | null = null;

  constructor(options: ReaderOptions = {}) {
    super({ readableObjectMode: true, writableObjectMode: false, readableHighWaterMark: 1024 });
    this.tolerate = options.tolerateTruncatedTail ?? false;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.parser.push(chunk, (b) => this.push(b));
      callback();
    } catch (e) {
      callback(asError(e));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.parser.end();
      callback();
    } catch (e) {
      if (this.tolerate && isTapscopeError(e, 'E_PCAPNG_TRUNCATED')) {
        this.truncated = { offset: this.parser.completeOffset, pending: this.parser.pendingBytes };
        this.emit('truncated', this.truncated);
        callback();
        return;
      }
      callback(asError(e));
    }
  }
}

function asError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new TapscopeError('E_INTERNAL', String(e));
}

export interface ReadResult {
  /** Set when the capture ends inside a block and truncation was tolerated. */
  truncated: TruncatedTail | null;
  bytes: number;
}

/**
 * Reads a pcapng/pcap byte source, calling onBlock (and onPacket) synchronously for each block. Block
 * data references the read buffers, which are reused: copy what you keep past the call.
 */
export async function readBlocks(
  source: Readable | string, onBlock: (b: PcapngBlock) => void, options: ReadBlocksOptions = {},
): Promise<ReadResult> {
  const parser = new PcapngParser();
  const packet = options.onPacket ?? null;
  const bytes = typeof source === 'string'
    ? await readFile(source, parser, onBlock, packet, options.readSize ?? READ_SIZE, options.readAhead ?? null)
    : await readStream(source, parser, onBlock, packet);
  try {
    parser.end();
  } catch (e) {
    if (options.tolerateTruncatedTail && isTapscopeError(e, 'E_PCAPNG_TRUNCATED') && bytes > 0) {
      return { truncated: { offset: parser.completeOffset, pending: parser.pendingBytes }, bytes };
    }
    throw e;
  }
  return { truncated: null, bytes };
}

async function readStream(stream: Readable, parser: PcapngParser, onBlock: (b: PcapngBlock) => void, packet: RawPacketSink | null): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += buf.length;
    parser.push(buf, onBlock, packet);
  }
  return bytes;
}

/**
 * One buffer, reused, filled by synchronous reads: the bytes are parsed while still in this core's cache (a
 * read on the thread pool lands them elsewhere, and a loaded machine delays its completion); no per-chunk
 * allocation, no stream machinery. It yields to the event loop every YIELD_MS, so a long load does not
 * starve the rest of the process.
 */
async function readFile(
  path: string, parser: PcapngParser, onBlock: (b: PcapngBlock) => void, packet: RawPacketSink | null, size: number, ahead: boolean | null,
): Promise<number> {
  const fh = await openCapture(path);
  try {
    const st = fstatSync(fh.fd);
    const next = ahead ?? (st.isFile() && st.size >= READ_AHEAD_MIN && availableParallelism() > 1)
      ? readsAhead(path, size)
      : readsInPlace(fh.fd, size);
    let bytes = 0;
    let yielded = performance.now();
    try {
      for (let chunk = next.read(); chunk !== null; chunk = next.read()) {
        bytes += chunk.length;
        parser.push(chunk, onBlock, packet);
        // why: the buffer is read into again; an incomplete block must not point into it
        parser.detach();
        next.done();
        if (performance.now() - yielded > YIELD_MS) {
          await new Promise(setImmediate);
          yielded = performance.now();
        }
      }
    } finally {
      await next.close();
    }
    return bytes;
  } finally {
    await fh.close();
  }
}

/** Successive reads of a file: read() gives the next bytes (null at the end), valid until done(). */
interface Reads {
  read(): Buffer | null;
  done(): void;
  close(): Promise<void>;
}

function readsInPlace(fd: number, size: number): Reads {
  const buf = Buffer.allocUnsafe(size);
  return {
    read: () => {
      // why: no position, so pipes and FIFOs read like files
      const n = readSync(fd, buf, 0, size, null);
      return n === 0 ? null : buf.subarray(0, n);
    },
    done: () => {},
    close: async () => {},
  };
}

// The reading thread: fills slot after slot of the shared buffer, waiting while a slot is still being parsed.
// A slot's state: FREE (0), its length + 1 when filled (1: the end), FAILED (-1, the error on the port).
const AHEAD_WORKER = `
const { workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { path, sab, slots, size, port } = workerData;
const state = new Int32Array(sab, 0, slots);
let fd = -1;
for (let s = 0; ; s = (s + 1) % slots) {
  for (let v = Atomics.load(state, s); v !== 0; v = Atomics.load(state, s)) Atomics.wait(state, s, v);
  let n;
  try {
    if (fd < 0) fd = openSync(path, 'r');
    n = readSync(fd, new Uint8Array(sab, 64 + s * size, size), 0, size, null);
  } catch (e) {
    port.postMessage({ code: e.code ?? null, message: String(e.message ?? e) });
    Atomics.store(state, s, -1);
    Atomics.notify(state, s);
    break;
  }
  Atomics.store(state, s, n + 1);
  Atomics.notify(state, s);
  if (n === 0) break;
}
if (fd >= 0) closeSync(fd);
port.close();
`;

/**
 * Reads on a second thread into AHEAD_SLOTS slots of one shared buffer: the copies from the page cache (a
 * quarter of a large load) run beside the parse instead of before it. The parse waits only when it catches up.
 */
function readsAhead(path: string, size: number): Reads {
  const sab = new SharedArrayBuffer(64 + AHEAD_SLOTS * size);
  const state = new Int32Array(sab, 0, AHEAD_SLOTS);
  const slots = Array.from({ length: AHEAD_SLOTS }, (_, s) => Buffer.from(sab, 64 + s * size, size));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(AHEAD_WORKER, { eval: true, workerData: { path, sab, slots: AHEAD_SLOTS, size, port: port2 }, transferList: [port2] });
  let slot = 0;
  let ended = false;
  return {
    read: () => {
      if (ended) return null;
      Atomics.wait(state, slot, 0);
      const v = Atomics.load(state, slot);
      if (v < 0) {
        const e = receiveMessageOnPort(port1)?.message as { code: string | null; message: string } | undefined;
        throw Object.assign(new Error(e?.message ?? `reading ${path} failed`), { code: e?.code ?? undefined });
      }
      if (v === 1) { ended = true; return null; }
      return slots[slot]!.subarray(0, v - 1);
    },
    done: () => {
      Atomics.store(state, slot, 0);
      Atomics.notify(state, slot);
      slot = (slot + 1) % AHEAD_SLOTS;
    },
    close: async () => {
      port1.close();
      // why: a parse that failed leaves the thread waiting for a slot; it holds nothing worth finishing
      await worker.terminate();
    },
  };
}

async function openCapture(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new TapscopeError('E_FILE_NOT_FOUND', `no such file: ${path}`);
    throw e;
  }
}

/** Collects every block of a buffer (tests and small files). Throws like the stream reader. */
export function parseBuffer(buf: Buffer): PcapngBlock[] {
  const out: PcapngBlock[] = [];
  const p = new PcapngParser();
  p.push(buf, (b) => out.push(b));
  p.end();
  return out;
}
