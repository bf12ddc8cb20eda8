// Compressed capture files: `tcpdump -w - | gzip`, Wireshark's "Compress with gzip" (.pcapng.gz, .pcap.gz). Wireshark
// and tshark open a gzip-compressed capture as it is; tapscope reads one through a decompressed copy, since the
// export, Follow stream and the packet list read a capture again by its blocks' offsets. Other compressors' files
// are named, with the command that decompresses them.
import { closeSync, createReadStream, openSync, readSync, statfsSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { TapscopeError } from '../errors.js';
import { COMPRESSORS, type Compression } from './compressors.js';

export type { Compression };

/** The command that decompresses a file of compressor c. */
const toolOf = (c: Compression): string => COMPRESSORS.find((k) => k.name === c)!.tool;

/** The compressor whose magic number `head` begins with, or null (a capture's own magic numbers are none of these). */
export function compressionOf(head: Uint8Array): Compression | null {
  for (const { name, magic } of COMPRESSORS) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return name;
  }
  return null;
}

/** The compressor of the file at `path` by its first bytes, or null. */
export function fileCompression(path: string): Compression | null {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(6);
    return compressionOf(head.subarray(0, readSync(fd, head, 0, head.length, 0)));
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether the file at `path` (called `name` in messages) is gzip-compressed: true; not compressed: false; compressed
 * otherwise: an error naming the command that decompresses it.
 */
export function isGzip(path: string, name = path): boolean {
  const c = fileCompression(path);
  if (c === null || c === 'gzip') return c === 'gzip';
  throw new TapscopeError('E_PCAPNG_MALFORMED',
    `${name} is compressed with ${c}; tapscope reads gzip-compressed captures and uncompressed ones: decompress it first (${name === path ? `${toolOf(c)} ${path}` : `with ${toolOf(c)}`})`);
}

/** What went wrong in a gzip stream: the copy holds every byte before it. */
export interface DecompressProblem {
  /** `truncated`: the stream ends early (a copy or a download cut short); `damaged`: its data is corrupt */
  kind: 'truncated' | 'damaged';
  /** the decompressed bytes written before it */
  offset: number;
  message: string;
}

/**
 * The free space a decompressed copy leaves on its disk (TAPSCOPE_KEEP_FREE, bytes; default 1 GiB). why: a gzip file
 * can expand a thousandfold, and a copy that filled the disk (or a RAM-backed /tmp) would take the sessions being saved
 * and everything else on it down with it.
 */
export function keepFree(): number {
  const v = Number(process.env.TAPSCOPE_KEEP_FREE);
  return Number.isFinite(v) && v >= 0 && process.env.TAPSCOPE_KEEP_FREE !== '' ? v : 1 << 30;
}

/** how much is written between looks at the disk's free space (the copy may go this far past the reserve) */
const CHECK_EVERY = 16 << 20;

function diskFull(name: string, out: string, written: number, free: number | null): TapscopeError {
  const gib = (n: number): string => `${(n / (1 << 30)).toFixed(1)} GiB`;
  return new TapscopeError('E_DISK_FULL',
    `decompressing ${name} stopped after ${written} bytes: ${free === null ? 'the disk is full' : `only ${gib(free)} would be left free`} on the disk of ${dirname(out)}, which keeps ${gib(keepFree())} free (TAPSCOPE_KEEP_FREE); a gzip file can expand a thousandfold. Free some space, or decompress it where there is room (gzip -dc ${name} > FILE.pcapng) and open that`,
    { written });
}

/**
 * Decompresses the gzip file `path` (one or more members, as `cat a.gz b.gz` makes) into `out`; messages call it
 * `name`. A stream cut short or damaged keeps what came before it: the capture is read up to there, as a capture
 * killed mid-write is, and the problem is returned to be reported. Files of other compressors are refused, naming
 * their tool.
 */
export async function gunzipCapture(path: string, out: string, name = path): Promise<DecompressProblem | null> {
  if (!isGzip(path, name)) throw new TapscopeError('E_PCAPNG_MALFORMED', `${name} is not gzip-compressed`);
  let written = 0;
  let checkAt = 0;
  const reserve = keepFree();
  // (the stop, kept: the pipeline rejects with its own AbortError when its last stage throws)
  let full: TapscopeError | null = null;
  const fd = openSync(out, 'w', 0o600);
  try {
    // (each piece written as it comes: on an error, every byte decompressed before it is in the copy)
    await pipeline(createReadStream(path), createGunzip(), async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) {
        if (written >= checkAt) {
          const s = statfsSync(dirname(out));
          const free = s.bavail * s.bsize;
          if (free - piece.length < reserve) throw (full = diskFull(name, out, written, free));
          checkAt = written + CHECK_EVERY;
        }
        for (let o = 0; o < piece.length;) o += writeSync(fd, piece, o, piece.length - o);
        written += piece.length;
      }
    });
    return null;
  } catch (e) {
    if (full) throw full;
    const z = e as NodeJS.ErrnoException;
    if (z.code === 'ENOSPC') throw diskFull(name, out, written, null);
    if (z.code === 'Z_BUF_ERROR') {
      return { kind: 'truncated', offset: written, message: `the gzip stream of ${name} ends early (the file was cut short); the ${written} bytes decompressed before its end were read` };
    }
    if (z.code === 'Z_DATA_ERROR') {
      return { kind: 'damaged', offset: written, message: `gzip data error after ${written} decompressed bytes (${z.message})` };
    }
    throw e;
  } finally {
    closeSync(fd);
  }
}
