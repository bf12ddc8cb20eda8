// Compressed capture files: `tcpdump -w - | gzip`, Wireshark's "Compress with gzip" (.pcapng.gz, .pcap.gz). Wireshark
// and tshark open a gzip-compressed capture as it is; tapscope reads one through a decompressed copy, since the
// export, Follow stream and the packet list read a capture again by its blocks' offsets. Other compressors' files
// are named, with the command that decompresses them.
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { TapscopeError } from '../errors.js';
import { COMPRESSORS, type Compression } from './compressors.js';
import { captureFileError } from './file-errors.js';
import { SpoolFile } from '../util/spool-file.js';

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

/**
 * The compressor of the file at `path` by its first bytes, or null. A file that cannot be read (permission denied, a
 * directory) is an error naming it as `name` (see captureFileError).
 */
export function fileCompression(path: string, name = path): Compression | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw captureFileError(e, path, name);
  }
  try {
    const head = Buffer.alloc(6);
    return compressionOf(head.subarray(0, readSync(fd, head, 0, head.length, 0)));
  } catch (e) {
    // (a directory opens for reading; its first read is what fails)
    throw captureFileError(e, path, name);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether the file at `path` (called `name` in messages) is gzip-compressed: true; not compressed: false; compressed
 * otherwise: an error naming the command that decompresses it.
 */
export function isGzip(path: string, name = path): boolean {
  const c = fileCompression(path, name);
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
 * Decompresses the gzip file `path` (one or more members, as `cat a.gz b.gz` makes) into `out`; messages call it
 * `name`. A stream cut short or damaged keeps what came before it: the capture is read up to there, as a capture
 * killed mid-write is, and the problem is returned to be reported. Files of other compressors are refused, naming
 * their tool.
 */
export async function gunzipCapture(path: string, out: string, name = path): Promise<DecompressProblem | null> {
  if (!isGzip(path, name)) throw new TapscopeError('E_PCAPNG_MALFORMED', `${name} is not gzip-compressed`);
  const copy = new SpoolFile(out, `decompressing ${name}`,
    `A gzip file can expand a thousandfold: free some space, or decompress it where there is room (gzip -dc ${name} > FILE.pcapng) and open that`);
  try {
    await pipeline(createReadStream(path), createGunzip(), async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) copy.write(piece);
    });
    return null;
  } catch (e) {
    if (copy.stopped) throw copy.stopped;
    const z = e as NodeJS.ErrnoException;
    const written = copy.written;
    if (z.code === 'Z_BUF_ERROR') {
      return { kind: 'truncated', offset: written, message: `the gzip stream of ${name} ends early (the file was cut short); the ${written} bytes decompressed before its end were read` };
    }
    if (z.code === 'Z_DATA_ERROR') {
      return { kind: 'damaged', offset: written, message: `gzip data error after ${written} decompressed bytes (${z.message})` };
    }
    throw e;
  } finally {
    copy.close();
  }
}
