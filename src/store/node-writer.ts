// Writes one node's pcapng stream to disk as the bytes arrive, in whole blocks only (a block's bytes wait in memory
// until it is whole, then go in one write with the others the chunk completed): appended, fsynced about once a second,
// so a capture killed at any moment, or whose helper died inside a block, leaves a file of whole blocks that reads to
// its end; a write the disk cuts short is cut back to its last whole block. After the SHB of each stream it inserts a Tapscope
// `{"t":"node","node":NAME}` custom block, so a merged multi-node file still says which node each section is,
// and after a resumed stream's SHB a `{"t":"gap",...}` block, so the file itself says where data is missing. A file the
// user named is opened (and so replaced) only when the first bytes come: a capture that never delivers leaves it alone.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DiskReserve } from '../util/spool-file.js';
import { BLOCK_SHB, BYTE_ORDER_MAGIC } from '../pcapng/types.js';
import { WholeBlocks } from '../pcapng/framing.js';
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
  /** the current stream cut into whole blocks (the bytes of one not yet whole are held back) */
  private readonly blocks = new WholeBlocks();
  /** the current stream's first block, its SHB, is still to come */
  private awaitingShb = false;
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
    // why: the stream before may have ended inside a block; its bytes go, or the new SHB would follow a torn block
    this.blocks.reset();
    this.awaitingShb = true;
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
    if (this.ended || this.stopped !== null) return;
    const ends: number[] = [];
    const whole = this.blocks.push(chunk, (_start, end) => ends.push(end));
    if (whole.length === 0) return;
    if (!this.awaitingShb) {
      this.raw(whole, ends);
      return;
    }
    this.awaitingShb = false;
    const len = ends[0];
    // why: the node record is little-endian; only insert it into a little-endian section (the helper's).
    if (len === undefined || len < 28 || whole.readUInt32LE(0) !== BLOCK_SHB || whole.readUInt32LE(8) !== BYTE_ORDER_MAGIC) {
      this.raw(whole, ends);
      return;
    }
    const records = [encodeTapscopeRecord({ t: 'node', node: this.node })];
    if (this.openGap) records.push(encodeTapscopeRecord({ t: 'gap', ...this.openGap, toMs: Date.now() }));
    this.openGap = null;
    let at = len;
    const recordEnds = records.map((r) => (at += r.length));
    const length = at - len;
    this.inserted = { at: len, length };
    this.raw(Buffer.concat([whole.subarray(0, len), ...records, whole.subarray(len)]), [len, ...recordEnds, ...ends.slice(1).map((e) => e + length)]);
  }

  /**
   * Writes `b` in one write: whole blocks, ending at `ends` (after the last, bytes that are not pcapng, as they came).
   * A write the disk cut short (full, or failing) is cut back to the end of its last whole block.
   */
  private raw(b: Buffer, ends: number[]): void {
    if (this.ended || this.stopped !== null || b.length === 0) return;
    if (this.fd === null && !this.open(b.length)) return;
    const r = this.disk.write(this.fd!, b, this.bytesWritten);
    let n = r.n;
    const keep = ends.filter((e) => e <= n).at(-1) ?? 0;
    if (n < b.length && keep < n) {
      // why: a file ending inside a block is one tshark fails on ("cut short in the middle of a packet"); the file (maybe
      // opened to append: its size, not this writer's count) ends where this write began, plus its whole blocks
      try {
        ftruncateSync(this.fd!, fstatSync(this.fd!).size - (n - keep));
        n = keep;
      } catch {
        // (the torn block stays: reading the file says where it ends)
      }
    }
    this.bytesWritten += n;
    if (n > 0) this.dirty = true;
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
    // (the bytes of a block the stream's end tore are dropped: the live analysis notes it)
    this.blocks.reset();
    this.ended = true;
    this.sync();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
