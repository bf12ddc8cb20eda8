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
    const short = this.disk.short(this.written, piece.length);
    if (short !== null) throw this.full(short);
    try {
      for (let o = 0; o < piece.length;) o += writeSync(this.fd, piece, o, piece.length - o);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw this.full(this.disk.full(null));
      throw e;
    }
    this.written += piece.length;
  }

  close(): void {
    closeSync(this.fd);
  }

  private full(why: string): TapscopeError {
    return (this.stopped = new TapscopeError('E_DISK_FULL', `${this.what} stopped after ${this.written} bytes: ${why}. ${this.advice}`, { written: this.written }));
  }
}
