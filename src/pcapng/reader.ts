// Streaming pcapng/pcap reading: a Node Transform (bytes in, decoded blocks out, with backpressure) and
// file helpers. A partial last block is E_PCAPNG_TRUNCATED after everything complete before it was delivered.
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { TapscopeError, isTapscopeError } from '../errors.js';
import { PcapngParser, type RawPacketSink, type RawRecordSink } from './parser.js';
import { BYTE_ORDER_MAGIC, type PcapngBlock } from './types.js';
import { captureFileError, directoryError } from './file-errors.js';

export interface TruncatedTail {
  offset: number;
  pending: number;
}

export interface ReaderOptions {
  /** Treat a partial last block as the normal end of a capture that was cut off (emits 'truncated' instead of an error). */
  tolerateTruncatedTail?: boolean;
}

export interface ReadBlocksOptions extends ReaderOptions {
  /**
   * Treat a malformed block after the first complete one as the end of the capture: everything before it was
   * delivered, and the error comes back as `damaged` instead of being thrown (a capture damaged in the middle,
   * read as tshark does). A source that is not a capture at all (nothing complete read) still throws.
   */
  tolerateDamage?: boolean;
  /** Takes packets in place before a block object is made for them (see RawPacketSink). */
  onPacket?: RawPacketSink | null;
  /** With onPacket: takes decrypted records in place (see RawRecordSink). */
  onRecord?: RawRecordSink | null;
  /** Bytes per file read (default 1 MiB; tests make it small to cross block boundaries often). */
  readSize?: number;
}

// why: reads of this size on the thread pool, READS_AHEAD of them in flight while the parser walks the last:
// on the 1 GB bench capture (2-core VM) the load measured 1.06 s with 1 MiB, 1.32 s with 256 KiB and 1.05 s
// with 4 MiB reads (two buffers in turn), against 1.18 s for one 256 KiB buffer filled by readSync (the
// kernel's copy then ran on the parsing core). With one read ahead the parser still waited ~100 ms for
// reads in all (a CPU profile's idle time); with two, 20-30 ms; with three, 13-19 ms.
const READ_SIZE = 1024 * 1024;
const READS_AHEAD = 2;
const READ_AHEAD_MIN = 64 * 1024;

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
  /** Set when a malformed block ended the read and damage was tolerated (E_PCAPNG_MALFORMED, with its offset). */
  damaged: TapscopeError | null;
  /**
   * Damage the read went past (tolerated damage in a pcapng file): the malformed block, and the offset of the next
   * section header block, where reading went on. Each section is a capture of its own (a node's stream, a resumed one):
   * one broken at its end must not take the ones after it along.
   */
  skipped: SkippedDamage[];
  /** bytes read (up to the damage: the bytes of the complete blocks before it) */
  bytes: number;
}

export interface SkippedDamage {
  error: TapscopeError;
  /** where the next section begins, and reading went on */
  resumedAt: number;
}

/**
 * Reads a pcapng/pcap byte source, calling onBlock (and onPacket) synchronously for each block. Block
 * data references the read buffers, which are reused: copy what you keep past the call.
 */
export async function readBlocks(
  source: Readable | string, onBlock: (b: PcapngBlock) => void, options: ReadBlocksOptions = {},
): Promise<ReadResult> {
  const packet = options.onPacket ?? null;
  const record = options.onRecord ?? null;
  const skipped: SkippedDamage[] = [];
  // where the section being read begins (after damage, the next one's SHB)
  let from = 0;
  for (;;) {
    // (a file's errors about the whole of it, not a capture or empty, name it)
    const parser = new PcapngParser(typeof source === 'string' ? source : null, from);
    let bytes: number;
    let damage: TapscopeError | null = null;
    try {
      bytes = typeof source === 'string'
        ? from + await readFile(source, parser, onBlock, packet, record, options.readSize ?? READ_SIZE, from)
        : await readStream(source, parser, onBlock, packet, record);
    } catch (e) {
      if (!(options.tolerateDamage && isTapscopeError(e, 'E_PCAPNG_MALFORMED') && parser.completeOffset > 0)) throw e;
      damage = e;
      bytes = parser.completeOffset;
    }
    if (damage === null) {
      try {
        parser.end();
        return { truncated: null, damaged: null, skipped, bytes };
      } catch (e) {
        if (!(options.tolerateTruncatedTail && isTapscopeError(e, 'E_PCAPNG_TRUNCATED') && bytes > 0)) throw e;
        // (a block cut off by a section after it: a stream that stopped mid-block, another appended to it)
        const next = options.tolerateDamage && typeof source === 'string' ? await nextSection(source, parser.completeOffset + 4) : null;
        if (next === null) return { truncated: { offset: parser.completeOffset, pending: parser.pendingBytes }, damaged: null, skipped, bytes };
        damage = new TapscopeError('E_PCAPNG_MALFORMED', `block cut off by the section header block at offset ${next} at offset ${parser.completeOffset}`, { offset: parser.completeOffset });
        skipped.push({ error: damage, resumedAt: next });
        from = next;
        continue;
      }
    }
    const at = Number(damage.details?.offset ?? bytes);
    const next = typeof source === 'string' ? await nextSection(source, at + 4) : null;
    if (next === null) return { truncated: null, damaged: damage, skipped, bytes };
    skipped.push({ error: damage, resumedAt: next });
    from = next;
  }
}

const SHB_BYTES = Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]);
const SCAN_SIZE = 1024 * 1024;

/**
 * The offset of the first well-formed section header block of the pcapng file at `path` at or after `from` (its type,
 * a byte-order magic, a length of 28 bytes to 1 MiB that its trailing copy repeats, version 1), or null. Only for
 * files that are pcapng from their first bytes.
 */
async function nextSection(path: string, from: number): Promise<number | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    if (!(await fh.stat()).isFile() || (await fh.read(head, 0, 4, 0)).bytesRead < 4 || !head.equals(SHB_BYTES)) return null;
    const buf = Buffer.allocUnsafe(SCAN_SIZE);
    const tail = Buffer.alloc(4);
    for (let at = from; ;) {
      const n = (await fh.read(buf, 0, SCAN_SIZE, at)).bytesRead;
      if (n < 16) return null;
      for (let i = buf.indexOf(SHB_BYTES, 0); i >= 0 && i + 16 <= n; i = buf.indexOf(SHB_BYTES, i + 1)) {
        const le = buf.readUInt32LE(i + 8) === BYTE_ORDER_MAGIC;
        if (!le && buf.readUInt32BE(i + 8) !== BYTE_ORDER_MAGIC) continue;
        const len = le ? buf.readUInt32LE(i + 4) : buf.readUInt32BE(i + 4);
        const major = le ? buf.readUInt16LE(i + 12) : buf.readUInt16BE(i + 12);
        if (len < 28 || len % 4 !== 0 || len > SCAN_SIZE || major !== 1) continue;
        if ((await fh.read(tail, 0, 4, at + i + len - 4)).bytesRead < 4) continue;
        if ((le ? tail.readUInt32LE(0) : tail.readUInt32BE(0)) === len) return at + i;
      }
      // (the next window overlaps this one's last bytes, where a header may begin)
      at += n - 15;
    }
  } finally {
    await fh.close();
  }
}

async function readStream(
  stream: Readable, parser: PcapngParser, onBlock: (b: PcapngBlock) => void, packet: RawPacketSink | null, record: RawRecordSink | null,
): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += buf.length;
    parser.push(buf, onBlock, packet, record);
  }
  return bytes;
}

/**
 * Reused buffers, filled in turn: while the parser walks one, the thread pool reads the file's next bytes
 * into the others (the kernel's copy of a large capture, a sixth of its load, runs on another core). No
 * per-chunk allocation, no stream machinery; each read's completion is a turn of the event loop, so a long
 * load does not starve the rest of the process. A pipe or FIFO (no positions to read at) and reads under
 * READ_AHEAD_MIN (a thread pool round trip costs more than a small read's copy: a test's 13-byte reads of a
 * 40 KiB capture took 12 times as long) are read synchronously, one read when it is needed.
 */
async function readFile(
  path: string, parser: PcapngParser, onBlock: (b: PcapngBlock) => void, packet: RawPacketSink | null, record: RawRecordSink | null,
  size: number, start = 0,
): Promise<number> {
  const fh = await openCapture(path);
  let bytes = 0;
  const pending: { buf: ReturnType<typeof Buffer.allocUnsafe>; at: number; read: Promise<{ bytesRead: number }> }[] = [];
  try {
    const ahead = size >= READ_AHEAD_MIN && (await fh.stat()).isFile() ? READS_AHEAD : 0;
    const spare = Array.from({ length: ahead + 1 }, () => Buffer.allocUnsafe(size));
    // where the next read starts: the bytes before it are parsed or being read
    let at = start;
    // why the errors are mapped here and not around the loop: onBlock's own errors (an export's full disk) are not
    // the capture file's
    const readNow = (buf: Buffer): Promise<{ bytesRead: number }> => {
      try {
        return Promise.resolve({ bytesRead: readSync(fh.fd, buf, 0, size, start > 0 ? at : null) });
      } catch (e) {
        return Promise.reject(captureFileError(e, path));
      }
    };
    const issue = (): void => {
      const buf = spare.pop()!;
      const read = ahead ? fh.read(buf, 0, size, at).catch((e: unknown) => { throw captureFileError(e, path); }) : readNow(buf);
      pending.push({ buf, at, read });
      at += size;
    };
    while (spare.length > 0) issue();
    for (;;) {
      const { buf, at: from, read } = pending.shift()!;
      const n = (await read).bytesRead;
      if (n === 0) break;
      bytes += n;
      // (the reads ahead run while this one is parsed)
      parser.push(buf.subarray(0, n), onBlock, packet, record);
      // why: the buffer is read into again; an incomplete block must not point into it
      parser.detach();
      spare.push(buf);
      if (n < size) {
        // why: a short read is the end of the file as it was; the reads after it may have found bytes the file
        // gained since (a capture still being written), past a gap: they are read again from here
        for (const p of pending.splice(0)) {
          await p.read.catch(() => undefined);
          spare.push(p.buf);
        }
        at = from + n;
      }
      while (spare.length > 0) issue();
    }
  } finally {
    // (a parse error leaves reads in flight into the other buffers: they end before the file is closed)
    for (const p of pending) await p.read.catch(() => undefined);
    await fh.close();
  }
  return bytes;
}

/** The capture file at `path` opened for reading; missing, unreadable or a directory: an error naming it. */
async function openCapture(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw captureFileError(e, path);
  }
  // why: a directory opens for reading; its first read would fail with EISDIR, not saying which file
  const dir = await fh.stat().then((st) => st.isDirectory(), () => false);
  if (dir) {
    await fh.close();
    throw directoryError(path);
  }
  return fh;
}

/** Collects every block of a buffer (tests and small files). Throws like the stream reader. */
export function parseBuffer(buf: Buffer): PcapngBlock[] {
  const out: PcapngBlock[] = [];
  const p = new PcapngParser();
  p.push(buf, (b) => out.push(b));
  p.end();
  return out;
}
