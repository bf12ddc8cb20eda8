// Runs the `tapscope` CLI for the core's integration tests: the built CLI (dist/) when TAPSCOPE_TEST_BUILT=1,
// else the TypeScript sources through tsx (the same code, no build step needed).
import { spawn, type ChildProcess } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Flow } from '../../src/model/flow.js';
import { watchOutput } from '../lib/child-output.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function cliArgv(args: string[]): [string, string[]] {
  if (process.env.TAPSCOPE_TEST_BUILT === '1') return [process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args]];
  return [process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args]];
}

export interface CliRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Resolves when stderr contains `text`; rejects if the process exits first or after timeoutMs. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv, opts: { detached?: boolean } = {}): CliRun {
  const [cmd, argv] = cliArgv(args);
  const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  const out = watchOutput(child, ['stdout'], 'the CLI');
  const err = watchOutput(child, ['stderr'], 'the CLI');
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, exited, stdout: out.text, stderr: err.text, waitFor: (text, timeoutMs = 60_000) => err.waitFor(text, timeoutMs) };
}

export async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = startCli(args, env);
  const code = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/**
 * `tapscope capture --mode MODE --duration SECONDS` of a lab's node namespace into DIR/FILE (its session store in
 * DIR/home), resolved once the CLI says it captures; `env` serves the commands that read the capture after. `extraEnv`:
 * more of the environment of the CLI, and so of the helper it runs.
 */
export async function captureLab(
  lab: { nodeNs: string }, dir: string, file: string, mode: string, seconds: number, extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ cap: CliRun; out: string; env: NodeJS.ProcessEnv }> {
  const env = { TAPSCOPE_HOME: join(dir, 'home'), TAPSCOPE_LOCAL_NETNS: lab.nodeNs, ...extraEnv };
  const out = join(dir, file);
  const cap = startCli(['capture', '--mode', mode, '--duration', String(seconds), '--out', out], env);
  await cap.waitFor(': capturing');
  return { cap, out, env };
}

/**
 * `tapscope flows FILE --json` (with `--filter` when given, and `more` arguments) as flows; throws with its error output
 * unless it exits 0.
 */
export async function flowsJson(file: string, env: NodeJS.ProcessEnv, filter?: string, more: string[] = []): Promise<Flow[]> {
  const r = await runCli(['flows', file, '--json', ...(filter === undefined ? [] : ['--filter', filter]), ...more], env);
  if (r.code !== 0) throw new Error(`tapscope flows exited ${r.code}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Flow);
}
