// OpenSSH client configuration (~/.ssh/config) as far as Tapscope needs it: which address, user, port,
// identity files and jump hosts an alias resolves to. Semantics follow ssh_config(5): the first value
// obtained for a keyword wins, IdentityFile accumulates, Host patterns use * ? and ! negation.
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join, isAbsolute, basename } from 'node:path';
import { TapscopeError } from '../../errors.js';

export interface SshConfigEntry {
  /** Host patterns of the block; `null` for keywords before the first Host line (they apply to all). */
  patterns: string[] | null;
  /** Lower-cased keyword → values in file order. */
  options: Array<[string, string[]]>;
  /** Match blocks are not evaluated: they never apply (a conservative choice, noted in resolve()). */
  match?: boolean;
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
  userKnownHostsFiles: string[];
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

/** Splits one config line into keyword and arguments, honouring `key=value` and double quotes. */
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
    // why: only the first '=' (between keyword and value) separates; later ones belong to the value.
    if (!inQuote && (c === ' ' || c === '\t' || (c === '=' && out.length === 0))) {
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

export function parseSshConfig(text: string, opts: { baseDir?: string; depth?: number } = {}): SshConfigEntry[] {
  const entries: SshConfigEntry[] = [{ patterns: null, options: [] }];
  const baseDir = opts.baseDir ?? join(homedir(), '.ssh');
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const toks = tokenizeLine(line);
    const key = (toks[0] ?? '').toLowerCase();
    const args = toks.slice(1);
    const cur = entries[entries.length - 1] as SshConfigEntry;
    if (key === 'host') {
      entries.push({ patterns: args, options: [] });
    } else if (key === 'match') {
      entries.push({ patterns: [], options: [], match: true });
    } else if (key === 'include') {
      if ((opts.depth ?? 0) > 8) throw new TapscopeError('E_TARGET_INVALID', 'ssh config: Include nested too deeply');
      for (const file of args.flatMap((a) => expandInclude(a, baseDir))) {
        const inc = parseSshConfig(readFileSync(file, 'utf8'), { baseDir, depth: (opts.depth ?? 0) + 1 });
        // why: an included file's leading keywords belong to the block that contains the Include line.
        const [head, ...rest] = inc;
        if (head) cur.options.push(...head.options);
        entries.push(...rest);
        if (rest.length > 0) {
          // Keywords after the Include line continue the enclosing block, as in OpenSSH.
          entries.push({ patterns: cur.patterns, options: [], ...(cur.match ? { match: true } : {}) });
        }
      }
    } else {
      cur.options.push([key, args]);
    }
  }
  return entries;
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

function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`, 'i');
}

/** ssh_config(5) pattern list: matches when some positive pattern matches and no negated one does. */
export function hostMatches(patterns: string[], host: string): boolean {
  let positive = false;
  for (const pat of patterns.flatMap((p) => p.split(','))) {
    if (!pat) continue;
    if (pat.startsWith('!')) {
      if (globToRegExp(pat.slice(1)).test(host)) return false;
    } else if (globToRegExp(pat).test(host)) {
      positive = true;
    }
  }
  return positive;
}

export function expandTilde(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return p;
}

/** Parses `[user@]host[:port]` or `ssh://[user@]host[:port]` (IPv6 in brackets). */
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
  return { host, user, port };
}

function expandTokens(value: string, ctx: { host: string; alias: string; user: string; port: number }): string {
  const local = userInfo().username;
  return value.replace(/%([%hdurpnCl])/g, (_m, t: string) => {
    switch (t) {
      case '%': return '%';
      case 'h': return ctx.host;
      case 'n': return ctx.alias;
      case 'd': return homedir();
      case 'u': return local;
      case 'r': return ctx.user;
      case 'p': return String(ctx.port);
      default: return `%${t}`;
    }
  });
}

export const DEFAULT_GLOBAL_KNOWN_HOSTS = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];

const DEFAULT_IDENTITIES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

/**
 * Resolves an alias against parsed config. `overrides` are what the user typed in the URI (user, port);
 * as with `ssh -p`, command-line values beat the config file.
 */
export function resolveHost(
  entries: SshConfigEntry[],
  alias: string,
  overrides: { user?: string | null; port?: number | null } = {},
): ResolvedHost {
  const first = new Map<string, string[]>();
  const identityFiles: string[] = [];
  const knownHosts: string[] = [];
  /** the order ProxyJump and ProxyCommand were first set in */
  const proxyOrder: string[] = [];
  for (const e of entries) {
    if (e.match) continue;
    if (e.patterns !== null && !hostMatches(e.patterns, alias)) continue;
    for (const [k, v] of e.options) {
      if ((k === 'proxyjump' || k === 'proxycommand') && !proxyOrder.includes(k)) proxyOrder.push(k);
      if (k === 'identityfile') identityFiles.push(...v);
      else if (k === 'userknownhostsfile') knownHosts.push(...v);
      else if (!first.has(k)) first.set(k, v);
    }
  }
  const get = (k: string): string | null => first.get(k)?.[0] ?? null;
  const hostNameRaw = get('hostname') ?? alias;
  const port = overrides.port ?? (get('port') ? Number(get('port')) : 22);
  const user = overrides.user ?? get('user') ?? userInfo().username;
  const hostName = hostNameRaw.replace(/%h/g, alias).replace(/%%/g, '%');
  const ctx = { host: hostName, alias, user, port };
  const pj = get('proxyjump');
  const pc = first.get('proxycommand')?.join(' ') ?? null;
  // (OpenSSH takes whichever of ProxyJump and ProxyCommand it reads first)
  const commandFirst = pc !== null && pc.toLowerCase() !== 'none' && (pj === null || proxyOrder.indexOf('proxycommand') < proxyOrder.indexOf('proxyjump'));
  const jumps = pj && pj.toLowerCase() !== 'none' ? (first.get('proxyjump') as string[]).join(',').split(',').map(parseJump) : [];
  const ids = identityFiles.length > 0 ? identityFiles : DEFAULT_IDENTITIES;
  const num = (k: string): number | null => {
    const v = get(k);
    return v !== null && /^\d+$/.test(v) ? Number(v) * 1000 : null;
  };
  return {
    alias,
    hostName,
    port,
    user,
    identityFiles: ids.filter((f) => f.toLowerCase() !== 'none').map((f) => expandTilde(expandTokens(f, ctx))),
    identitiesOnly: (get('identitiesonly') ?? 'no').toLowerCase() === 'yes',
    proxyJump: commandFirst ? [] : jumps,
    proxyCommand: commandFirst ? pc : null,
    userKnownHostsFiles: knownHosts.map((f) => expandTilde(expandTokens(f, ctx))),
    // why: like OpenSSH, the first GlobalKnownHostsFile line wins (it may name several files); `~` is
    // expanded, percent tokens are not (ssh(1) expands them only in UserKnownHostsFile).
    globalKnownHostsFiles: (first.get('globalknownhostsfile') ?? DEFAULT_GLOBAL_KNOWN_HOSTS)
      .filter((f) => f.toLowerCase() !== 'none').map((f) => expandTilde(f)),
    strictHostKeyChecking: get('stricthostkeychecking'),
    connectTimeoutMs: num('connecttimeout'),
    serverAliveIntervalMs: num('serveraliveinterval'),
    identityAgent: get('identityagent'),
  };
}

export function loadSshConfig(path?: string): SshConfigEntry[] {
  const p = path ?? join(homedir(), '.ssh', 'config');
  if (!existsSync(p)) return [];
  return parseSshConfig(readFileSync(p, 'utf8'), { baseDir: join(homedir(), '.ssh') });
}
