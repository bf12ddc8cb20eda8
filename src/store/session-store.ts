// Sessions on disk. Each session is a folder under the sessions root ($TAPSCOPE_HOME/sessions, else
// $XDG_DATA_HOME/tapscope/sessions, else ~/.local/share/tapscope/sessions) holding:
//   session.json    what the session is (id, name, target, times, nodes, notes, mode, capture file)
//   capture.pcapng  the capture: the helper's pcapng bytes as they arrived (the capture file may instead be a
//                   path the user chose, e.g. `tapscope capture --out`)
//   index.json      counters summarised from the capture; rebuilt from the pcapng when missing or stale
//   pods.json       (Kubernetes) address -> pod seen during the capture, for flow.pod when reopened
// Multi-node captures: every node streams into its own file while live (CAPTURE.<node>.pcapng next to the
// capture file; the first node writes the capture file itself). When the capture ends the other nodes' files
// are appended to the capture file — one pcapng section per node stream — and removed. A `{"t":"node"}` custom
// block after each SHB names the node of its section. A capture that was killed leaves the per-node files;
// reading them ignores a partial last block (with a note).
// The folder's name is the session's id, and session.json names the files in its folder by their names: a copied or
// renamed folder is a session of its own. A capture into a file the user named locks that file (capture-lock.ts) and
// leaves it as it was until the capture's first bytes come (SessionRecord.pendingFile).
// A file session opened from a file in the uploads folder (web mode's dropped files, src/server/uploads.ts) owns it:
// it is deleted with the session, unless another session names it too.
import {
  accessSync, appendFileSync, closeSync, constants, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync,
  rmdirSync, statSync, writeFileSync, writeSync, createReadStream, createWriteStream,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { TapscopeError, isTapscopeError, noRoomReason } from '../errors.js';
import { isFile, sessionsRoot, uploadsDir } from '../util/paths.js';
import { NodeFileWriter } from './node-writer.js';
import { acquireCaptureLock, isRunning, isThisProcess, releaseCaptureLock, thisProcess, type ProcessRef } from './capture-lock.js';
import type { CaptureFile } from '../flows/load.js';
import type { PodRef } from '../model/flow.js';

export interface SessionRecord {
  version: 1;
  /** the session's folder name (what session.json says is not used: a copied folder is a session of its own) */
  id: string;
  name: string;
  target: string;
  createdAt: number;
  endedAt: number | null;
  nodes: string[];
  notes: string[];
  /** the notes, among notes, on what a live capture lost (a node's stream cut or failed); absent in older sessions */
  losses?: string[];
  mode: string | null;
  modeReason: string | null;
  requestedMode: string | null;
  /** the capture filter asked for (tcpdump syntax); absent in older sessions and without one */
  captureFilter?: string | null;
  /**
   * Absolute path of the capture file (the first node's file while live). session.json keeps a file in the session's
   * folder by its name, so that a copied or moved folder reads its own.
   */
  file: string;
  /** Node name -> file, for nodes whose stream is (still) in its own file. */
  nodeFiles: Record<string, string>;
  /** a compressed capture file opened: `file` is its decompressed copy, in the session's folder */
  openedFrom?: string;
  /**
   * `file` is a file the user named that no byte was written to yet: it is theirs, as it was, and not this session's
   * capture. why: a capture that fails to start (or is killed before its first bytes) must not cost them that file.
   */
  pendingFile?: true;
  /** the process running the capture (while it runs): a session without an end whose process is gone was killed */
  writer?: ProcessRef;
}

export interface SessionIndex {
  /** the capture files' total size and latest modification when the index was built: it is stale when they differ */
  fileSize: number;
  fileMtimeMs: number;
  packets: number;
  bytes: number;
  flows: number;
  drops: number;
  mode: string | null;
  modeReason: string | null;
  /** as the capture records in the file say (absent in older indexes) */
  captureFilter?: string | null;
  filtered?: number;
  nodes: string[];
  notes: string[];
  builtAt: number;
}

/** A session folder as listed: its record, or why it cannot be read (and when its session.json was last written). */
export type ScannedSession = { id: string; rec: SessionRecord; error: null } | { id: string; rec: null; error: TapscopeError; createdAt: number };

const SESSION_JSON = 'session.json';
const INDEX_JSON = 'index.json';
const PODS_JSON = 'pods.json';
const CAPTURE_PCAPNG = 'capture.pcapng';

// why a schema: session.json is a file a person or a tool can change, and a record of the wrong shape used to crash
// every command that lists sessions (E_INTERNAL for `[]`, `null`, a missing `file`, `"nodeFiles": null`)
const names = z.array(z.string());
const recordSchema = z.object({
  name: z.string(),
  target: z.string(),
  createdAt: z.number(),
  endedAt: z.number().nullable(),
  nodes: names,
  notes: names,
  losses: names.optional(),
  mode: z.string().nullable(),
  modeReason: z.string().nullable(),
  requestedMode: z.string().nullable().default(null),
  captureFilter: z.string().nullable().optional(),
  file: z.string().min(1),
  nodeFiles: z.record(z.string(), z.string().min(1)),
  openedFrom: z.string().optional(),
  pendingFile: z.literal(true).optional(),
  writer: z.object({ pid: z.number().int(), host: z.string(), start: z.string().nullable() }).optional(),
});

const count = z.number().nonnegative();
const indexSchema = z.object({
  fileSize: count,
  fileMtimeMs: z.number(),
  packets: count,
  bytes: count,
  flows: count,
  drops: count,
  mode: z.string().nullable(),
  modeReason: z.string().nullable(),
  captureFilter: z.string().nullable().optional(),
  filtered: count.optional(),
  nodes: names,
  notes: names,
  builtAt: z.number(),
});

const podsSchema = z.record(z.string(), z.object({
  namespace: z.string(), name: z.string(), workload: z.string().nullable().optional(), node: z.string().nullable().optional(),
}));

/**
 * Uploads no session names are removed only when older than this. why: an upload the browser is still sending, or one
 * sent whose session is not made yet, is named by none, and another Tapscope (the app and `tapscope serve`) may be
 * taking it while this one starts.
 */
const ORPHAN_UPLOAD_AGE_MS = 60 * 60 * 1000;

/** The longest session name, in UTF-16 units (as JavaScript counts length): the API's schemas (api/schemas.ts) allow as many. */
const MAX_SESSION_NAME = 256;

/** A session id: a folder name of the sessions root, never `.`, `..` or a hidden name. */
const SESSION_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

function safeName(node: string): string {
  return node.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80) || 'node';
}

function writeJsonAtomic(path: string, value: unknown): void {
  const text = `${JSON.stringify(value, null, 1)}\n`;
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (noRoomReason((e as NodeJS.ErrnoException).code) === null || !rewriteInPlace(path, text)) throw e;
  }
}

/**
 * Writes `text` over the file at `path` within the room it already has on its disk; false, the file left as it was, when
 * it needs more (or is not there). why: a full disk has no room for the new copy writeJsonAtomic renames over the file,
 * but a session's record fits in the blocks its last version holds, and a capture stopped by a full disk must still save
 * why it stopped. (Not atomic: a crash in the middle of it leaves a broken record, which is listed as one.)
 */
function rewriteInPlace(path: string, text: string): boolean {
  let fd: number;
  let old: Buffer;
  try {
    old = readFileSync(path);
    fd = openSync(path, 'r+');
  } catch {
    return false;
  }
  const put = (b: Buffer): void => {
    for (let n = 0; n < b.length;) n += writeSync(fd, b, n, b.length - n, n);
    ftruncateSync(fd, b.length);
  };
  try {
    put(Buffer.from(text));
    return true;
  } catch {
    try {
      // (the old bytes fit where they were)
      put(old);
    } catch {
      // (left as the failed write left it: listed as a broken record, saying where its capture is)
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** The first problem zod found, as a person reads it: where in the record, and what. */
function firstIssue(e: z.ZodError): string {
  const i = e.issues[0];
  if (!i) return 'not a session record';
  return `${i.path.length > 0 ? i.path.join('.') : 'the record'}: ${i.message}`;
}

/** What the file system's error means, as a person reads it (else its own message). */
function fsWhy(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied'
    : err.code === 'EROFS' ? 'the file system is read-only'
      : err.code === 'ENOTDIR' ? 'a part of its path is not a folder'
        : err.code === 'EISDIR' ? 'it is a directory'
          : noRoomReason(err.code) ?? err.message;
}

/** Why a capture cannot be written into `file` (the file system's error), as E_CAPTURE_OUT. */
function cannotCapture(file: string, e: unknown): TapscopeError {
  return new TapscopeError('E_CAPTURE_OUT', `cannot capture into ${file}: ${fsWhy(e)}`, { path: file }, { cause: e });
}

/** Why no session can be made in the sessions folder `root` (the file system's error): E_DISK_FULL for want of room, else E_CAPTURE_OUT. */
function cannotKeepSessions(root: string, e: unknown): TapscopeError {
  if (isTapscopeError(e)) return e;
  const full = noRoomReason((e as NodeJS.ErrnoException).code) !== null;
  return new TapscopeError(full ? 'E_DISK_FULL' : 'E_CAPTURE_OUT', `cannot keep sessions in ${root}: ${fsWhy(e)} (TAPSCOPE_HOME chooses another folder for them)`, { path: root }, { cause: e });
}

/**
 * Makes `dir` and the folders above it that are missing. why the nearest folder there is looked at when that fails: a
 * recursive mkdir says only ENOENT when a folder cannot be made, e.g. on a read-only file system.
 */
function makeFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    let up = dirname(dir);
    while (!existsSync(up) && dirname(up) !== up) up = dirname(up);
    accessSync(up, constants.W_OK);
    throw e;
  }
}

/**
 * Checks, before anything starts, that a capture can write `file` (a file the user named): not a directory, in a folder
 * that exists (made if need be) and can be written in, and writable itself if it is there. It is not opened: it stays as
 * it is until the capture's first bytes (see pendingFile).
 */
function checkCaptureOut(file: string): void {
  let exists = false;
  try {
    const st = statSync(file);
    if (st.isDirectory()) {
      throw new TapscopeError('E_CAPTURE_OUT', `cannot capture into ${file}: it is a directory; name a file in it, e.g. ${join(file, CAPTURE_PCAPNG)}`, { path: file });
    }
    exists = true;
  } catch (e) {
    if (isTapscopeError(e)) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw cannotCapture(file, e);
  }
  try {
    makeFolder(dirname(file));
    accessSync(dirname(file), constants.W_OK);
    if (exists) accessSync(file, constants.W_OK);
  } catch (e) {
    throw cannotCapture(file, e);
  }
}

/**
 * A path in one form however it was reached: through its links while it is there, else as resolved. why: an upload
 * is a session's when the session names it, and a data folder reached through a symlink names it in another text.
 */
function canonical(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return resolve(path);
  }
}

/** Whether `file` is below `dir` (both absolute). */
function isBelow(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The process `p`, as a message names it (its host when that is another). */
export function capturer(p: ProcessRef): string {
  return `process ${p.pid}${p.host !== hostname() ? ` on ${p.host}` : ''}`;
}

export class SessionStore {
  /** the sessions folder, absolute */
  readonly root: string;
  /** web mode's dropped files, absolute (by default beside the sessions root: uploadsDir) */
  readonly uploads: string;

  constructor(root: string = sessionsRoot(), uploads: string = uploadsDir(root)) {
    // why resolved here, once: sessions record absolute paths, which the uploads sweep compares with this folder's
    this.root = resolve(root);
    this.uploads = resolve(uploads);
  }

  private dir(id: string): string {
    if (!SESSION_ID.test(id)) throw new TapscopeError('E_SESSION_NOT_FOUND', `no session '${id}' (a session id is a folder name of letters, digits, '.', '_' and '-', not starting with '.')`);
    return join(this.root, id);
  }

  /**
   * A new session. A capture into a file the user named (`file`, not `existing`): the file is checked (E_CAPTURE_OUT)
   * and locked against other captures, but left as it is until the first bytes (pendingFile).
   */
  create(init: { name?: string; target: string; requestedMode?: string | null; captureFilter?: string | null; file?: string; existing?: boolean; openedFrom?: string }): SessionRecord {
    const now = new Date();
    const named = init.file && !init.existing ? resolve(init.file) : null;
    if (named) checkCaptureOut(named);
    try {
      makeFolder(this.root);
    } catch (e) {
      throw cannotKeepSessions(this.root, e);
    }
    const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    let id = '';
    for (;;) {
      id = `${stamp}-${randomBytes(3).toString('hex')}`;
      try {
        mkdirSync(join(this.root, id));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotKeepSessions(this.root, e);
      }
    }
    const dir = join(this.root, id);
    try {
      if (named) {
        try {
          acquireCaptureLock(named, id);
        } catch (e) {
          throw isTapscopeError(e) ? e : cannotCapture(named, e);
        }
      }
      const live = !init.existing && !init.openedFrom;
      const rec: SessionRecord = {
        version: 1, id, name: init.name ?? `${init.target} ${now.toISOString().slice(0, 16).replace('T', ' ')}`, target: init.target,
        createdAt: now.getTime(), endedAt: null, nodes: [], notes: [], mode: null, modeReason: null, requestedMode: init.requestedMode ?? null,
        ...(init.captureFilter ? { captureFilter: init.captureFilter } : {}), file: init.file ? resolve(init.file) : join(dir, CAPTURE_PCAPNG), nodeFiles: {},
        ...(init.openedFrom ? { openedFrom: init.openedFrom } : {}), ...(named ? { pendingFile: true as const } : {}), ...(live ? { writer: thisProcess() } : {}),
      };
      try {
        this.save(rec);
      } catch (e) {
        throw cannotKeepSessions(this.root, e);
      }
      return rec;
    } catch (e) {
      if (named) releaseCaptureLock(named, id);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  exists(id: string): boolean {
    try {
      return existsSync(join(this.dir(id), SESSION_JSON));
    } catch {
      return false;
    }
  }

  /** The session in folder `id`: E_SESSION_NOT_FOUND when there is none, E_SESSION_BROKEN when its session.json is not a record. */
  get(id: string): SessionRecord {
    const dir = this.dir(id);
    const p = join(dir, SESSION_JSON);
    if (!existsSync(p)) throw new TapscopeError('E_SESSION_NOT_FOUND', `no session '${id}'; \`tapscope sessions\` lists them`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(p, 'utf8'));
    } catch (e) {
      throw this.broken(id, null, `cannot be read (${(e as Error).message})`);
    }
    const r = recordSchema.safeParse(raw);
    const stored = raw as { id?: unknown; file?: unknown } | null;
    const storedId = typeof stored?.id === 'string' ? stored.id : null;
    if (!r.success) throw this.broken(id, typeof stored?.file === 'string' ? this.inFolder(dir, stored.file, storedId) : null, `is not a session record (${firstIssue(r.error)})`);
    const at = (f: string): string => this.inFolder(dir, f, storedId);
    const { losses, captureFilter, openedFrom, pendingFile, writer, ...v } = r.data;
    return {
      version: 1, ...v, id, file: at(v.file), nodeFiles: Object.fromEntries(Object.entries(v.nodeFiles).map(([node, f]) => [node, at(f)])),
      ...(losses ? { losses } : {}), ...(captureFilter !== undefined ? { captureFilter } : {}), ...(openedFrom ? { openedFrom } : {}),
      ...(pendingFile ? { pendingFile } : {}), ...(writer ? { writer } : {}),
    };
  }

  /**
   * A file a record names, as an absolute path: one in the session's folder is kept by its name. A record written before
   * that names its folder's files by the folder it was made in (its stored id): those are this folder's files, so that
   * a copy of a session folder reads, and never writes or deletes, the original's.
   */
  private inFolder(dir: string, f: string, storedId: string | null): string {
    if (!isAbsolute(f)) return join(dir, f);
    if (storedId !== null && basename(dirname(f)) === storedId && basename(dirname(dirname(f))) === basename(this.root)) return join(dir, basename(f));
    return f;
  }

  /** The error for a session folder whose session.json is no record, saying where its capture is (never to delete it). */
  private broken(id: string, named: string | null, why: string): TapscopeError {
    const dir = join(this.root, id);
    const p = join(dir, SESSION_JSON);
    const own = join(dir, CAPTURE_PCAPNG);
    const capture = [own, named].find((f): f is string => f !== null && isFile(f));
    const advice = capture
      ? `its capture is not affected: \`tapscope flows ${capture}\` reads it (fix session.json, or keep the capture file before removing the folder)`
      : `the folder ${dir} holds no capture file of its own`;
    return new TapscopeError('E_SESSION_BROKEN', `session '${id}': ${p} ${why}; ${advice}`, { path: p, ...(capture ? { capture } : {}) });
  }

  save(rec: SessionRecord): void {
    const dir = this.dir(rec.id);
    const rel = (f: string): string => (dirname(f) === dir ? basename(f) : f);
    writeJsonAtomic(join(dir, SESSION_JSON), {
      ...rec, file: rel(rec.file), nodeFiles: Object.fromEntries(Object.entries(rec.nodeFiles).map(([node, f]) => [node, rel(f)])),
    });
  }

  update(id: string, change: (rec: SessionRecord) => void): SessionRecord {
    const rec = this.get(id);
    change(rec);
    this.save(rec);
    return rec;
  }

  /** Every session folder, with its record or why it cannot be read (a folder without session.json is not a session). */
  scan(): ScannedSession[] {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return [];
    }
    const out: ScannedSession[] = [];
    for (const id of names) {
      if (!SESSION_ID.test(id) || !existsSync(join(this.root, id, SESSION_JSON))) continue;
      try {
        out.push({ id, rec: this.get(id), error: null });
      } catch (e) {
        let createdAt = 0;
        try {
          createdAt = statSync(join(this.root, id, SESSION_JSON)).mtimeMs;
        } catch {
          // (gone meanwhile: listed first among the oldest)
        }
        out.push({ id, rec: null, error: isTapscopeError(e) ? e : new TapscopeError('E_SESSION_BROKEN', `session '${id}': ${(e as Error).message}`), createdAt });
      }
    }
    return out;
  }

  list(): SessionRecord[] {
    // why skip the broken: one broken session folder must not hide the others (listSessions reports them)
    return this.scan().flatMap((s) => (s.rec ? [s.rec] : [])).sort((a, b) => b.createdAt - a.createdAt);
  }

  rename(id: string, name: string): SessionRecord {
    const trimmed = name.trim();
    if (!trimmed) throw new TapscopeError('E_USAGE', 'a session name cannot be empty');
    // why refused, not cut: a cut could split a character (an emoji is two UTF-16 units), and the name is the user's
    if (trimmed.length > MAX_SESSION_NAME) throw new TapscopeError('E_USAGE', `a session name is at most ${MAX_SESSION_NAME} characters (an emoji counts as two); this one has ${trimmed.length}`);
    return this.update(id, (r) => { r.name = trimmed; });
  }

  /**
   * Deletes the session: its folder, and its node files beside a capture file it does not own. Refused (E_USAGE) while
   * another process captures into it: that capture would go on writing into a session that is gone, and fail at its end.
   */
  delete(id: string): void {
    const rec = this.get(id);
    const dir = this.dir(id);
    const by = this.capturedElsewhere(rec);
    if (by) throw new TapscopeError('E_USAGE', `session '${id}' cannot be deleted while ${capturer(by)} captures into it; stop that capture first (Ctrl-C where it runs), then delete the session`);
    // why only the node files named after the capture file: a capture file the user named (outside the session folder)
    // is theirs, and so is anything else a record could name there; only our folder and the node files beside it go.
    const stem = `${basename(rec.file, '.pcapng')}.`;
    for (const f of Object.values(rec.nodeFiles)) {
      if (f !== rec.file && dirname(f) === dirname(rec.file) && dirname(f) !== dir && basename(f).startsWith(stem) && f.endsWith('.pcapng')) rmSync(f, { force: true });
    }
    if (dirname(rec.file) !== dir) releaseCaptureLock(rec.file, id);
    rmSync(dir, { recursive: true, force: true });
    // (a file opened from the uploads folder was copied there for the app: it goes with the last session naming it)
    if (rec.target !== 'file') return;
    const owned = [rec.file, rec.openedFrom].filter((f): f is string => f !== undefined && this.isUpload(f));
    if (owned.length === 0) return;
    const named = this.uploadsNamed();
    for (const f of owned) if (!named(f)) this.removeUpload(f);
  }

  /** Whether `file` is in the uploads folder (by its path, or through links). */
  private isUpload(file: string): boolean {
    return isBelow(this.uploads, resolve(file)) || isBelow(canonical(this.uploads), canonical(file));
  }

  /**
   * Whether a session names an upload: as its file or the file it was opened from, or, for a session whose session.json
   * cannot be read, anywhere in its text (it may be its capture: kept until the record is fixed or removed).
   */
  private uploadsNamed(): (file: string) => boolean {
    // (compared in one form, canonical: the same file named through a link or by its real path is the same)
    const files = new Set<string>();
    const unread: string[] = [];
    for (const s of this.scan()) {
      if (s.rec) {
        files.add(canonical(s.rec.file));
        if (s.rec.openedFrom) files.add(canonical(s.rec.openedFrom));
        continue;
      }
      try {
        unread.push(readFileSync(join(this.root, s.id, SESSION_JSON), 'utf8'));
      } catch {
        // (gone meanwhile)
      }
    }
    return (file) => {
      const real = canonical(file);
      return files.has(real) || unread.some((text) => [resolve(file), real].some((f) => text.includes(JSON.stringify(f).slice(1, -1))));
    };
  }

  /**
   * Removes an upload, and its content's folder when that is left empty (see src/server/uploads.ts). false: it could
   * not be (the next start's sweep tries again; a deleted session stays deleted).
   */
  private removeUpload(file: string): boolean {
    const folder = canonical(dirname(file));
    try {
      rmSync(file, { force: true });
    } catch {
      return false;
    }
    if (folder !== canonical(this.uploads)) {
      try {
        rmdirSync(dirname(file));
      } catch {
        // (another name of the same content is still there)
      }
    }
    return true;
  }

  /**
   * Removes the uploads no session names, once an hour old: the copies earlier versions left when their sessions were
   * deleted (named `<ms>-<name>`, directly in the folder), and uploads that made no session (a key log, copied into its
   * session; a server stopped while one came). Never throws: it runs as the app starts. Returns the files removed.
   */
  removeOrphanUploads(now: number = Date.now()): string[] {
    let entries;
    try {
      entries = readdirSync(this.uploads, { withFileTypes: true });
    } catch {
      return [];
    }
    // (every session's record read and its files' real paths found only once an old upload is there to judge: most starts
    // find none)
    let named: ((file: string) => boolean) | null = null;
    const removed: string[] = [];
    const sweep = (file: string): void => {
      let st;
      try {
        st = statSync(file);
      } catch {
        return;
      }
      if (!st.isFile() || now - st.mtimeMs < ORPHAN_UPLOAD_AGE_MS || (named ??= this.uploadsNamed())(file)) return;
      if (this.removeUpload(file)) removed.push(file);
    };
    for (const e of entries) {
      const path = join(this.uploads, e.name);
      if (!e.isDirectory()) {
        sweep(path);
        continue;
      }
      let inside: string[] = [];
      try {
        inside = readdirSync(path);
      } catch {
        // (not ours to read: left alone)
      }
      for (const name of inside) sweep(join(path, name));
    }
    return removed;
  }

  /**
   * Opens the file a node's stream is written to, registering the node. A file the user named that is still theirs
   * (pendingFile) is opened, and so replaced, at the stream's first bytes, which make it the session's.
   */
  nodeWriter(id: string, node: string): NodeFileWriter {
    const rec = this.get(id);
    let path = rec.nodeFiles[node];
    const fresh = !path;
    if (!path) {
      const first = Object.keys(rec.nodeFiles).length === 0 && rec.nodes.length === 0;
      path = first ? rec.file : join(dirname(rec.file), `${basename(rec.file, '.pcapng')}.${safeName(node)}.pcapng`);
      rec.nodeFiles[node] = path;
      if (!rec.nodes.includes(node)) rec.nodes.push(node);
      this.save(rec);
    }
    if (rec.pendingFile && path === rec.file) return new NodeFileWriter(path, node, { onFirstBytes: () => { this.claim(id); } });
    // (a node file beside a file the user named may be one a killed capture into that file left: it is replaced, as
    // the file it goes with is, never appended to)
    return new NodeFileWriter(path, node, { replace: fresh });
  }

  /** The file the user named has the capture's first bytes: it is the session's capture from now on. */
  private claim(id: string): void {
    this.update(id, (r) => { delete r.pendingFile; });
  }

  /** Where the session keeps the TLS key log lines added to it (see CoreService.addKeyLog): read at each load. */
  keyLogPath(id: string): string {
    return join(this.dir(id), 'keys.log');
  }

  /** The files to read for a session, with their node names (a file the user named that is still theirs is not one). */
  captureFiles(rec: SessionRecord): CaptureFile[] {
    const files: CaptureFile[] = [];
    const seen = new Set<string>();
    for (const [node, path] of Object.entries(rec.nodeFiles)) {
      seen.add(path);
      if (path === rec.file && rec.pendingFile) continue;
      if (isFile(path)) files.push({ path, node });
    }
    if (!seen.has(rec.file) && !rec.pendingFile && isFile(rec.file)) files.unshift({ path: rec.file });
    return files;
  }

  /** Whether a process is capturing into the session now (it has no end, and the process that started it runs). */
  capturing(rec: SessionRecord): boolean {
    return rec.endedAt === null && rec.writer !== undefined && isRunning(rec.writer);
  }

  /** The other process capturing into the session now (a CLI capture, seen from the app), else null. */
  capturedElsewhere(rec: SessionRecord): ProcessRef | null {
    return this.capturing(rec) && rec.writer && !isThisProcess(rec.writer) ? rec.writer : null;
  }

  /**
   * Appends the other nodes' files to the capture file (one section per stream) and removes them; returns where each
   * one's bytes now begin in the capture file. When the capture file is one the user named that never got a byte, it is
   * replaced only if another node's file has bytes; else it is left as it was and the empty node files go.
   */
  async mergeNodeFiles(id: string): Promise<Map<string, number>> {
    const rec = this.get(id);
    const at = new Map<string, number>();
    const others = Object.entries(rec.nodeFiles).filter(([, path]) => path !== rec.file);
    if (others.length === 0) return at;
    const sizeOf = (path: string): number => {
      try {
        return statSync(path).size;
      } catch {
        return 0;
      }
    };
    if (rec.pendingFile) {
      if (others.every(([, path]) => sizeOf(path) === 0)) {
        for (const [, path] of others) rmSync(path, { force: true });
        rec.nodeFiles = {};
        this.save(rec);
        return at;
      }
      writeFileSync(rec.file, Buffer.alloc(0));
      delete rec.pendingFile;
    }
    for (const [, path] of others) {
      if (isFile(path)) {
        at.set(path, sizeOf(rec.file));
        await pipeline(createReadStream(path), createWriteStream(rec.file, { flags: 'a' }));
        rmSync(path, { force: true });
      }
    }
    rec.nodeFiles = {};
    this.save(rec);
    return at;
  }

  /**
   * Ends a capture: merges the other nodes' files into the capture file (see mergeNodeFiles), records the end time and
   * notes, and gives up the lock on a file the user named. Safe to call on a session whose capture was killed. On a disk
   * without room for the record (E_DISK_FULL), the end is saved without the notes if that fits (saying so), else the
   * error says the record could not be saved; the lock is given up either way.
   */
  async finish(id: string, extra: { notes?: string[]; losses?: string[]; endedAt?: number; mode?: string | null; modeReason?: string | null } = {}): Promise<SessionRecord> {
    let file: string | null = null;
    try {
      await this.mergeNodeFiles(id);
      const rec = this.get(id);
      file = rec.file;
      // (a capture that got no byte still has its file, an empty one; never over a file the user named that is still theirs)
      if (!rec.pendingFile && !existsSync(rec.file)) appendFileSync(rec.file, Buffer.alloc(0));
      rec.nodeFiles = {};
      rec.endedAt = extra.endedAt ?? rec.endedAt ?? Date.now();
      delete rec.writer;
      const kept = { notes: rec.notes, losses: rec.losses };
      for (const n of extra.notes ?? []) if (!rec.notes.includes(n)) rec.notes = [...rec.notes, n];
      if (extra.losses?.length) rec.losses = [...new Set([...(rec.losses ?? []), ...extra.losses])];
      if (extra.mode !== undefined) rec.mode = extra.mode;
      if (extra.modeReason !== undefined) rec.modeReason = extra.modeReason;
      try {
        this.save(rec);
      } catch (e) {
        const why = noRoomReason((e as NodeJS.ErrnoException).code);
        if (why === null) throw e;
        // (the end, and why its notes are missing, is what the disk may still hold: the session is then no killed one)
        const note = `the disk was full (${why}) when the capture ended: its notes could not be saved; the capture file holds every packet saved before then`;
        this.save({ ...rec, notes: [...kept.notes, note], ...(kept.losses || rec.losses ? { losses: [...(kept.losses ?? []), note] } : {}) });
      }
      return rec;
    } catch (e) {
      const why = noRoomReason((e as NodeJS.ErrnoException).code);
      if (why === null) throw e;
      throw new TapscopeError('E_DISK_FULL', `session '${id}' could not record its end: ${why}; its capture file${file ? ` ${file}` : ''} holds every packet saved before then, and the session will be listed as interrupted`, { errno: (e as NodeJS.ErrnoException).code }, { cause: e });
    } finally {
      if (file !== null && dirname(file) !== this.dir(id)) releaseCaptureLock(file, id);
    }
  }

  /** The session's index when it is current: of the right shape, built from capture files of the same size and time. */
  readIndex(rec: SessionRecord): SessionIndex | null {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(join(this.dir(rec.id), INDEX_JSON), 'utf8'));
    } catch {
      return null;
    }
    const r = indexSchema.safeParse(raw);
    if (!r.success) return null;
    const now = this.captureStat(rec);
    return r.data.fileSize === now.size && r.data.fileMtimeMs === now.mtimeMs ? r.data : null;
  }

  /** Saves the index if it can: it is a cache, and a session folder that cannot be written in (sudo's) still reads. */
  writeIndex(rec: SessionRecord, idx: Omit<SessionIndex, 'fileSize' | 'fileMtimeMs' | 'builtAt'>): SessionIndex {
    const now = this.captureStat(rec);
    const full: SessionIndex = { ...idx, fileSize: now.size, fileMtimeMs: now.mtimeMs, builtAt: Date.now() };
    try {
      writeJsonAtomic(join(this.dir(rec.id), INDEX_JSON), full);
    } catch {
      // why: read-only commands must not fail on a cache; it is built again next time
    }
    return full;
  }

  /** Pod names seen for addresses during a Kubernetes capture (the cluster may have changed since). */
  writePods(rec: SessionRecord, pods: Map<string, PodRef>): void {
    if (pods.size === 0) return;
    writeJsonAtomic(join(this.dir(rec.id), PODS_JSON), Object.fromEntries(pods));
  }

  readPods(rec: SessionRecord): Map<string, PodRef> | null {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(join(this.dir(rec.id), PODS_JSON), 'utf8'));
    } catch {
      return null;
    }
    const r = podsSchema.safeParse(raw);
    return r.success ? new Map(Object.entries(r.data)) : null;
  }

  /** The capture files' total size and latest modification time (what an index is checked against). */
  captureStat(rec: SessionRecord): { size: number; mtimeMs: number } {
    let size = 0;
    let mtimeMs = 0;
    for (const f of this.captureFiles(rec)) {
      try {
        const st = statSync(f.path);
        size += st.size;
        mtimeMs = Math.max(mtimeMs, st.mtimeMs);
      } catch {
        // why: a file removed under us counts as empty; the index is then rebuilt from what is left.
      }
    }
    return { size, mtimeMs };
  }
}
