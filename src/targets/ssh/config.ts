// OpenSSH client configuration (~/.ssh/config) as far as Tapscope needs it: which address, user, port,
// identity files and jump hosts an alias resolves to. Semantics follow ssh_config(5) as ssh(1) implements
// them: the first value obtained for a keyword wins, IdentityFile accumulates, Host patterns use * ? and !
// negation, Match lines are evaluated where they stand against the values resolved above them (and the
// config is read once more when a Match line names `final`), and the blocks of an Included file belong to
// the block holding the Include line. Host and user names from outside the config are checked as OpenSSH 9.6
// checks its command line, since they reach a shell through Match exec.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { dirname, join, isAbsolute, basename } from 'node:path';
import { TapscopeError } from '../../errors.js';
import { expandTilde } from '../../util/paths.js';

export interface SshConfigEntry {
  /** Host patterns of the block; `null` for keywords before the first Host or Match line (they apply to all). */
  patterns: string[] | null;
  /** Lower-cased keyword → values in file order. */
  options: Array<[string, string[]]>;
  /** A Match block's criteria as written (`['!host', 'a,b', 'exec', 'cmd']`), evaluated by resolveHost. */
  match?: string[];
  /** Where the Host or Match line is, for messages. */
  source?: { file: string; line: number };
  /** The block this one resumes after an Include line: it is that block, so it applies exactly when that one did. */
  continues?: SshConfigEntry;
  /** For the blocks of an included file, the block holding the Include line: they apply only when it does. */
  includedBy?: SshConfigEntry;
}

export interface JumpSpec {
  host: string;
  user: string | null;
  port: number | null;
}

export interface ResolvedHost {
  alias: string;
  hostName: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** IdentitiesOnly yes: do not offer agent keys that were not named. */
  identitiesOnly: boolean;
  proxyJump: JumpSpec[];
  /**
   * ProxyCommand (null: none, or `none`): a command that makes the connection, which tapscope does not run; when it
   * comes before any ProxyJump (OpenSSH takes the first of the two), connecting refuses rather than going around it.
   */
  proxyCommand: string | null;
  /** UserKnownHostsFile's files (`none`: none); null when not set, for the default ~/.ssh/known_hosts and known_hosts2. */
  userKnownHostsFiles: string[] | null;
  /**
   * GlobalKnownHostsFile: the system-wide known_hosts files, read but never written. Default
   * /etc/ssh/ssh_known_hosts and /etc/ssh/ssh_known_hosts2; empty for `GlobalKnownHostsFile none`.
   */
  globalKnownHostsFiles: string[];
  strictHostKeyChecking: string | null;
  connectTimeoutMs: number | null;
  serverAliveIntervalMs: number | null;
  identityAgent: string | null;
}

/**
 * Splits one config line into keyword and arguments, honouring `key=value` and double quotes. In a Match line every
 * unquoted '=' separates, as readconf.c's strdelim does there (`Match host=web user=ops`).
 */
export function tokenizeLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let had = false;
  const s = line.trim();
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '"') {
      inQuote = !inQuote;
      had = true;
      continue;
    }
    // why: elsewhere only the first '=' (between keyword and value) separates; later ones belong to the value.
    const equalsSplits = out.length === 0 || (out[0] as string).toLowerCase() === 'match';
    if (!inQuote && (c === ' ' || c === '\t' || (c === '=' && equalsSplits))) {
      if (had) out.push(cur);
      cur = '';
      had = false;
      continue;
    }
    cur += c;
    had = true;
  }
  if (inQuote) throw new TapscopeError('E_TARGET_INVALID', `ssh config: unbalanced quote in line: ${line.trim()}`);
  if (had) out.push(cur);
  return out;
}

interface ParseContext {
  baseDir: string;
  file: string;
  depth: number;
  includedBy?: SshConfigEntry;
}

export function parseSshConfig(text: string, opts: { baseDir?: string; file?: string } = {}): SshConfigEntry[] {
  const entries: SshConfigEntry[] = [{ patterns: null, options: [] }];
  parseInto(entries, text, { baseDir: opts.baseDir ?? join(homedir(), '.ssh'), file: opts.file ?? 'ssh config', depth: 0 });
  return entries;
}

/** Appends one file's blocks to `entries`; keywords before its first Host or Match line go to the current block. */
function parseInto(entries: SshConfigEntry[], text: string, ctx: ParseContext): void {
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const [keyword = '', ...args] = tokenizeLine(line);
    const key = keyword.toLowerCase();
    const cur = entries[entries.length - 1] as SshConfigEntry;
    const block = { options: [], source: { file: ctx.file, line: i + 1 }, ...(ctx.includedBy ? { includedBy: ctx.includedBy } : {}) };
    if (key === 'host') entries.push({ patterns: args, ...block });
    else if (key === 'match') entries.push({ patterns: [], match: args, ...block });
    else if (key === 'include') include(entries, args, cur, ctx);
    else cur.options.push([key, args]);
  });
}

/**
 * Reads the files an Include line names. As in OpenSSH, their blocks can apply only when the block holding the
 * Include line does, and the keywords after the line go on belonging to that block.
 */
function include(entries: SshConfigEntry[], args: string[], holder: SshConfigEntry, ctx: ParseContext): void {
  if (ctx.depth > 8) throw new TapscopeError('E_TARGET_INVALID', 'ssh config: Include nested too deeply');
  for (const file of args.flatMap((a) => expandInclude(a, ctx.baseDir))) {
    const before = entries.length;
    parseInto(entries, readFileSync(file, 'utf8'), { baseDir: ctx.baseDir, file, depth: ctx.depth + 1, includedBy: holder });
    if (entries.length > before) {
      entries.push({ patterns: holder.patterns, options: [], ...(holder.match ? { match: holder.match } : {}), continues: holder.continues ?? holder });
    }
  }
}

function expandInclude(pattern: string, baseDir: string): string[] {
  const p = expandTilde(pattern);
  const full = isAbsolute(p) ? p : join(baseDir, p);
  if (!/[*?]/.test(basename(full))) return existsSync(full) ? [full] : [];
  const dir = dirname(full);
  if (!existsSync(dir)) return [];
  const re = globToRegExp(basename(full));
  return readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => join(dir, f));
}

function globToRegExp(glob: string, ignoreCase = true): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`, ignoreCase ? 'i' : '');
}

/** ssh_config(5) pattern list: matches when some positive pattern matches and no negated one does. */
export function hostMatches(patterns: string[], host: string): boolean {
  return patternListMatches(patterns, host, true);
}

// why: OpenSSH compares host names case-insensitively but user names as written (match_pattern_list's dolower).
function patternListMatches(patterns: string[], value: string, ignoreCase: boolean): boolean {
  let positive = false;
  for (const pat of patterns.flatMap((p) => p.split(','))) {
    if (!pat) continue;
    if (pat.startsWith('!')) {
      if (globToRegExp(pat.slice(1), ignoreCase).test(value)) return false;
    } else if (globToRegExp(pat, ignoreCase).test(value)) {
      positive = true;
    }
  }
  return positive;
}

// why: OpenSSH 9.6 (CVE-2023-51385) refuses these in a host or user name from its command line, because %h, %n and %r
// put the name unquoted into Match exec (and ProxyCommand) shell commands. Tapscope's names come from target URIs,
// saved sessions and the web client, so it checks every name that does not come from the config itself.
// Host: misc.c valid_hostname (newer OpenSSH adds ','). User: valid_ruser, which allows $, \ and spaces for Windows
// accounts but not a trailing backslash, nor a space before '-'.
const HOST_REFUSED = '\'`"$\\;&<>|(){},';
const USER_REFUSED = '\'`";&<>|(){}';

// (iscntrl in the C locale)
function isControl(c: string): boolean {
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}

function shown(c: string): string {
  return isControl(c) ? `the control character ${JSON.stringify(c)}` : /\s/.test(c) ? 'a space' : `"${c}"`;
}

/** Throws E_TARGET_INVALID unless `host` is a host name ssh(1) 9.6 would take from its command line. */
export function checkSshHostName(host: string): void {
  const bad = host.startsWith('-') ? 'starts with "-"' : [...host].find((c) => HOST_REFUSED.includes(c) || /\s/.test(c) || isControl(c));
  if (bad !== undefined) refuseName('host', host, bad.startsWith('starts') ? bad : `contains ${shown(bad)}`);
}

/** Throws E_TARGET_INVALID unless `user` is a user name ssh(1) 9.6 would take from its command line. */
export function checkSshUserName(user: string): void {
  let why: string | null = user.startsWith('-') ? 'starts with "-"' : null;
  for (let i = 0; why === null && i < user.length; i++) {
    const c = user[i] as string;
    if (USER_REFUSED.includes(c) || isControl(c)) why = `contains ${shown(c)}`;
    else if (/\s/.test(c) && user[i + 1] === '-') why = 'has a "-" after a space';
    else if (c === '\\' && i === user.length - 1) why = 'ends with "\\"';
  }
  if (why !== null) refuseName('user', user, why);
}

function refuseName(what: 'host' | 'user', name: string, why: string): never {
  throw new TapscopeError('E_TARGET_INVALID', `The SSH ${what} name ${JSON.stringify(name)} ${why}. Tapscope refuses it, as OpenSSH 9.6 ` +
    `does, because ~/.ssh/config could pass it to a shell (Match exec %${what === 'host' ? 'h' : 'r'}); check the target.`, { [what]: name });
}

/** Parses `[user@]host[:port]` or `ssh://[user@]host[:port]` (IPv6 in brackets); refuses names a shell would read. */
export function parseJump(spec: string): JumpSpec {
  let s = spec.trim();
  if (s.startsWith('ssh://')) s = s.slice(6).replace(/\/$/, '');
  let user: string | null = null;
  const at = s.lastIndexOf('@');
  if (at >= 0) {
    user = decodeURIComponent(s.slice(0, at));
    s = s.slice(at + 1);
  }
  let port: number | null = null;
  let host = s;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = v6[1] as string;
    port = v6[2] ? Number(v6[2]) : null;
  } else {
    const m = /^([^:]+):(\d+)$/.exec(s);
    if (m) {
      host = m[1] as string;
      port = Number(m[2]);
    }
  }
  if (!host || (port !== null && (!Number.isInteger(port) || port < 1 || port > 65535))) {
    throw new TapscopeError('E_TARGET_INVALID', `Not a valid SSH destination: "${spec}". Use user@host:port.`);
  }
  checkSshHostName(host);
  if (user !== null) checkSshUserName(user);
  return { host, user, port };
}

/** Replaces %-tokens (`%%` is a literal %); a token without a value is left as written unless `unknown` says otherwise. */
function expandTokens(value: string, tokens: Record<string, string>, unknown = (token: string): string => `%${token}`): string {
  return value.replace(/%(.)/g, (_m, t: string) => (t === '%' ? '%' : Object.hasOwn(tokens, t) ? (tokens[t] as string) : unknown(t)));
}

/** The ssh_config(5) TOKENS tapscope can compute, for a host as resolved so far. */
function tokenValues(c: { host: string; alias: string; user: string; port: number; hostKeyAlias: string | null }): Record<string, string> {
  const local = hostname();
  const me = userInfo();
  const port = String(c.port);
  return {
    // why: ssh(1)'s ssh_connection_hash, so a ControlPath-style %C names the same file ssh would
    C: createHash('sha1').update(local + c.host + port + c.user).digest('hex'),
    L: local.split('.')[0] as string,
    d: homedir(),
    h: c.host,
    i: String(me.uid),
    k: c.hostKeyAlias ?? c.host,
    l: local,
    n: c.alias,
    p: port,
    r: c.user,
    u: me.username,
  };
}

/**
 * Expands a path option as ssh(1)'s default_client_percent_dollar_expand does, after `~`: %-tokens and `${VAR}` from
 * the environment in one pass. An unknown token, an unset variable or a `${` without `}` is fatal in ssh(1), so it
 * throws rather than use a path ssh would not.
 */
function expandPath(keyword: string, value: string, tokens: Record<string, string>): string {
  const invalid = (why: string) => new TapscopeError('E_TARGET_INVALID', `ssh config: ${keyword} ${value}: ${why}, as ssh(1) also refuses.`);
  return expandTilde(value).replace(/\$\{([^}]*)(\}?)|%([\s\S]?)/g, (_m, name: string | undefined, close: string, t: string | undefined) => {
    if (name !== undefined) {
      if (!close) throw invalid(`\${${name} has no closing "}"`);
      if (!name) throw invalid('"${}" names no environment variable');
      const v = process.env[name];
      if (v === undefined) throw invalid(`the environment variable ${name} is not set`);
      return v;
    }
    if (t === '%') return '%';
    if (t && Object.hasOwn(tokens, t)) return tokens[t] as string;
    throw invalid(t ? `the token %${t} is not one ssh(1) expands there` : 'a "%" ends it');
  });
}

export const DEFAULT_GLOBAL_KNOWN_HOSTS = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];

const DEFAULT_IDENTITIES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

// why: ssh(1) waits for a Match exec however long it takes; tapscope resolves hosts in its own process, which a
// hung command must not hang. After this it kills the command's whole process group (what it started in the
// background too) and refuses to resolve, as ssh(1) does for a command killed by a signal.
// Remaining difference: the command runs in a session of its own (so that its group can be killed), without
// tapscope's controlling terminal: it cannot open /dev/tty, and a Ctrl-C there does not reach it.
const MATCH_EXEC_TIMEOUT_MS = 10_000;

/** What was asked: the name typed, and the user and port given with it (ssh's -l and -p). */
interface Query {
  alias: string;
  user: string | null;
  port: number | null;
  /** how long a Match exec may run */
  execTimeoutMs: number;
}

/** The values obtained so far while reading the config. */
interface Resolution {
  first: Map<string, string[]>;
  identityFiles: string[];
  /** the order ProxyJump and ProxyCommand were first set in */
  proxyOrder: string[];
  /** The host of the final pass, which ssh(1) fixes (lower-cased) before reading the config again. */
  finalHost: string | null;
}

function valueOf(r: Resolution, keyword: string): string | null {
  return r.first.get(keyword)?.[0] ?? null;
}

/** The host as ssh(1) knows it at this point: HostName with %h substituted, else the name typed. */
function currentHost(r: Resolution, q: Query): string {
  return r.finalHost ?? expandTokens(valueOf(r, 'hostname') ?? q.alias, { h: q.alias });
}

function currentUser(r: Resolution, q: Query): string {
  return q.user ?? valueOf(r, 'user') ?? userInfo().username;
}

function currentPort(r: Resolution, q: Query): number {
  const port = valueOf(r, 'port');
  return q.port ?? (port ? Number(port) : 22);
}

function take(r: Resolution, options: SshConfigEntry['options']): void {
  for (const [k, v] of options) {
    if ((k === 'proxyjump' || k === 'proxycommand') && !r.proxyOrder.includes(k)) r.proxyOrder.push(k);
    if (k === 'identityfile') addNew(r.identityFiles, v);
    else if (!r.first.has(k)) r.first.set(k, v);
  }
}

// why: ssh(1) drops a file it already has, so the final pass, which reads the same lines again, adds nothing twice.
function addNew(list: string[], values: string[]): void {
  for (const v of values) if (!list.includes(v)) list.push(v);
}

/**
 * Reads the entries once, in file order, taking the options of each block that applies; returns whether a Match
 * line asks for a final pass.
 */
async function readPass(entries: SshConfigEntry[], r: Resolution, q: Query, finalPass: boolean): Promise<boolean> {
  const applies = new Map<SshConfigEntry, boolean>();
  let wantsFinal = false;
  for (const e of entries) {
    let on: boolean;
    if (e.continues) {
      on = applies.get(e.continues) === true;
    } else {
      // why: like ssh(1), a Match line is evaluated (an exec run) even inside an Include whose block does not apply.
      // Awaited one at a time: the execs run in file order, one after the other, as ssh(1) runs them.
      const own = e.match
        ? await evaluateMatch(e.match, e.source, r, q, finalPass)
        : { matches: hostLineMatches(e.patterns, r, q, finalPass), wantsFinal: false };
      wantsFinal ||= own.wantsFinal;
      on = own.matches && (e.includedBy === undefined || applies.get(e.includedBy) === true);
    }
    applies.set(e, on);
    if (on) take(r, e.options);
  }
  return wantsFinal;
}

// why: the final pass matches Host lines against the resolved host, which ssh(1) re-reads the config with.
function hostLineMatches(patterns: string[] | null, r: Resolution, q: Query, finalPass: boolean): boolean {
  return patterns === null || hostMatches(patterns, finalPass ? currentHost(r, q) : q.alias);
}

const MATCH_CRITERIA = 'all, host, originalhost, user, localuser, exec, canonical and final';

/**
 * Evaluates a Match line as ssh(1)'s match_cfg_line does: every criterion must hold (`!` negates one), `all` stands
 * alone, and an exec runs only while the criteria before it hold. `canonical` and `final` hold only in the final
 * pass: tapscope does not canonicalize host names, so that pass is the only re-read, and ssh(1) matches both in it.
 */
async function evaluateMatch(criteria: string[], source: SshConfigEntry['source'], r: Resolution, q: Query, finalPass: boolean): Promise<{ matches: boolean; wantsFinal: boolean }> {
  const at = source ? `${source.file} line ${source.line}` : 'ssh config';
  const invalid = (why: string) => new TapscopeError('E_TARGET_INVALID', `${at}: ${why}.`);
  let matches = true;
  let wantsFinal = false;
  let count = 0;
  for (let i = 0; i < criteria.length && !(criteria[i] as string).startsWith('#'); i++) {
    const word = criteria[i] as string;
    const negate = word.startsWith('!');
    const name = (negate ? word.slice(1) : word).toLowerCase();
    if (name === 'all') {
      const next = criteria[i + 1];
      if (count > 1 || (next !== undefined && !next.startsWith('#'))) throw invalid(`'${word}' cannot be combined with other Match criteria`);
      return { matches: matches && !negate, wantsFinal };
    }
    count++;
    let holds: boolean;
    if (name === 'canonical' || name === 'final') {
      // why: readconf.c asks for the final pass on any `final`, `!final` included
      wantsFinal ||= name === 'final';
      holds = finalPass;
    } else {
      const arg = criteria[++i];
      if (!arg || arg.startsWith('#')) throw invalid(`Match ${word} needs an argument`);
      holds = await criterionHolds(name, arg, r, q, matches, invalid);
    }
    if (holds === negate) matches = false;
  }
  if (count === 0) throw invalid('Match needs at least one criterion');
  return { matches, wantsFinal };
}

async function criterionHolds(name: string, arg: string, r: Resolution, q: Query, runExec: boolean, invalid: (why: string) => TapscopeError): Promise<boolean> {
  switch (name) {
    case 'host': return hostMatches([arg], currentHost(r, q));
    case 'originalhost': return hostMatches([arg], q.alias);
    case 'user': return patternListMatches([arg], currentUser(r, q), false);
    case 'localuser': return patternListMatches([arg], userInfo().username, false);
    case 'exec': {
      const tokens = tokenValues({ host: currentHost(r, q), alias: q.alias, user: currentUser(r, q), port: currentPort(r, q), hostKeyAlias: valueOf(r, 'hostkeyalias') });
      // why: ssh(1) refuses an unknown token rather than run a command it did not mean
      const command = expandTokens(arg, tokens, (t) => {
        throw invalid(`Match exec uses the token %${t}, which tapscope cannot expand`);
      });
      return runExec && exitsZero(command, q.execTimeoutMs, invalid);
    }
    default:
      // (tagged, localnetwork, version, sessiontype: newer OpenSSH has them; ignoring one would resolve another host than ssh)
      throw invalid(`tapscope cannot evaluate the Match criterion "${name}" (it knows ${MATCH_CRITERIA}); ` +
        'rewrite that block with those criteria or a Host line so tapscope resolves the host as ssh does');
  }
}

/**
 * Runs a Match exec command in the user's shell, as ssh(1) does: true when it exits 0, false for another exit status.
 * Like ssh(1)'s fatal "match exec ... error" (and "Shell ... is not executable"), a shell that cannot start, a command
 * killed by a signal and one that outlasts the timeout throw.
 */
function exitsZero(command: string, timeoutMs: number, invalid: (why: string) => TapscopeError): Promise<boolean> {
  const shell = process.env.SHELL ?? '/bin/sh';
  const failed = (why: string) => invalid(`Match exec '${command}' ${why}; tapscope does not resolve the host, as ssh(1) would not`);
  if (!shell) return Promise.reject(failed('cannot run: $SHELL is empty'));
  return new Promise((resolve, reject) => {
    // why detached: the shell leads a process group of its own, which the timeout kills with everything it started
    const child = spawn(shell, ['-c', command], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
    // (no pid when the shell did not start: 'error' follows)
    const group = child.pid;
    if (group !== undefined) runningGroups.add(group);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (group !== undefined) killGroup(group);
    }, timeoutMs);
    const settle = (): void => {
      clearTimeout(timer);
      if (group !== undefined) runningGroups.delete(group);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      settle();
      reject(failed(`cannot run: the shell ${shell} did not start (${error.code ?? error.message})`));
    });
    child.once('exit', (code, signal) => {
      settle();
      if (timedOut) reject(failed(`did not finish within ${timeoutMs / 1000} s`));
      else if (code === null) reject(failed(`was killed by ${signal ?? 'a signal'}`));
      else resolve(code === 0);
    });
  });
}

/** The process groups of the Match exec commands under way. */
const runningGroups = new Set<number>();

function killGroup(leader: number): void {
  try {
    process.kill(-leader, 'SIGKILL');
  } catch {
    // (the group has ended already)
  }
}

// why: in a session of its own, a command under way would outlive tapscope quitting (a second Ctrl-C while a capture
// starts), where ssh(1)'s would get the terminal's SIGINT
process.on('exit', () => {
  for (const leader of runningGroups) killGroup(leader);
});

/**
 * Resolves an alias against parsed config. `overrides` are what the user typed in the URI (user, port);
 * as with `ssh -p`, command-line values beat the config file. `limits.execTimeoutMs` bounds each Match exec (10 s).
 */
export async function resolveHost(
  entries: SshConfigEntry[],
  alias: string,
  overrides: { user?: string | null; port?: number | null } = {},
  limits: { execTimeoutMs?: number } = {},
): Promise<ResolvedHost> {
  checkSshHostName(alias);
  if (overrides.user != null) checkSshUserName(overrides.user);
  const q: Query = { alias, user: overrides.user ?? null, port: overrides.port ?? null, execTimeoutMs: limits.execTimeoutMs ?? MATCH_EXEC_TIMEOUT_MS };
  const r: Resolution = { first: new Map(), identityFiles: [], proxyOrder: [], finalHost: null };
  if (await readPass(entries, r, q, false)) {
    // why: for `Match final` ssh(1) reads the whole config again with the host fixed as resolved; values obtained stay.
    r.finalHost = currentHost(r, q).toLowerCase();
    await readPass(entries, r, q, true);
  }
  return resolved(r, q);
}

function resolved(r: Resolution, q: Query): ResolvedHost {
  const get = (k: string): string | null => valueOf(r, k);
  // why: ssh.c lower-cases the host once the config is read (`ssh -G` prints it so); hashed known_hosts entries need it
  const hostName = currentHost(r, q).toLowerCase();
  const port = currentPort(r, q);
  const user = currentUser(r, q);
  const tokens = tokenValues({ host: hostName, alias: q.alias, user, port, hostKeyAlias: get('hostkeyalias') });
  const pj = get('proxyjump');
  const agent = get('identityagent');
  const pc = r.first.get('proxycommand')?.join(' ') ?? null;
  // (OpenSSH takes whichever of ProxyJump and ProxyCommand it reads first)
  const commandFirst = pc !== null && pc.toLowerCase() !== 'none' && (pj === null || r.proxyOrder.indexOf('proxycommand') < r.proxyOrder.indexOf('proxyjump'));
  const jumps = pj && pj.toLowerCase() !== 'none' ? (r.first.get('proxyjump') as string[]).join(',').split(',').map(parseJump) : [];
  const ids = r.identityFiles.length > 0 ? r.identityFiles : DEFAULT_IDENTITIES;
  const num = (k: string): number | null => {
    const v = get(k);
    return v !== null && /^\d+$/.test(v) ? Number(v) * 1000 : null;
  };
  return {
    alias: q.alias,
    hostName,
    port,
    user,
    identityFiles: ids.filter((f) => f.toLowerCase() !== 'none').map((f) => expandPath('IdentityFile', f, tokens)),
    identitiesOnly: (get('identitiesonly') ?? 'no').toLowerCase() === 'yes',
    proxyJump: commandFirst ? [] : jumps,
    proxyCommand: commandFirst ? pc : null,
    // why the first line only: as for GlobalKnownHostsFile, ssh(1) takes the first UserKnownHostsFile line (it may name
    // several files); a key in a later block's file is one ssh would not trust
    userKnownHostsFiles: r.first.get('userknownhostsfile')?.filter((f) => f.toLowerCase() !== 'none').map((f) => expandPath('UserKnownHostsFile', f, tokens)) ?? null,
    // why: like OpenSSH, the first GlobalKnownHostsFile line wins (it may name several files); `~` is
    // expanded, percent tokens are not (ssh(1) expands them only in UserKnownHostsFile).
    globalKnownHostsFiles: (r.first.get('globalknownhostsfile') ?? DEFAULT_GLOBAL_KNOWN_HOSTS)
      .filter((f) => f.toLowerCase() !== 'none').map((f) => expandTilde(f)),
    strictHostKeyChecking: get('stricthostkeychecking'),
    connectTimeoutMs: num('connecttimeout'),
    serverAliveIntervalMs: num('serveraliveinterval'),
    // (`none`, SSH_AUTH_SOCK and `$VAR` come through unchanged, as in ssh(1), for connect.ts to read)
    identityAgent: agent === null ? null : expandPath('IdentityAgent', agent, tokens),
  };
}

export function loadSshConfig(path?: string): SshConfigEntry[] {
  const p = path ?? join(homedir(), '.ssh', 'config');
  if (!existsSync(p)) return [];
  return parseSshConfig(readFileSync(p, 'utf8'), { baseDir: join(homedir(), '.ssh'), file: p });
}
