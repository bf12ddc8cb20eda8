// Writes one node's pcapng stream to disk as the bytes arrive: appended, fsynced about once a second, so a
// killed capture leaves every complete block on disk. After the SHB of each stream it inserts a Tapscope
// `{"t":"node","node":NAME}` custom block, so a merged multi-node file still says which node each section is,
// and after a resumed stream's SHB a `{"t":"gap",...}` block, so the file itself says where data is missing.
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DiskReserve } from '../util/spool-file.js';
import { BLOCK_SHB, BYTE_ORDER_MAGIC } from '../pcapng/types.js';
import { encodeTapscopeRecord } from '../pcapng/writer.js';

const FSYNC_INTERVAL_MS = 1000;

export class NodeFileWriter {
  private fd: number | null;
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  /** Bytes of the current stream's first block seen so far (until the SHB is complete). */
  private shbPending: Buffer[] | null = null;
  /** A lost stream not yet resumed: recorded after the next stream's SHB (a block boundary by construction). */
  private openGap: { fromMs: number; reason: string } | null = null;
  bytesWritten = 0;
  /**
   * Why it stopped writing (its disk's reserve reached, a write failed), or null. why stop: a capture left to fill the
   * disk takes everything else on it down; the file holds every block before the stop, as a killed capture's does
   */
  stopped: string | null = null;
  /** told once, when it stops writing */
  onStopped: ((why: string) => void) | null = null;
  private readonly disk: DiskReserve;

  constructor(readonly path: string, readonly node: string) {
    this.disk = new DiskReserve(dirname(path));
    this.fd = openSync(path, 'a');
    this.timer = setInterval(() => this.sync(), FSYNC_INTERVAL_MS);
    this.timer.unref();
  }

  /** A new helper stream begins (first start or a reconnect): its first block is an SHB. */
  beginStream(): void {
    this.shbPending = [];
  }

  /** The node's stream was lost at `fromMs`; the gap ends where the next stream begins. */
  gapOpened(fromMs: number, reason: string): void {
    this.openGap = { fromMs, reason };
  }

  write(chunk: Buffer): void {
    if (this.fd === null) return;
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
      this.raw(encodeTapscopeRecord({ t: 'node', node: this.node }));
      if (this.openGap) this.raw(encodeTapscopeRecord({ t: 'gap', ...this.openGap, toMs: Date.now() }));
      this.openGap = null;
      this.raw(joined.subarray(len));
      return;
    }
    this.raw(chunk);
  }

  private raw(b: Buffer): void {
    if (this.fd === null || this.stopped !== null || b.length === 0) return;
    const r = this.disk.write(this.fd, b, this.bytesWritten);
    this.bytesWritten += r.n;
    if (r.n > 0) this.dirty = true;
    if (r.full !== null || r.error !== null) this.stop(`stopped writing ${this.path} after ${this.bytesWritten} bytes: ${r.full ?? r.error!.message}`);
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
    return this.fd === null;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.fd === null) return;
    if (this.shbPending && this.shbPending.length > 0) this.raw(Buffer.concat(this.shbPending));
    this.shbPending = null;
    this.sync();
    closeSync(this.fd);
    this.fd = null;
  }
}
