// Runs the real capture helper in a lab namespace with its pcapng going to a file, for helper tests
// and benchmarks. Resolves once the helper reports that it is capturing.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HELPER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'resources', 'helper', 'linux-x64', 'tapscope-helper');
/** The aarch64 build; this machine runs it through qemu-user (binfmt_misc, scripts/install-deps.sh), on its x86-64 kernel (AF_PACKET). */
export const HELPER_ARM64 = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'resources', 'helper', 'linux-arm64', 'tapscope-helper');

export function helperBuilt(): boolean { return existsSync(HELPER); }

export interface RunningHelper {
  child: ChildProcess;
  stderr(): string;
  /** Sends SIGTERM (or the given signal) and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export async function startHelper(ns: string | null, args: string[], outFile: string, helper = HELPER): Promise<RunningHelper> {
  const fd = openSync(outFile, 'w');
  const cmd = ns ? 'ip' : helper;
  const argv = ns ? ['netns', 'exec', ns, helper, ...args] : args;
  const child = spawn(cmd, argv, { stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`helper did not start: ${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('tapscope-helper: capturing')) { clearTimeout(timer); resolve(); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`helper exited early (${code}): ${err}`)); });
  }).catch((e) => { child.kill('SIGKILL'); throw e; });
  return {
    child,
    stderr: () => err,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
