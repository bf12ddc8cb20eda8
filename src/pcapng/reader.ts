// Streaming pcapng/pcap reading: a Node Transform (bytes in, decoded blocks out, with backpressure) and
// file helpers. A partial last block is E_PCAPNG_TRUNCATED after everything complete before it was delivered.
import { createReadStream } from 'node:fs';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { TapscopeError, isTapscopeError } from '../errors.js';
import { PcapngParser } from './parser.js';
import type { PcapngBlock } from './types.js';

export interface TruncatedTail {
  offset: number;
  pending: number;
}

export interface ReaderOptions {
  /** Treat a partial last block as the normal end of a capture that was cut off (emits 'truncated' instead of an error). */
  tolerateTruncatedTail?: boolean;
}

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
 * Reads a pcapng/pcap byte source, calling onBlock synchronously for each block (the fast path: no
 * per-block stream overhead). Block data may reference the read buffer: copy what you keep.
 */
export async function readBlocks(
  source: Readable | string, onBlock: (b: PcapngBlock) => void, options: ReaderOptions = {},
): Promise<ReadResult> {
  const stream = typeof source === 'string' ? openFile(source) : source;
  const parser = new PcapngParser();
  let bytes = 0;
  try {
    for await (const chunk of stream) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      bytes += buf.length;
      parser.push(buf, onBlock);
    }
  } catch (e) {
    if (typeof source === 'string') stream.destroy();
    if (isTapscopeError(e)) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new TapscopeError('E_FILE_NOT_FOUND', `no such file: ${String(source)}`);
    throw e;
  }
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

function openFile(path: string): Readable {
  // why: 1 MiB reads keep syscalls and chunk joins rare on multi-GB captures.
  return createReadStream(path, { highWaterMark: 1024 * 1024 });
}

/** Collects every block of a buffer (tests and small files). Throws like the stream reader. */
export function parseBuffer(buf: Buffer): PcapngBlock[] {
  const out: PcapngBlock[] = [];
  const p = new PcapngParser();
  p.push(buf, (b) => out.push(b));
  p.end();
  return out;
}
