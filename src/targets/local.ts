// The local target ("this machine", uri `local`): runs the helper binary directly when root, else through
// `sudo -n`, else through `pkexec` in a graphical session (a polkit agent asks the password), and streams
// its pcapng stdout as one node named after this host.
// Test/dev knob: TAPSCOPE_LOCAL_NETNS=NAME (or the `netns` option) runs the helper inside that network
// namespace (`ip netns exec NAME helper ...`), so tests can capture a private lab without touching the host.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { arch, hostname, release } from 'node:os';
import { TapscopeError, type TapscopeErrorCode } from '../errors.js';
import { helperPath } from '../util/paths.js';
import { helperArgs, helperVersion as helperVersionOf } from './deploy.js';
import type {
  CaptureHandle, CaptureHandlers, CaptureOptions, CaptureTarget, NodeInfo, PreflightReport, PromptFn, ShellChannel,
} from './target.js';

export interface LocalTargetOptions {
  helperPath?: string;
  /** Run the helper inside this network namespace (test/dev knob; default $TAPSCOPE_LOCAL_NETNS). */
  netns?: string | null;
  prompt?: PromptFn;
  /** Milliseconds to wait after SIGINT before SIGKILL. */
  stopGraceMs?: number;
  /** Use this privilege decision instead of probing sudo/pkexec (test knob: the pkexec stop and failure paths). */
  privilege?: LocalPrivilege;
}

const STDERR_TAIL = 4096;

function machineArch(): string {
  const a = arch();
  return a === 'x64' ? 'x86_64' : a === 'arm64' ? 'aarch64' : a;
}

/** How the helper's exit code maps to an error a person can act on (native/FORMAT.md "Exit codes"). */
function exitError(code: number | null, signal: NodeJS.Signals | null, stderr: string): { code: TapscopeErrorCode; message: string } {
  const tail = stderr.trim().split('\n').slice(-3).join(' | ');
  const said = tail ? `: ${tail}` : '';
  switch (code) {
    case 1: return { code: 'E_USAGE', message: `the helper rejected its arguments${said}` };
    case 2: return { code: 'E_NOT_PERMITTED', message: `the helper is not permitted to capture (it needs root, or CAP_NET_RAW + CAP_BPF + CAP_PERFMON)${said}` };
    case 3: return { code: 'E_KERNEL_UNSUPPORTED', message: `the requested capture mode is not supported by this kernel; try --mode auto or afpacket${said}` };
    default: return { code: 'E_HELPER_EXITED', message: `the helper exited with ${code !== null ? `code ${code}` : `signal ${signal}`}${said}` };
  }
}

const NEEDS_ROOT = 'capturing on this machine needs root: run tapscope with sudo, allow passwordless sudo for the helper '
  + '(e.g. a sudoers line `USER ALL=(root) NOPASSWD: /path/to/tapscope-helper`), or run it from a graphical session with '
  + 'pkexec and a polkit agent that asks for the password';

/** How the helper gets root: the argv prefix to run it with, or why it cannot. */
export type LocalPrivilege =
  | { via: 'root' | 'sudo' | 'pkexec'; prefix: string[] }
  | { via: 'none'; message: string };

/**
 * The privilege decision, pure: root runs the helper directly; passwordless `sudo -n` next; else `pkexec`
 * when it is installed and a graphical session is there for its polkit agent ($DISPLAY or $WAYLAND_DISPLAY);
 * else E_SUDO_REQUIRED's message naming the ways.
 */
export function decidePrivilege(input: { uid: number | null; sudoOk: boolean; pkexecPath: string | null; env: Record<string, string | undefined> }): LocalPrivilege {
  if (input.uid === 0) return { via: 'root', prefix: [] };
  if (input.sudoOk) return { via: 'sudo', prefix: ['sudo', '-n'] };
  const graphical = Boolean(input.env.DISPLAY) || Boolean(input.env.WAYLAND_DISPLAY);
  if (input.pkexecPath && graphical) return { via: 'pkexec', prefix: [input.pkexecPath] };
  const why = !input.pkexecPath ? 'pkexec is not installed' : 'there is no graphical session for a polkit agent ($DISPLAY / $WAYLAND_DISPLAY unset)';
  return { via: 'none', message: `${NEEDS_ROOT} (${why})` };
}

/** The first executable `name` on $PATH, or null. */
export function findOnPath(name: string, pathVar = process.env.PATH ?? ''): string | null {
  for (const dir of pathVar.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The processes below `pid` (its children, theirs, ...), from /proc; none when they cannot be read. */
function descendants(pid: number): number[] {
  let children: number[];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

export class LocalTarget implements CaptureTarget {
  readonly kind = 'local' as const;
  readonly uri = 'local';
  private readonly helper: string;
  private readonly netns: string | null;
  private readonly grace: number;

  constructor(private readonly opts: LocalTargetOptions = {}) {
    this.helper = opts.helperPath ?? helperPath();
    this.netns = opts.netns !== undefined ? opts.netns : (process.env.TAPSCOPE_LOCAL_NETNS || null);
    this.grace = opts.stopGraceMs ?? 5000;
  }

  get nodeName(): string {
    return hostname();
  }

  async listNodes(): Promise<NodeInfo[]> {
    return [{ name: this.nodeName, ready: true, kernel: release(), arch: machineArch(), address: null }];
  }

  private privilege(): LocalPrivilege {
    if (this.opts.privilege) return this.opts.privilege;
    const uid = process.getuid?.() ?? null;
    const sudoOk = uid !== 0 && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 5000 }).status === 0;
    const pkexecPath = uid !== 0 && !sudoOk ? findOnPath('pkexec') : null;
    return decidePrivilege({ uid, sudoOk, pkexecPath, env: process.env });
  }

  async preflight(): Promise<PreflightReport[]> {
    const problems: string[] = [];
    let helperVersion: string | null = null;
    if (!existsSync(this.helper)) problems.push(`helper binary not found at ${this.helper}; build it with \`make -C native\` or set TAPSCOPE_HELPER`);
    else helperVersion = helperVersionOf(this.helper);
    const priv = this.privilege();
    if (priv.via === 'none') problems.push(priv.message);
    // why: pkexec asks for a password through the polkit agent, like sudo with a password
    const privileged: PreflightReport['privileged'] = priv.via === 'pkexec' ? 'sudo-password' : priv.via;
    return [{
      node: this.nodeName, arch: machineArch(), kernel: release(), btf: existsSync('/sys/kernel/btf/vmlinux'), privileged, helperVersion, problems,
    }];
  }

  /** The argv that runs the helper with these options (exposed for tests). */
  command(options: CaptureOptions): string[] {
    return this.plan(options).argv;
  }

  private plan(options: CaptureOptions): { argv: string[]; via: LocalPrivilege['via'] } {
    if (!existsSync(this.helper)) {
      throw new TapscopeError('E_HELPER_MISSING', `the capture helper is missing at ${this.helper}; build it with \`make -C native\` (or \`npm run build:native\`), or point TAPSCOPE_HELPER at it`);
    }
    let argv = [this.helper, ...helperArgs(options)];
    if (this.netns) argv = ['ip', 'netns', 'exec', this.netns, ...argv];
    const priv = this.privilege();
    if (priv.via === 'none') throw new TapscopeError('E_SUDO_REQUIRED', priv.message);
    return { argv: [...priv.prefix, ...argv], via: priv.via };
  }

  async start(options: CaptureOptions, handlers: CaptureHandlers): Promise<CaptureHandle> {
    const node = this.nodeName;
    if (options.nodes && options.nodes.length > 0 && !options.nodes.includes(node)) {
      throw new TapscopeError('E_TARGET_INVALID', `this machine is node '${node}', not ${options.nodes.map((n) => `'${n}'`).join(', ')}`);
    }
    handlers.onStatus({ node, phase: 'preflight' });
    const { argv, via } = this.plan(options);
    const pkexec = via === 'pkexec';
    const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let streaming = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_TAIL);
      // why: the helper says "capturing" once its sockets and hooks are in place; only then is traffic seen.
      if (!streaming && stderr.includes('capturing')) {
        streaming = true;
        handlers.onStatus({ node, phase: 'streaming' });
      }
    });
    let stopping = false;
    let exited = false;
    // (set when the helper outlived the stop's grace and was killed before its output ended)
    let killed = false;
    // why: the helper closes its output once its stream is whole, then detaches its eBPF probes, which takes seconds: a
    // kill then loses nothing
    let outputEnded = false;
    child.stdout?.once('end', () => { outputEnded = true; });
    const done = new Promise<void>((resolve) => {
      child.on('error', (e) => {
        exited = true;
        handlers.onStatus({ node, phase: 'failed', error: { code: 'E_HELPER_EXITED', message: `cannot run the helper: ${e.message}` } });
        resolve();
      });
      child.on('close', (code, signal) => {
        exited = true;
        // why: under pkexec the helper is stopped by closing its stdout; it exits on EPIPE with its own code
        if (killed && signal === 'SIGKILL') {
          // why: a helper killed mid-write loses the packets it had not yet written and its final statistics (its drops
          // since the last second): the capture is whole up to there, and must not read as a clean stop
          const message = `the helper did not stop within ${this.grace / 1000} s of SIGINT and was killed: the packets it had not yet written and its final statistics are missing`;
          handlers.onStatus({ node, phase: 'stopped', message, error: { code: 'E_HELPER_EXITED', message } });
        } else if (code === 0 || (stopping && (pkexec || signal === 'SIGINT' || signal === 'SIGTERM' || signal === 'SIGKILL'))) {
          handlers.onStatus({ node, phase: 'stopped' });
        } else if (pkexec && (code === 126 || code === 127) && !streaming) {
          handlers.onStatus({
            node, phase: 'failed', message: `pkexec could not run the helper as root (exit ${code}: no polkit agent, or the password was not given)`,
            error: { code: 'E_SUDO_REQUIRED', message: `pkexec could not run the helper as root (exit ${code}: no polkit agent answered, or authentication was dismissed); ${NEEDS_ROOT}` },
          });
        } else {
          const err = exitError(code, signal, stderr);
          handlers.onStatus({ node, phase: 'failed', message: err.message, error: err });
        }
        resolve();
      });
    });
    handlers.onStatus({ node, phase: 'running', ...(pkexec ? { message: 'running the helper as root through pkexec (polkit asks for the password)' } : {}) });
    if (child.stdout) handlers.onStream(node, child.stdout);
    let stopPromise: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      if (stopPromise) return stopPromise;
      stopping = true;
      if (exited) return (stopPromise = done);
      if (pkexec) {
        // why: pkexec is setuid and execs the helper as root, so our signals cannot reach it; the helper
        // exits when a write to its closed stdout fails (EPIPE)
        handlers.onStatus({ node, phase: 'stopping', message: 'stopping the helper (run through pkexec) by closing its output; it exits on its next write' });
        child.stdout?.destroy();
        return (stopPromise = done);
      }
      handlers.onStatus({ node, phase: 'stopping' });
      child.kill('SIGINT');
      const timer = setTimeout(() => {
        if (exited) return;
        killed = !outputEnded;
        // why: under sudo the helper is root's, a child of sudo, which cannot relay a SIGKILL: killing sudo alone left the
        // helper capturing, holding the output open, and the stop waiting for ever
        if (via === 'sudo' && child.pid !== undefined) {
          for (const pid of descendants(child.pid)) spawnSync('sudo', ['-n', 'kill', '-KILL', String(pid)], { stdio: 'ignore', timeout: 5000 });
        }
        child.kill('SIGKILL');
      }, this.grace);
      stopPromise = done.then(() => clearTimeout(timer));
      return stopPromise;
    };
    const notes: string[] = [];
    if (this.netns) notes.push(`captured inside network namespace ${this.netns} (TAPSCOPE_LOCAL_NETNS)`);
    return { stop, done, notes };
  }

  async openShell(_node: string): Promise<ShellChannel> {
    const pty = await import('node-pty');
    const shell = process.env.SHELL || '/bin/bash';
    const p = pty.spawn(shell, [], { name: 'xterm-256color', cols: 80, rows: 24, cwd: process.env.HOME ?? '/', env: process.env as Record<string, string> });
    return {
      write: (d) => p.write(typeof d === 'string' ? d : d.toString('utf8')),
      resize: (c, r) => p.resize(c, r),
      onData: (cb) => { const sub = p.onData((s) => cb(Buffer.from(s, 'utf8'))); return () => sub.dispose(); },
      onExit: (cb) => { const sub = p.onExit((e) => cb(e.exitCode)); return () => sub.dispose(); },
      close: () => p.kill(),
    };
  }

  async close(): Promise<void> {
    // why: nothing is held between captures; running captures are stopped through their handles.
  }
}

export function createLocalTarget(opts: LocalTargetOptions = {}): LocalTarget {
  return new LocalTarget(opts);
}
