// Helper deployment shared by the SSH and Kubernetes targets: where the helper binary is, its digest,
// the helper's command line for a capture, and the small POSIX shell programs that upload it into a
// private temp dir, verify it, run it and remove it again on the remote side.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { TapscopeError } from '../errors.js';
import { WholeBlocks } from '../pcapng/framing.js';
import type { CaptureOptions } from './target.js';

export interface HelperBinary {
  path: string;
  data: Buffer;
  sha256: string;
}

/**
 * Finds the helper for `arch` ('x64', 'arm64'): for x64 an explicit path (an option; tests) or $TAPSCOPE_HELPER,
 * for another $TAPSCOPE_HELPER_<ARCH> (TAPSCOPE_HELPER_ARM64), else resources/helper/linux-<arch>/ next to the app.
 */
export function locateHelper(explicit?: string, arch = 'x64'): string {
  const candidates: string[] = [];
  // why x64 only: an explicit helper is one binary, and the x86-64 one is what options and $TAPSCOPE_HELPER have
  // always named; an aarch64 node must not be sent it
  const env = arch === 'x64' ? process.env.TAPSCOPE_HELPER : process.env[`TAPSCOPE_HELPER_${arch.toUpperCase()}`];
  if (explicit && arch === 'x64') candidates.push(explicit);
  if (env) candidates.push(env);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    candidates.push(join(dir, 'resources', 'helper', `linux-${arch}`, 'tapscope-helper'));
    dir = dirname(dir);
  }
  for (const c of candidates) if (existsSync(c)) return resolve(c);
  throw new TapscopeError(
    'E_HELPER_MISSING',
    `The capture helper for linux-${arch} was not found (looked in ${candidates.join(', ')}). Run \`npm run build:native\` or pass --helper PATH.`,
  );
}

/** locateHelper, or '' when there is none (preflight reports problems instead of throwing). */
export function locateHelperOrNull(explicit?: string, arch = 'x64'): string {
  try {
    return locateHelper(explicit, arch);
  } catch {
    return '';
  }
}

export function loadHelper(explicit?: string, arch = 'x64'): HelperBinary {
  const path = locateHelper(explicit, arch);
  const data = readFileSync(path);
  return { path, data, sha256: createHash('sha256').update(data).digest('hex') };
}

/** The version the helper at `path` reports (`--version`), or null when it cannot run here (another
 *  architecture, missing): preflight shows which helper a capture would deploy. */
export function helperVersion(path: string): string | null {
  if (!existsSync(path)) return null;
  const v = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return v.status === 0 ? v.stdout.trim() || null : null;
}

/** The helper folder for a machine of `uname -m`; a node that does not say (null) is taken for x86-64. */
function archOf(unameM: string | null): string | null {
  return unameM === null ? 'x64' : helperArch(unameM);
}

/**
 * Where this build's helper for a machine of `uname -m` is (see archOf), without reading it, or null when this
 * build has none for it. `explicit` as for locateHelper. Preflight, the node list and HelperSet use it.
 */
export function builtHelper(unameM: string | null, explicit?: string): string | null {
  const arch = archOf(unameM);
  return arch ? locateHelperOrNull(explicit, arch) || null : null;
}

/** The architectures this build has a helper for, for messages: "x86_64 and aarch64". */
export function builtArchitectures(explicit?: string): string {
  return ['x86_64', ...(builtHelper('aarch64', explicit) ? ['aarch64'] : [])].join(' and ');
}

/** The helpers of this build by architecture, each read once (see builtHelper). */
export class HelperSet {
  private readonly loaded = new Map<string, HelperBinary | null>();
  constructor(private readonly explicit?: string) {}

  /**
   * The helper for a machine of `uname -m` (or a Kubernetes node's architecture), or null when this build has none
   * for it. Every build has the x86-64 one: its absence is E_HELPER_MISSING (not built yet), not an architecture left out.
   */
  for(unameM: string | null): HelperBinary | null {
    const arch = archOf(unameM);
    if (!arch) return null;
    if (!this.loaded.has(arch)) {
      this.loaded.set(arch, arch === 'x64' || builtHelper(unameM, this.explicit) ? loadHelper(this.explicit, arch) : null);
    }
    return this.loaded.get(arch)!;
  }

  /** builtArchitectures for this set's helpers */
  architectures(): string {
    return builtArchitectures(this.explicit);
  }
}

/** Maps `uname -m` to the helper's resource folder name. */
export function helperArch(unameM: string | null): string | null {
  switch ((unameM ?? '').trim()) {
    case 'x86_64': case 'amd64': return 'x64';
    case 'aarch64': case 'arm64': return 'arm64';
    default: return null;
  }
}

/** The helper's flags for one capture. */
export function helperArgs(opts: CaptureOptions, excludeTcp: string[] = []): string[] {
  const args = ['--mode', opts.mode];
  for (const i of opts.ifaces) args.push('--iface', i);
  if (opts.duration !== undefined) args.push('--duration', String(opts.duration));
  if (opts.snaplen !== undefined) args.push('--snaplen', String(opts.snaplen));
  if (opts.filter) args.push('--filter', opts.filter);
  for (const e of excludeTcp) args.push('--exclude-tcp', e);
  for (const k of opts.keyLogs ?? []) args.push('--keylog', k);
  return args;
}

/** Seconds left of a capture's duration started at `startedAt` (at least 1, for a resumed helper), or undefined without one. */
export function remainingDuration(opts: CaptureOptions, startedAt: number): number | undefined {
  if (opts.duration === undefined) return undefined;
  return Math.max(1, Math.ceil(opts.duration - (Date.now() - startedAt) / 1000));
}

/** True once a capture with a duration has run for all of it. */
export function durationElapsed(opts: CaptureOptions, startedAt: number): boolean {
  return opts.duration !== undefined && Date.now() - startedAt >= opts.duration * 1000;
}

/** Single-quotes a word for POSIX sh. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export const HELPER_NAME = 'tapscope-helper';

/**
 * Creates the private temp dir (mktemp -d is 0700) and prints its path: in $TMPDIR (else /tmp), or where that is
 * mounted noexec (hardened nodes: CIS mounts /tmp noexec) or full, in the next of /var/tmp, /dev/shm and
 * ~/.cache where a program can run. A small script is run in each dir first to see that (exit 126: noexec);
 * why each dir was passed over goes to stderr. Exit 1 when none will do.
 */
export const MKTEMP_SCRIPT = [
  'umask 077',
  'for b in "${TMPDIR:-/tmp}" /var/tmp /dev/shm "${HOME:-/nonexistent}/.cache"; do',
  '  case "$b" in */.cache) mkdir -p "$b" 2>/dev/null ;; esac',
  '  [ -d "$b" ] && [ -w "$b" ] || continue',
  '  d=$(mktemp -d "$b/tapscope.XXXXXXXX" 2>&1) || { echo "tapscope: $b: cannot create a temp dir: $d" >&2; continue; }',
  '  if ! { printf \'#!/bin/sh\\nexit 0\\n\' > "$d/probe" && chmod 0700 "$d/probe"; } 2>/dev/null; then echo "tapscope: $b: cannot write (no space left?)" >&2; rm -rf "$d"; continue; fi',
  '  "$d/probe" 2>/dev/null; rc=$?',
  '  rm -rf "$d/probe"',
  '  if [ "$rc" = 0 ]; then echo "$d"; exit 0; fi',
  '  rm -rf "$d"',
  '  if [ "$rc" = 126 ]; then echo "tapscope: $b is mounted noexec: programs cannot run from it" >&2; else echo "tapscope: $b: a program there exited with $rc" >&2; fi',
  'done',
  'exit 1',
].join('\n');

/**
 * The temp dir a run of MKTEMP_SCRIPT made, with why it passed dirs over (its stderr lines, for a note). When it made
 * none, an error naming `where` ("on node-1", "in pod x") with those reasons and `advice`: what can be done there.
 */
export function madeTempDir(run: { code: number | null; stdout: Buffer; stderr: string }, where: string, advice: string): { dir: string; passedOver: string[] } {
  const dir = run.stdout.toString('utf8').trim();
  const passedOver = run.stderr.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('tapscope: ')).map((l) => l.slice('tapscope: '.length));
  if (run.code === 0 && dir.startsWith('/')) return { dir, passedOver };
  throw new TapscopeError('E_HELPER_MISSING', passedOver.length
    ? `Could not find a temp dir ${where} the helper can run from: ${passedOver.join('; ')}. ${advice}`
    : `Could not create a temp dir ${where}: ${run.stderr.trim() || (run.code === null ? 'mktemp was killed' : `exit ${run.code}`)}.`);
}

/**
 * Receives exactly SIZE bytes on stdin into DIR/tapscope-helper and prints its sha256.
 * why: `head -c` instead of `cat`, because a Kubernetes v4 exec stream cannot signal end of stdin.
 */
export function uploadScript(dir: string, size: number): string {
  const f = `${shQuote(dir)}/${HELPER_NAME}`;
  return `umask 077; head -c ${size} > ${f} && chmod 0700 ${f} && sha256sum ${f}`;
}

/**
 * Parses `sha256sum` output and checks it against the local digest. `stderr`: the upload's (a full disk's "No space
 * left on device"), said in the error as the remote side gave it.
 */
export function checkUploadDigest(output: string, expected: string, where: string, stderr = ''): void {
  const got = output.trim().split(/\s+/)[0] ?? '';
  if (got !== expected) {
    const remote = stderr.trim().split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join('; ');
    if (remote) {
      throw new TapscopeError(
        'E_HELPER_MISSING',
        `Uploading the helper to ${where} failed: ${remote}.${/no space|quota|file too large/i.test(remote) ? ' Free space there (or set TMPDIR on the node to a dir with room) and retry.' : ''}`,
      );
    }
    throw new TapscopeError(
      'E_HELPER_MISSING',
      `The helper uploaded to ${where} is corrupt (sha256 ${got || 'unavailable'}, expected ${expected}). Check free space in the remote /tmp and retry.`,
    );
  }
}

/**
 * Runs the helper in DIR with the remaining arguments. When our end of stdin closes (stop, or the
 * transport died) the helper gets SIGTERM; when the helper exits the dir is removed. The helper's
 * PID goes to DIR/pid so a second session can signal it too.
 * why: an asynchronous list in sh reads /dev/null unless redirected, so stdin is kept on fd 3 for the
 * watcher; the watcher's stdout/stderr go to /dev/null so it cannot hold the channel open.
 */
export const RUN_SCRIPT = [
  'd="$1"; shift',
  'exec 3<&0',
  '"$d/tapscope-helper" "$@" </dev/null &',
  'p=$!',
  'echo "$p" > "$d/pid"',
  '( cat <&3 >/dev/null 2>&1; kill -TERM "$p" 2>/dev/null ) >/dev/null 2>&1 &',
  'exec 3<&-',
  'wait "$p"; rc=$?',
  'rm -rf "$d"',
  'exit "$rc"',
].join('\n');

/** argv that runs RUN_SCRIPT (for exec APIs taking a vector). */
export function runArgv(dir: string, args: string[]): string[] {
  return ['sh', '-c', RUN_SCRIPT, 'tapscope', dir, ...args];
}

/** The same as one shell command line (for SSH exec). */
export function runCommandLine(dir: string, args: string[], prefix: string[] = []): string {
  return [...prefix, ...runArgv(dir, args)].map(shQuote).join(' ');
}

/**
 * Signals a running helper through its pid file (used when stdin cannot be closed) and removes DIR; prints `killed` when
 * the helper outlived SIGTERM by 2 s, its output still open, and got SIGKILL, and `gone` when DIR is gone.
 * why the SIGKILL: a helper stuck (a hung write, a wedged kernel call) would otherwise run on, capturing, after the
 * session that started it has stopped.
 * why only a process whose argv[0] is DIR's helper: the pid file outlives its process when the run script dies, and the
 * pid may then be another's (in a Kubernetes capture pod, with the host's pids, any of the node's); and only a plain
 * number (a pid file holding -1 would make `kill` signal every process).
 */
export function killScript(dir: string): string {
  const d = shQuote(dir);
  return [
    `p=; [ -f ${d}/pid ] && p="$(cat ${d}/pid)"`,
    `case "$p" in ''|*[!0-9]*|0|1) p= ;; esac`,
    `ours() { [ -n "$p" ] && [ "$(tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null | head -n 1)" = ${d}/tapscope-helper ]; }`,
    'ours && kill -TERM "$p" 2>/dev/null',
    `for i in 1 2 3 4 5 6 7 8 9 10; do [ -e ${d} ] || break; sleep 0.2; done`,
    // (a helper whose output is closed has sent its whole stream and is detaching its eBPF probes, which takes seconds:
    // killed then, it loses nothing, and says nothing)
    'if ours; then w=; [ -e /proc/$p/fd/1 ] && w=1; kill -KILL "$p" 2>/dev/null; [ -n "$w" ] && echo killed; fi',
    `rm -rf ${d}; [ ! -e ${d} ] && echo gone`,
  ].join('; ');
}

/** How long a stopping helper has to end its stream after its input closes, before it is signalled through its pid file. */
export const STOP_GRACE_MS = 5000;

/**
 * The note for a helper that did not exit within STOP_GRACE_MS of its input closing and was killed with its output still
 * open (killScript printed `killed`), so that such a capture does not read as a clean stop; null otherwise.
 * why null for a slow exit without that: the helper closes its output once its stream is whole, then detaches its eBPF
 * probes, which can take seconds; a stream that did end early is noted when its file is read (no final statistics).
 */
export function stopOverrunNote(node: string, killOutput: string | null): string | null {
  if (killOutput === null || !/^killed$/m.test(killOutput)) return null;
  return `${node}: the helper did not stop within ${STOP_GRACE_MS / 1000} s of its input closing and was killed (it ignored SIGTERM): the packets it had not yet sent and its final statistics are missing`;
}

/** Calls `cb` with each complete, non-empty line of a text stream (the helper's stderr), and keeps a tail. */
export function onLines(stream: Readable, cb: (line: string) => void): { tail(): string } {
  let partial = '';
  let tail = '';
  stream.on('data', (d: Buffer) => {
    const text = partial + d.toString('utf8');
    tail = (tail + d.toString('utf8')).slice(-2000);
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) cb(l.trim());
  });
  stream.on('end', () => {
    if (partial.trim()) cb(partial.trim());
    partial = '';
  });
  return { tail: () => tail };
}

/**
 * Passes a helper's pcapng stream on in whole blocks only, dropping a block the transport cut off.
 * why: a resumed stream starts a new section in the same file; a torn block before its SHB would make
 * the whole file unreadable from there on. Bytes that are not pcapng are passed on unchanged.
 */
export class CompleteBlocks extends Transform {
  private readonly blocks = new WholeBlocks();

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const whole = this.blocks.push(chunk);
    if (whole.length > 0) this.push(whole);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.blocks.reset();
    cb();
  }
}
