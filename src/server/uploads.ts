// Files dropped into the browser in web mode, stored where the core can open them: uploads/<size>-<sha256>/<name>, a
// folder per content holding the file under its own name. The same file dropped again (same name, size and content)
// is the same path, so the core opens the session it already has for it (openFile finds a session by its file), and
// that session is named as the file is. A session opened from an upload owns it: deleting the session deletes it,
// and uploads no session names are removed when the app starts (SessionStore.delete, removeOrphanUploads): a key log
// chosen for a session comes this way too, and is copied into the session, so its upload is one of those.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TapscopeError } from '../errors.js';
import { isFile } from '../util/paths.js';

/** The longest file name Linux file systems take (NAME_MAX), in bytes. */
const NAME_MAX = 255;

/** An upload past the size web mode takes (the server answers 413); nothing of it is kept. */
export class UploadTooLarge extends TapscopeError {
  constructor(maxBytes: number) {
    super('E_USAGE', `the file is larger than web mode takes (${maxBytes} bytes); open it by its path instead`, { maxBytes });
  }
}

/**
 * The name a dropped file is stored under: its own, without a folder or control characters, and cut to NAME_MAX bytes
 * before its extension (".pcapng", ".pcapng.gz") when longer (why: a longer one cannot be made, ENAMETOOLONG). A name
 * that is none ('', '.', '..') is upload.pcapng.
 */
function uploadName(raw: string | null): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is taken out
  const name = basename(raw ?? '').replace(/[\x00-\x1f\x7f-\x9f]/g, '_');
  if (name === '' || name === '.' || name === '..') return 'upload.pcapng';
  if (Buffer.byteLength(name) <= NAME_MAX) return name;
  const ext = /(?:\.[A-Za-z0-9]{1,10}){1,2}$/.exec(name)?.[0] ?? '';
  let stem = '';
  let room = NAME_MAX - ext.length;
  // (whole characters only: a character's UTF-8 bytes are never split)
  for (const ch of name.slice(0, name.length - ext.length)) {
    room -= Buffer.byteLength(ch);
    if (room < 0) break;
    stem += ch;
  }
  return stem + ext;
}

/**
 * Stores the bytes of `body` in `dir` as the file named `name` (the browser's name of the dropped file), hashing them
 * as they are written, and returns its path. A file of that name and content already there is kept as it is
 * (a session may be reading it). Past `maxBytes` it stops reading, keeps nothing and throws UploadTooLarge.
 */
export async function storeUpload(body: AsyncIterable<Buffer>, dir: string, name: string | null, maxBytes = Infinity): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // (a dot name in the uploads folder: no upload's folder is one; a server killed while it comes leaves it for the sweep)
  const part = join(dir, `.${randomBytes(8).toString('hex')}.part`);
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(part, { mode: 0o600 });
  try {
    await pipeline(body, async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        size += chunk.length;
        if (size > maxBytes) throw new UploadTooLarge(maxBytes);
        yield chunk;
      }
    }, out);
    const folder = join(dir, `${size}-${hash.digest('hex')}`);
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const path = join(folder, uploadName(name));
    if (isFile(path)) rmSync(part);
    else renameSync(part, path);
    return path;
  } catch (e) {
    // why wait for its close: a stream destroyed before its file was open still opens (creates) it, after the failure;
    // removed before that, the part file came back (seen as a flaky 413 test that found one left)
    if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
    rmSync(part, { force: true });
    throw e;
  }
}
