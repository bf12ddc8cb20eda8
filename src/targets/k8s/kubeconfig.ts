// Kubeconfig loading with kubectl's semantics: KUBECONFIG lists several files that are merged with the
// first file winning for each named cluster/user/context and for current-context (client-node's own
// merge throws on duplicates and lets the last file win). Exec credential plugins are resolved to an
// absolute path even when PATH is short (apps started from a desktop launcher), by also looking in the
// places installers put them; a relative plugin path (`./plugin`) is relative to its kubeconfig file's directory, as
// kubectl has it. A plugin that fails is reported with its exit code and what it printed on stderr.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import { TapscopeError } from '../../errors.js';

export interface MergedKubeConfig {
  clusters: Cluster[];
  users: User[];
  contexts: Context[];
  currentContext: string | null;
  files: string[];
}

/** The kubeconfig files in effect: an explicit list (KUBECONFIG syntax), $KUBECONFIG, or ~/.kube/config. */
export function kubeconfigFiles(explicit?: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const spec = explicit ?? env.KUBECONFIG;
  if (spec && spec.length > 0) return spec.split(delimiter).filter(Boolean);
  return [join(env.HOME ?? homedir(), '.kube', 'config')];
}

export function mergeKubeconfigs(files: string[]): MergedKubeConfig {
  const out: MergedKubeConfig = { clusters: [], users: [], contexts: [], currentContext: null, files: [] };
  for (const f of files) {
    if (!existsSync(f)) continue;
    const kc = new KubeConfig();
    const cannot = (why: string): TapscopeError => new TapscopeError('E_KUBECONFIG', `Cannot read kubeconfig ${f}: ${why}. Fix the file or point KUBECONFIG elsewhere.`, { path: f });
    try {
      const doc = yamlLoad(readFileSync(f, 'utf8'));
      // (an empty file is an empty kubeconfig, as kubectl takes it; client-node's loader fails on it)
      if (doc === null || doc === undefined) {
        out.files.push(f);
        continue;
      }
      const wrong = notAKubeconfig(doc);
      if (wrong) throw cannot(wrong);
      kc.loadFromFile(f);
    } catch (e) {
      if (e instanceof TapscopeError) throw e;
      // (js-yaml's message quotes the lines around the error; its reason and place say it in one line)
      const y = e as { name?: unknown; reason?: unknown; mark?: { line: number; column: number } };
      if (y.name === 'YAMLException' && typeof y.reason === 'string' && y.mark) throw cannot(`not valid YAML: ${y.reason} at line ${y.mark.line + 1}, column ${y.mark.column + 1}`);
      throw cannot(e instanceof Error ? e.message : String(e));
    }
    out.files.push(f);
    const add = <T extends { name: string }>(into: T[], items: T[]) => {
      for (const it of items) if (!into.some((x) => x.name === it.name)) into.push(it);
    };
    add(out.clusters, kc.clusters);
    add(out.users, kc.users.map((u) => withPluginPathFrom(u, f)));
    add(out.contexts, kc.contexts);
    if (!out.currentContext && kc.currentContext) out.currentContext = kc.currentContext;
  }
  if (out.files.length === 0) {
    throw new TapscopeError('E_KUBECONFIG', `No kubeconfig found (looked at ${files.join(', ')}). Set KUBECONFIG or create ~/.kube/config.`);
  }
  return out;
}

/**
 * The user with its exec plugin's relative path (one with a path separator: `./bin/plugin`) made absolute against the
 * directory of the kubeconfig file it came from, as kubectl's loader does (client-go ResolvePaths); a bare name
 * (`aws`) stays a name looked up in PATH.
 */
function withPluginPathFrom(user: User, file: string): User {
  const command: unknown = user.exec?.command;
  if (typeof command !== 'string' || isAbsolute(command) || !isPathCommand(command)) return user;
  return { ...user, exec: { ...user.exec, command: resolve(dirname(resolve(file)), command) } };
}

/**
 * js-yaml's load, the YAML parser client-node's KubeConfig reads kubeconfigs with (resolved as client-node resolves it:
 * tapscope does not depend on js-yaml itself).
 */
let yamlParser: { load(text: string): unknown } | null = null;
function yamlLoad(text: string): unknown {
  yamlParser ??= createRequire(createRequire(import.meta.url).resolve('@kubernetes/client-node'))('js-yaml') as { load(text: string): unknown };
  return yamlParser.load(text);
}

/** The top-level fields of a kubeconfig (clientcmd's Config). */
const KUBECONFIG_FIELDS = new Set(['apiVersion', 'kind', 'preferences', 'clusters', 'users', 'contexts', 'current-context', 'extensions']);

/**
 * Why a kubeconfig file's YAML is no kubeconfig, or null. why: client-node's KubeConfig takes a YAML list, a string or
 * a mapping of other things for a kubeconfig with nothing in it, and the context asked for was then "not in" the file
 * (kubectl: "error loading config file").
 */
function notAKubeconfig(doc: unknown): string | null {
  if (Array.isArray(doc)) return 'its YAML is a list, not a kubeconfig (a mapping with clusters, contexts and users)';
  if (typeof doc !== 'object' || doc === null) return `its YAML is a ${typeof doc}, not a kubeconfig (a mapping with clusters, contexts and users)`;
  const o = doc as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length > 0 && !keys.some((k) => KUBECONFIG_FIELDS.has(k))) {
    return `it is not a kubeconfig: none of its fields (${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ', ...' : ''}) is a kubeconfig's (clusters, contexts, users, current-context)`;
  }
  for (const k of ['clusters', 'users', 'contexts']) {
    if (o[k] !== null && o[k] !== undefined && !Array.isArray(o[k])) return `its ${k} is not a list`;
  }
  if (o['current-context'] !== null && o['current-context'] !== undefined && typeof o['current-context'] !== 'string') return 'its current-context is not a string';
  if (o.kind !== null && o.kind !== undefined && o.kind !== 'Config') return `its kind is ${JSON.stringify(o.kind)}, not Config`;
  return null;
}

/** Where exec credential plugins usually live, beyond PATH. */
export function pluginSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME ?? homedir();
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  dirs.push(
    '/usr/local/bin', '/usr/bin', '/bin', '/opt/homebrew/bin', '/home/linuxbrew/.linuxbrew/bin', '/snap/bin',
    join(home, '.krew', 'bin'), join(home, 'go', 'bin'), join(home, 'bin'), join(home, '.local', 'bin'),
    join(home, 'google-cloud-sdk', 'bin'), '/usr/lib/google-cloud-sdk/bin', '/opt/google-cloud-sdk/bin',
    '/usr/local/google-cloud-sdk/bin', '/opt/homebrew/share/google-cloud-sdk/bin',
  );
  if (env.CLOUDSDK_ROOT_DIR) dirs.push(join(env.CLOUDSDK_ROOT_DIR, 'bin'));
  return [...new Set(dirs)];
}

function isExecutable(p: string): boolean {
  try {
    const s = statSync(p);
    return s.isFile() && (s.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** A command with a path separator is a path (kubectl's rule); a bare name is looked up in PATH. */
function isPathCommand(command: string): boolean {
  return isAbsolute(command) || command.includes('/') || command.includes(sep);
}

/**
 * Resolves an exec plugin command to an absolute path, or null when it is nowhere to be found. A path is taken as it
 * is: mergeKubeconfigs has made a relative one absolute, against the directory of the kubeconfig that names it.
 */
export function findExecPlugin(command: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (isPathCommand(command)) {
    const p = resolve(command);
    return isExecutable(p) ? p : null;
  }
  for (const d of pluginSearchDirs(env)) {
    const p = join(d, command);
    if (isExecutable(p)) return p;
  }
  return null;
}

/** A KubeConfig for one context (default: current-context), with exec plugins made absolute. */
export function kubeConfigFor(merged: MergedKubeConfig, context?: string | null, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const name = context || merged.currentContext;
  if (!name) throw new TapscopeError('E_KUBECONFIG', `No context given and no current-context set in ${merged.files.join(', ')}. Use k8s://CONTEXT.`);
  const ctx = merged.contexts.find((c) => c.name === name);
  if (!ctx) {
    throw new TapscopeError('E_KUBECONFIG', `Context "${name}" is not in ${merged.files.join(', ')}. Known contexts: ${merged.contexts.map((c) => c.name).join(', ') || 'none'}.`);
  }
  const cluster = merged.clusters.find((c) => c.name === ctx.cluster);
  if (!cluster) throw new TapscopeError('E_KUBECONFIG', `Context "${name}" names cluster "${ctx.cluster}", which is not defined.`);
  let user = merged.users.find((u) => u.name === ctx.user);
  if (!user) throw new TapscopeError('E_KUBECONFIG', `Context "${name}" names user "${ctx.user}", which is not defined.`);
  if (user.exec?.command) {
    const resolved = findExecPlugin(String(user.exec.command), env);
    if (!resolved && isPathCommand(String(user.exec.command))) {
      throw new TapscopeError('E_KUBECONFIG',
        `The credential plugin ${user.exec.command} of user "${user.name}" does not exist or is not executable (a relative path in a kubeconfig is relative to the kubeconfig file's directory). Fix the path in the kubeconfig or install the plugin there.`);
    }
    if (!resolved) {
      throw new TapscopeError('E_KUBECONFIG',
        `The credential plugin "${user.exec.command}" of user "${user.name}" was not found in PATH or ${pluginSearchDirs(env).slice(-12).join(', ')}. Install it or give its full path in the kubeconfig.`);
    }
    user = { ...user, exec: { ...user.exec, command: resolved } };
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [cluster], users: [user], contexts: [ctx], currentContext: ctx.name });
  if (user.exec?.command) reportPluginFailures(kc, ctx.name, user.name, String(user.exec.command));
  return kc;
}

/** client-node's exec authenticator, as far as it is used here (its fields are private in the typings). */
interface ExecAuthInternals {
  execFn: (command: string, args: string[], opts: object) => ChildProcess;
  getCredential: (user: User) => Promise<unknown>;
}

/**
 * Makes a failing exec credential plugin an E_AUTH_FAILED naming the plugin, its exit code and the first lines of its
 * stderr. why: client-node rejects with a bare Error holding the plugin's stderr (no exit code, no status), which read
 * as an unreachable API server ("check the VPN or proxy-url"); kubectl says "getting credentials: exec: executable X
 * failed with exit code N".
 */
function reportPluginFailures(kc: KubeConfig, context: string, userName: string, command: string): void {
  const auths = (kc as unknown as { authenticators?: unknown[] }).authenticators ?? [];
  const auth = auths.find((a): a is ExecAuthInternals => typeof (a as Partial<ExecAuthInternals>)?.execFn === 'function'
    && typeof (a as Partial<ExecAuthInternals>).getCredential === 'function');
  if (!auth) return;
  let last: { code: number | null; signal: NodeJS.Signals | null; stderr: string } | null = null;
  const spawnFn = auth.execFn;
  auth.execFn = (cmd, args, opts) => {
    const child = spawnFn(cmd, args, opts);
    const run = { code: null as number | null, signal: null as NodeJS.Signals | null, stderr: '' };
    last = run;
    child.stderr?.on('data', (d: Buffer | string) => {
      if (run.stderr.length < 16_384) run.stderr += d.toString();
    });
    child.on('close', (code, signal) => {
      run.code = code;
      run.signal = signal;
    });
    return child;
  };
  const getCredential = auth.getCredential.bind(auth);
  auth.getCredential = async (u: User) => {
    last = null;
    try {
      return await getCredential(u);
    } catch (e) {
      throw pluginError(e, last, context, command, userName);
    }
  };
}

/** The first lines of a plugin's stderr, in one line. */
export function stderrSummary(text: string, maxLines = 3, maxChars = 400): string {
  // eslint-disable-next-line no-control-regex -- a plugin's colour codes and other control characters are what it drops
  const lines = text.split(/\r?\n/).map((l) => l.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()).filter(Boolean);
  let s = lines.slice(0, maxLines).join(' / ').replace(/[.\s]+$/, '');
  if (s.length > maxChars) s = `${s.slice(0, maxChars)} [...]`;
  if (lines.length > maxLines) s += ` (and ${lines.length - maxLines} more line${lines.length - maxLines > 1 ? 's' : ''})`;
  return s;
}

function pluginError(e: unknown, run: { code: number | null; signal: NodeJS.Signals | null; stderr: string } | null, context: string, command: string, userName: string): TapscopeError {
  if (e instanceof TapscopeError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const errno = (e as { code?: unknown })?.code;
  let what: string;
  if (typeof errno === 'string') {
    what = `could not be run (${errno}: ${stderrSummary(msg)})`;
  } else if (run && (run.code !== null && run.code !== 0)) {
    const said = stderrSummary(run.stderr || msg);
    what = `failed with exit code ${run.code}${said ? `: ${said}` : ' and printed nothing on stderr'}`;
  } else if (run?.signal) {
    what = `was killed by ${run.signal}`;
  } else if (e instanceof SyntaxError) {
    what = `did not print a valid ExecCredential (${stderrSummary(msg)})`;
  } else {
    what = `failed: ${stderrSummary(msg) || 'no message'}`;
  }
  return new TapscopeError('E_AUTH_FAILED',
    `Could not get credentials for context "${context}": the credential plugin ${command} of user "${userName}" ${what}. Log in again as it says (run it yourself to see all of its output), then retry.`,
    { plugin: command, user: userName, ...(run?.code !== null && run?.code !== undefined ? { exitCode: run.code } : {}) }, { cause: e });
}

export function listContexts(explicit?: string): { names: string[]; current: string | null } {
  const m = mergeKubeconfigs(kubeconfigFiles(explicit));
  return { names: m.contexts.map((c) => c.name), current: m.currentContext };
}
