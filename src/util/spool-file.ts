// Files tapscope writes as bytes come (a live capture's node files, the copies it makes of what it cannot read in place:
// a gzip capture's decompressed bytes, a capture piped in), stopped before they would fill their disk.
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { TapscopeError } from '../errors.js';

/**
 * The free space such a copy leaves on its disk (TAPSCOPE_KEEP_FREE, bytes; default 1 GiB). why: a gzip file can expand
 * a thousandfold and a pipe need never end, and a copy that filled the disk (or a RAM-backed /tmp) would take the
 * sessions being saved and everything else on it down with it.
 */
export function keepFree(): number {
  const raw = process.env.TAPSCOPE_KEEP_FREE;
  const v = Number(raw);
  return raw !== undefined && raw !== '' && Number.isFinite(v) && v >= 0 ? v : 1 << 30;
}

/** how much is written between looks at the disk's free space (a copy may go this far into the reserve) */
const CHECK_EVERY = 16 << 20;

const gib = (n: number): string => `${(n / (1 << 30)).toFixed(1)} GiB`;

/** The free space of the disk holding `dir`, looked at every CHECK_EVERY bytes a file there is given. */
export class DiskReserve {
  readonly reserve = keepFree();
  private checkAt = 0;

  constructor(readonly dir: string) {}

  /** null while `n` more bytes, after the `written` so far, leave the reserve free; else why not (a sentence) */
  short(written: number, n: number): string | null {
    if (written < this.checkAt) return null;
    const s = statfsSync(this.dir);
    const free = s.bavail * s.bsize;
    if (free - n < this.reserve) return this.full(free);
    this.checkAt = written + CHECK_EVERY;
    return null;
  }

  /**
   * Writes all of `b` at `fd` (after the `written` bytes there so far) unless that would eat into the reserve: the bytes
   * written (fewer than b's when a write failed), and why it stopped short: `full`, the reserve reached or the disk
   * found full (a sentence), or `error`, the write's other error.
   */
  write(fd: number, b: Buffer, written: number): { n: number; full: string | null; error: Error | null } {
    const short = this.short(written, b.length);
    if (short !== null) return { n: 0, full: short, error: null };
    let n = 0;
    try {
      while (n < b.length) n += writeSync(fd, b, n, b.length - n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return { n, full: this.full(null), error: null };
      return { n, full: null, error: e as Error };
    }
    return { n, full: null, error: null };
  }

  /** the sentence for a disk with `free` bytes free (null: a write found it full) */
  full(free: number | null): string {
    if (free === null) return `the disk of ${this.dir} is full`;
    return `only ${gib(free)} would be left free on the disk of ${this.dir}, which keeps ${gib(this.reserve)} free (TAPSCOPE_KEEP_FREE)`;
  }
}

/** A file written piece by piece, each as it comes (a failure leaves every byte before it), keeping keepFree() free. */
export class SpoolFile {
  written = 0;
  /** the E_DISK_FULL that stopped it, if one did (a pipeline reports its own AbortError instead) */
  stopped: TapscopeError | null = null;
  private readonly disk: DiskReserve;
  private readonly fd: number;

  /** `what` names the copy in messages ("decompressing x.gz"); `advice`: what to do instead */
  constructor(readonly out: string, private readonly what: string, private readonly advice: string) {
    this.disk = new DiskReserve(dirname(out));
    this.fd = openSync(out, 'w', 0o600);
  }

  write(piece: Buffer): void {
    const r = this.disk.write(this.fd, piece, this.written);
    this.written += r.n;
    if (r.full !== null) throw this.full(r.full);
    if (r.error !== null) throw r.error;
  }

  close(): void {
    closeSync(this.fd);
  }

  private full(why: string): TapscopeError {
    return (this.stopped = new TapscopeError('E_DISK_FULL', `${this.what} stopped after ${this.written} bytes: ${why}. ${this.advice}`, { written: this.written }));
  }
}
