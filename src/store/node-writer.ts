// Writes one node's pcapng stream to disk as the bytes arrive: appended, fsynced about once a second, so a
// killed capture leaves every complete block on disk. After the SHB of each stream it inserts a Tapscope
// `{"t":"node","node":NAME}` custom block, so a merged multi-node file still says which node each section is,
// and after a resumed stream's SHB a `{"t":"gap",...}` block, so the file itself says where data is missing. A file the
// user named is opened (and so replaced) only when the first bytes come: a capture that never delivers leaves it alone.
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DiskReserve } from '../util/spool-file.js';
import { BLOCK_SHB, BYTE_ORDER_MAGIC } from '../pcapng/types.js';
import { encodeTapscopeRecord } from '../pcapng/writer.js';

const FSYNC_INTERVAL_MS = 1000;

export class NodeFileWriter {
  private fd: number | null = null;
  private ended = false;
  private wasOpened = false;
  /** told when the file is opened at the first bytes (see the constructor's onFirstBytes) */
  private readonly firstBytes: (() => void) | null;
  /** where the current stream's first byte is in the file */
  private streamBase = 0;
  /** the records inserted into the current stream (after its SHB, which is `at` bytes long) */
  private inserted: { at: number; length: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  /** Bytes of the current stream's first block seen so far (until the SHB is complete). */
  private shbPending: Buffer[] | null = null;
  /** A lost stream not yet resumed: recorded after the next stream's SHB (a block boundary by construction). */
  private openGap: { fromMs: number; reason: string } | null = null;
  bytesWritten = 0;
  /** where each stream's first byte (its SHB) is in the file: the sections a reader goes on at after damage */
  readonly streamStarts: number[] = [];
  /**
   * Why it stopped writing (its disk's reserve reached, a write failed), or null. why stop: a capture left to fill the
   * disk takes everything else on it down; the file holds every block before the stop, as a killed capture's does
   */
  stopped: string | null = null;
  /** told once, when it stops writing */
  onStopped: ((why: string) => void) | null = null;
  private readonly disk: DiskReserve;

  /**
   * `onFirstBytes`: the file is not opened until bytes come, then replaced (truncated), and this is called: a file the
   * user named stays as it was when the capture fails before its first bytes. Without it the file is opened now: replaced
   * (`replace`, a file new to the session, whatever a killed capture left under its name) or appended to.
   */
  constructor(readonly path: string, readonly node: string, opts: { onFirstBytes?: () => void; replace?: boolean } = {}) {
    this.disk = new DiskReserve(dirname(path));
    this.firstBytes = opts.onFirstBytes ?? null;
    if (!this.firstBytes) {
      this.fd = openSync(path, opts.replace ? 'w' : 'a');
      this.wasOpened = true;
    }
    this.timer = setInterval(() => this.sync(), FSYNC_INTERVAL_MS);
    this.timer.unref();
  }

  /** A new helper stream begins (first start or a reconnect): its first block is an SHB. */
  beginStream(): void {
    this.shbPending = [];
    this.streamBase = this.bytesWritten;
    this.streamStarts.push(this.bytesWritten);
    this.inserted = null;
  }

  /**
   * Where a byte of the current stream (its offset in what the helper sent) is in the file: after the SHB, the records
   * this writer inserted come first. For the live parser's errors, which count the stream's bytes.
   */
  fileOffset(streamOffset: number): number {
    return this.streamBase + streamOffset + (this.inserted !== null && streamOffset >= this.inserted.at ? this.inserted.length : 0);
  }

  /** The node's stream was lost at `fromMs`; the gap ends where the next stream begins. */
  gapOpened(fromMs: number, reason: string): void {
    this.openGap = { fromMs, reason };
  }

  write(chunk: Buffer): void {
    if (this.ended) return;
    if (this.shbPending) {
      this.shbPending.push(chunk);
      const joined = Buffer.concat(this.shbPending);
      if (joined.length < 12) return;
      const le = joined.readUInt32LE(8) === BYTE_ORDER_MAGIC;
      const len = le ? joined.readUInt32LE(4) : joined.readUInt32BE(4);
      // why: the node record is little-endian; only insert it into a little-endian section (the helper's).
      const valid = joined.readUInt32LE(0) === BLOCK_SHB && le && len >= 28 && len % 4 === 0 && len <= 1024 * 1024;
      if (valid && len > joined.length) {
        this.shbPending = [joined];
        return;
      }
      this.shbPending = null;
      if (!valid) {
        this.raw(joined);
        return;
      }
      this.raw(joined.subarray(0, len));
      const records = [encodeTapscopeRecord({ t: 'node', node: this.node })];
      if (this.openGap) records.push(encodeTapscopeRecord({ t: 'gap', ...this.openGap, toMs: Date.now() }));
      this.openGap = null;
      for (const r of records) this.raw(r);
      this.inserted = { at: len, length: records.reduce((n, r) => n + r.length, 0) };
      this.raw(joined.subarray(len));
      return;
    }
    this.raw(chunk);
  }

  private raw(b: Buffer): void {
    if (this.ended || this.stopped !== null || b.length === 0) return;
    if (this.fd === null && !this.open(b.length)) return;
    const r = this.disk.write(this.fd!, b, this.bytesWritten);
    this.bytesWritten += r.n;
    if (r.n > 0) this.dirty = true;
    if (r.full !== null || r.error !== null) this.stop(`stopped writing ${this.path} after ${this.bytesWritten} bytes: ${r.full ?? r.error!.message}`);
  }

  /**
   * The first bytes came: the file is opened, replacing what it held, and the owner told; unless the disk has no room
   * for them, which leaves the file as it was.
   */
  private open(first: number): boolean {
    const full = this.disk.short(0, first);
    if (full !== null) {
      this.stop(`stopped writing ${this.path} after 0 bytes: ${full}`);
      return false;
    }
    try {
      this.fd = openSync(this.path, 'w');
      this.wasOpened = true;
      this.firstBytes?.();
      return true;
    } catch (e) {
      this.stop(`stopped writing ${this.path} before its first byte: ${(e as Error).message}`);
      return false;
    }
  }

  /** the file has been opened, and so holds this writer's bytes (a file opened at the first bytes: they came) */
  get opened(): boolean {
    return this.wasOpened;
  }

  private stop(why: string): void {
    this.stopped = why;
    this.onStopped?.(why);
  }

  sync(): void {
    if (this.fd !== null && this.dirty) {
      this.dirty = false;
      try {
        fsyncSync(this.fd);
      } catch (e) {
        // (a disk that fails a sync: what was written stays, nothing more is)
        if (this.stopped === null) this.stop(`stopped writing ${this.path} after ${this.bytesWritten} bytes: syncing it failed: ${(e as Error).message}`);
      }
    }
  }

  /** every byte is in the file, and no more will come */
  get closed(): boolean {
    return this.ended;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.ended) return;
    if (this.shbPending && this.shbPending.length > 0) this.raw(Buffer.concat(this.shbPending));
    this.shbPending = null;
    this.ended = true;
    this.sync();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
