// Which process is capturing into what. A capture into a file the user named (`capture --out FILE`) holds a lock file
// next to it, FILE.tapscope-lock, for as long as it writes FILE (and the FILE.<node>.pcapng files beside it): a second
// capture into the same file is refused, where both used to write it and leave a file that begins mid-stream. A live
// session records the same process reference in its session.json, so that a session whose capture was killed can be
// told from one that another process is still running. A lock whose process is gone (killed) is taken over.
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { TapscopeError } from '../errors.js';

export interface ProcessRef {
  pid: number;
  host: string;
  /** when the process started (see processStart), to tell a reused pid from it; null where that cannot be known */
  start: string | null;
}

interface LockRecord extends ProcessRef {
  /** the session writing the file */
  session: string;
}

/**
 * How long a lock file that does not hold a lock record yet (its writer is between creating and writing it) counts as
 * held; after that it is debris and is taken over.
 */
const UNWRITTEN_LOCK_MS = 10_000;

export function lockPath(file: string): string {
  return `${file}.tapscope-lock`;
}

/** When a process started: clock ticks since boot, field 22 of /proc/PID/stat; null without /proc. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // why after the last ')': the command name (field 2) may hold spaces and parentheses; field 3 follows it
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export function thisProcess(): ProcessRef {
  return { pid: process.pid, host: hostname(), start: processStart(process.pid) };
}

/** Whether `p` is this process. */
export function isThisProcess(p: ProcessRef): boolean {
  return p.pid === process.pid && p.host === hostname();
}

/** Whether the process is still running. One on another host (a shared folder) cannot be looked at: taken as running. */
export function isRunning(p: ProcessRef): boolean {
  if (p.host !== hostname()) return true;
  try {
    process.kill(p.pid, 0);
  } catch (e) {
    // (EPERM: it runs, as another user)
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = processStart(p.pid);
  return p.start === null || start === null || start === p.start;
}

function isProcessRef(v: unknown): v is ProcessRef {
  const o = v as Partial<ProcessRef> | null;
  return typeof o === 'object' && o !== null && Number.isInteger(o.pid) && typeof o.host === 'string' && (o.start === null || typeof o.start === 'string');
}

/** The lock's record; 'unwritten' for a lock file without one (being written, or debris); null when there is no lock. */
function readLock(path: string): LockRecord | 'unwritten' | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return 'unwritten';
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (isProcessRef(v) && typeof (v as LockRecord).session === 'string') return v as LockRecord;
  } catch {
    // (below)
  }
  return 'unwritten';
}

function held(path: string, lock: LockRecord | 'unwritten'): boolean {
  if (lock !== 'unwritten') return isRunning(lock);
  try {
    return Date.now() - statSync(path).mtimeMs < UNWRITTEN_LOCK_MS;
  } catch {
    return false;
  }
}

/**
 * Takes the lock on `file` for `session`: E_CAPTURE_OUT when another capture holds it; a lock left by a capture that was
 * killed is taken over. The file system's own errors (a folder that cannot be written in) are thrown as they are.
 */
export function acquireCaptureLock(file: string, session: string): void {
  const path = lockPath(file);
  const record = `${JSON.stringify({ ...thisProcess(), session })}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const lock = readLock(path);
      if (lock === null) continue;
      if (held(path, lock)) {
        const by = lock === 'unwritten' ? 'another capture' : `another capture (session ${lock.session}, process ${lock.pid}${lock.host !== hostname() ? ` on ${lock.host}` : ''})`;
        throw new TapscopeError('E_CAPTURE_OUT', `${file} is being written by ${by}; capture into another file, or stop that capture first (its lock is ${path})`);
      }
      // (its capture was killed: the lock is taken over)
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, record);
    } finally {
      closeSync(fd);
    }
    return;
  }
  throw new TapscopeError('E_CAPTURE_OUT', `${file} is being written by another capture (its lock ${path} keeps coming back); capture into another file`);
}

/** Gives up the lock on `file` if `session` of this process holds it, or if a killed capture left it. */
export function releaseCaptureLock(file: string, session: string): void {
  const path = lockPath(file);
  const lock = readLock(path);
  if (lock === null) return;
  const mine = lock !== 'unwritten' && lock.session === session && isThisProcess(lock);
  if (!mine && held(path, lock)) return;
  try {
    rmSync(path, { force: true });
  } catch {
    // (a folder that went read-only: the lock stays, and is taken over as a killed capture's would be)
  }
}
