// Opens an authenticated ssh2 connection to a host the way the OpenSSH client would: ssh_config
// resolution, ProxyJump chains, known_hosts verification per hop, and authentication by agent, key
// files (prompting for passphrases), keyboard-interactive and password through the PromptFn.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type AnyAuthMethod, type AuthenticationType, type Client, type ClientChannel, type ConnectConfig, type NegotiatedAlgorithms, type ParsedKey, type ServerHostKeyAlgorithm } from 'ssh2';
import { TapscopeError } from '../../errors.js';
import { expandTilde } from '../../util/paths.js';
import type { PromptFn } from '../target.js';

// why: ssh2 is CommonJS; Node's ESM loader does not see its named exports, only the default one.
const { Client: SshClient, utils } = ssh2;
import { loadSshConfig, resolveHost, type ResolvedHost } from './config.js';
import { appendKnownHost, checkHostKey, fingerprintSha256, hostKeyAlgorithmsFor, keyTypeOf, knownHostsName, knownKeyTypes, loadKnownHosts, type KnownHosts } from './known-hosts.js';

export interface SshConnectOptions {
  prompt?: PromptFn;
  acceptNewHostKey?: boolean;
  sshConfigPath?: string;
  knownHostsPath?: string;
  /**
   * The global (system-wide) known_hosts files, read but never written; overrides GlobalKnownHostsFile
   * and the default /etc/ssh/ssh_known_hosts{,2}.
   */
  globalKnownHostsPaths?: string[];
  /** Seconds between keepalives; a dead link is noticed after 3 missed ones. */
  keepaliveMs?: number;
  readyTimeoutMs?: number;
}

export interface SshDestination {
  host: string;
  user: string | null;
  port: number | null;
}

export interface SshConnection {
  client: Client;
  /** Every hop's client, jump hosts first, the target last. */
  hops: Client[];
  resolved: ResolvedHost;
  /** Settles when the target connection closes for any reason. */
  closed: Promise<void>;
  end(): void;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
}

const negotiated = new WeakMap<Client, NegotiatedAlgorithms>();

/** The algorithms a connection negotiated (cipher, kex, host key), for notes and benchmarks. */
export function negotiatedOf(client: Client): NegotiatedAlgorithms | null {
  return negotiated.get(client) ?? null;
}

/** Secrets asked once per target and reused on reconnect (passwords, passphrases). */
export type SecretCache = Map<string, string>;

export async function connectSsh(dest: SshDestination, opts: SshConnectOptions, secrets: SecretCache = new Map()): Promise<SshConnection> {
  const config = loadSshConfig(opts.sshConfigPath);
  const target = await resolveHost(config, dest.host, { user: dest.user, port: dest.port });
  // (one after the other: their Match exec commands run in order, as ssh(1) runs them)
  const jumps: ResolvedHost[] = [];
  for (const j of target.proxyJump) jumps.push(await resolveHost(config, j.host, { user: j.user, port: j.port }));
  // why refuse: dialling the host straight would go around the proxy the config says reaches it (a bastion)
  for (const hop of [target, ...jumps]) {
    if (hop.proxyCommand !== null) {
      throw new TapscopeError('E_TARGET_INVALID', `~/.ssh/config reaches ${hop.alias} through ProxyCommand (${hop.proxyCommand}), which tapscope does not run; ` +
        'give it a ProxyJump instead (ssh -J), or run tapscope where the host is reachable directly', { host: hop.alias });
    }
  }
  const hops: Client[] = [];
  try {
    let sock: ClientChannel | undefined;
    for (const hop of [...jumps, target]) {
      const client = await connectHop(hop, opts, secrets, sock);
      hops.push(client);
      if (hop !== target) {
        const next = jumps[hops.length] ?? target;
        sock = await new Promise<ClientChannel>((resolve, reject) => {
          client.forwardOut('127.0.0.1', 0, next.hostName, next.port, (err, ch) => {
            if (err) {
              reject(new TapscopeError('E_TARGET_UNREACHABLE',
                `Jump host ${hop.alias} could not reach ${next.hostName}:${next.port}: ${err.message}. Check ProxyJump and that the host is up.`));
            } else resolve(ch);
          });
        });
      }
    }
  } catch (e) {
    for (const h of hops.reverse()) h.end();
    throw e;
  }
  const client = hops[hops.length - 1] as Client;
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  return {
    client,
    hops,
    resolved: target,
    closed,
    end() {
      for (const h of [...hops].reverse()) h.end();
    },
  };
}

/** The user's known_hosts files (new keys go to the first) and the global ones (read only), as ssh(1) reads them. */
function knownHostsFiles(hop: ResolvedHost, opts: SshConnectOptions): { user: string[]; global: string[] } {
  const global = opts.globalKnownHostsPaths ?? hop.globalKnownHostsFiles;
  if (opts.knownHostsPath) return { user: [opts.knownHostsPath], global };
  if (hop.userKnownHostsFiles !== null) return { user: hop.userKnownHostsFiles, global };
  return { user: [join(homedir(), '.ssh', 'known_hosts'), join(homedir(), '.ssh', 'known_hosts2')], global };
}

/** The names a hop is looked up under in known_hosts: its address (with port) and its alias. */
function knownHostsNames(hop: ResolvedHost): string[] {
  const name = knownHostsName(hop.hostName, hop.port);
  return hop.alias !== hop.hostName ? [name, knownHostsName(hop.alias, hop.port)] : [name];
}

/** A hop's known_hosts as read once, when the hop starts: the files, the names looked up, and the parsed lines. */
interface HopKnownHosts {
  /** the user's files; a key accepted is appended to the first */
  user: string[];
  names: string[];
  known: KnownHosts;
}

// why: each hop reads when it starts (not once for the whole chain), so it sees a key an earlier hop just accepted.
function readHopKnownHosts(hop: ResolvedHost, opts: SshConnectOptions): HopKnownHosts {
  const { user, global } = knownHostsFiles(hop, opts);
  return { user, names: knownHostsNames(hop), known: loadKnownHosts([...user, ...global]) };
}

// ssh2's default host key algorithm order (lib/protocol/constants.js DEFAULT_SERVER_HOST_KEY).
const DEFAULT_HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/**
 * The host key algorithms to offer, as OpenSSH's order_hostkeyalgs: those that yield a key type already
 * recorded for the host first (in the default order), then the rest. Null when nothing is known (ssh2's
 * defaults apply), so a known host is not called unknown because the server has a preferred key of
 * another type too.
 */
export function hostKeyAlgorithmOrder(knownTypes: string[]): ServerHostKeyAlgorithm[] | null {
  const preferred = new Set<string>(knownTypes.flatMap(hostKeyAlgorithmsFor));
  if (preferred.size === 0) return null;
  const first = DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => preferred.has(a));
  return [...first, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !preferred.has(a))];
}

async function verifyHostKey(hop: ResolvedHost, key: Buffer, opts: SshConnectOptions, kh: HopKnownHosts): Promise<void> {
  const { user, names } = kh;
  const name = names[0] as string;
  const fp = fingerprintSha256(key);
  const type = keyTypeOf(key);
  const res = checkHostKey(kh.known, names, key);
  if (res.status === 'known') return;
  if (res.status === 'revoked') {
    throw new TapscopeError('E_HOST_KEY_CHANGED',
      `REVOKED HOST KEY DETECTED: the ${type} host key of ${name} (${fp}) is marked @revoked in ${res.file}:${res.line}. ` +
      'It may have been stolen; refusing to connect. Ask the host\'s owner for its new key.', { fingerprint: fp, file: res.file, line: res.line });
  }
  if (res.status === 'changed') {
    const inGlobal = !user.includes(res.file);
    throw new TapscopeError('E_HOST_KEY_CHANGED',
      `The host key of ${name} has changed: it now presents ${type} ${fp}, but ${res.file}:${res.line} holds another key. ` +
      'Someone could be intercepting the connection. ' +
      (inGlobal
        ? `That file is the system-wide known_hosts: ask its administrator to update the key if the host was reinstalled.`
        : `If the host was reinstalled, remove the old key with \`ssh-keygen -R ${JSON.stringify(name)}\` and connect again.`),
      { fingerprint: fp, file: res.file, line: res.line });
  }
  const other = res.otherTypes.length > 0
    ? ` Keys of another type (${res.otherTypes.join(', ')}) are already known for this host, but the server did not offer one; ` +
      'the host may have been reinstalled, or someone could be intercepting the connection.'
    : '';
  const message = `The authenticity of host '${name}' can't be established. ${type} key fingerprint is ${fp}.${other}`;
  const policy = (hop.strictHostKeyChecking ?? '').toLowerCase();
  let accept = opts.acceptNewHostKey === true || policy === 'accept-new' || policy === 'no' || policy === 'off';
  if (!accept && opts.prompt && policy !== 'yes') {
    accept = (await opts.prompt({ kind: 'host-key', message: `${message} Trust it and continue?`, fingerprint: fp })) === true;
  }
  if (!accept) {
    throw new TapscopeError('E_HOST_KEY_UNKNOWN',
      `${message} Verify it with the host's owner (ssh-keygen -lf /etc/ssh/ssh_host_${type.replace(/^ssh-|-.*$/g, '')}_key.pub on the host), then accept it.`,
      { fingerprint: fp, keyType: type, host: name, ...(res.otherTypes.length > 0 ? { knownTypes: res.otherTypes } : {}) });
  }
  if (user.length === 0) return;
  appendKnownHost(user[0] as string, name, key);
}

type Attempt = () => Promise<AnyAuthMethod | null>;

function authAttempts(hop: ResolvedHost, opts: SshConnectOptions, secrets: SecretCache): Array<{ method: AuthenticationType; run: Attempt }> {
  const out: Array<{ method: AuthenticationType; run: Attempt }> = [];
  const username = hop.user;
  const agentSock = hop.identityAgent && hop.identityAgent.toLowerCase() !== 'none'
    ? expandTilde(hop.identityAgent.replace(/^\$SSH_AUTH_SOCK$/, process.env.SSH_AUTH_SOCK ?? ''))
    : hop.identityAgent?.toLowerCase() === 'none' ? null : process.env.SSH_AUTH_SOCK ?? null;
  if (agentSock && !hop.identitiesOnly && existsSync(agentSock)) {
    out.push({ method: 'publickey', run: async () => ({ type: 'agent', username, agent: agentSock }) });
  }
  for (const file of hop.identityFiles) {
    if (!existsSync(file)) continue;
    out.push({
      method: 'publickey',
      run: async () => {
        const data = readFileSync(file);
        let parsed = utils.parseKey(data);
        const cacheKey = `passphrase:${file}`;
        for (let tries = 0; parsed instanceof Error && /encrypted|passphrase/i.test(parsed.message) && tries < 3; tries++) {
          let pass = secrets.get(cacheKey);
          if (pass === undefined || tries > 0) {
            if (!opts.prompt) return null;
            const answer = await opts.prompt({ kind: 'passphrase', message: `Enter passphrase for key '${file}':`, echo: false });
            if (typeof answer !== 'string') return null;
            pass = answer;
          }
          parsed = utils.parseKey(data, pass);
          if (!(parsed instanceof Error)) secrets.set(cacheKey, pass);
        }
        if (parsed instanceof Error) return null;
        const key = (Array.isArray(parsed) ? parsed[0] : parsed) as ParsedKey;
        return { type: 'publickey', username, key };
      },
    });
  }
  if (opts.prompt) {
    const prompt = opts.prompt;
    out.push({
      method: 'keyboard-interactive',
      run: async () => ({
        type: 'keyboard-interactive',
        username,
        prompt(_name, instructions, _lang, prompts, finish) {
          void (async () => {
            const answers: string[] = [];
            for (const p of prompts) {
              // why: servers ask for the account password this way when PasswordAuthentication is off.
              const isPassword = /password/i.test(p.prompt) && !p.echo;
              const cached = isPassword ? secrets.get(`password:${username}@${hop.hostName}`) : undefined;
              const a = cached ?? (await prompt({
                kind: isPassword ? 'password' : 'keyboard-interactive',
                message: [instructions, p.prompt].filter(Boolean).join('\n'),
                echo: p.echo ?? false,
              }));
              if (isPassword && typeof a === 'string') secrets.set(`password:${username}@${hop.hostName}`, a);
              answers.push(typeof a === 'string' ? a : '');
            }
            finish(answers);
          })();
        },
      }),
    });
    for (let i = 0; i < 3; i++) {
      out.push({
        method: 'password',
        run: async () => {
          const cacheKey = `password:${username}@${hop.hostName}`;
          let password = i === 0 ? secrets.get(cacheKey) : undefined;
          if (password === undefined) {
            const a = await prompt({ kind: 'password', message: `${username}@${hop.hostName}'s password:`, echo: false });
            if (typeof a !== 'string') return null;
            password = a;
          }
          secrets.set(cacheKey, password);
          return { type: 'password', username, password };
        },
      });
    }
  }
  return out;
}

function connectHop(hop: ResolvedHost, opts: SshConnectOptions, secrets: SecretCache, sock?: ClientChannel): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new SshClient();
    const kh = readHopKnownHosts(hop, opts);
    let hostKeyError: TapscopeError | null = null;
    let settled = false;
    const attempts = authAttempts(hop, opts, secrets);
    const tried: string[] = [];
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(e);
    };
    const cfg: ConnectConfig = {
      username: hop.user,
      readyTimeout: opts.readyTimeoutMs ?? hop.connectTimeoutMs ?? 20_000,
      keepaliveInterval: opts.keepaliveMs ?? hop.serverAliveIntervalMs ?? 2000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        verifyHostKey(hop, key, opts, kh).then(() => verify(true), (e: unknown) => {
          hostKeyError = e instanceof TapscopeError ? e : new TapscopeError('E_INTERNAL', String(e));
          verify(false);
        });
      },
      authHandler: (methodsLeft, _partial, next) => {
        void (async () => {
          while (attempts.length > 0) {
            const a = attempts.shift() as { method: AuthenticationType; run: Attempt };
            if (methodsLeft && !methodsLeft.includes(a.method)) continue;
            const m = await a.run().catch(() => null);
            if (m) {
              tried.push(m.type);
              next(m);
              return;
            }
          }
          next(false as unknown as AuthenticationType);
        })();
      },
    };
    const order = hostKeyAlgorithmOrder(knownKeyTypes(kh.known, kh.names));
    if (order) cfg.algorithms = { serverHostKey: order };
    if (sock) cfg.sock = sock;
    else {
      cfg.host = hop.hostName;
      cfg.port = hop.port;
    }
    client.once('handshake', (n: NegotiatedAlgorithms) => negotiated.set(client, n));
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (hostKeyError) return fail(hostKeyError);
      const where = `${hop.user}@${hop.hostName}:${hop.port}`;
      if (err.level === 'client-authentication') {
        return fail(new TapscopeError('E_AUTH_FAILED',
          `Authentication to ${where} failed (tried: ${tried.join(', ') || 'nothing usable'}). Load your key into ssh-agent, set IdentityFile in ~/.ssh/config, or enter the password when asked.`));
      }
      fail(new TapscopeError('E_TARGET_UNREACHABLE',
        `Cannot reach ${where}${hop.alias !== hop.hostName ? ` (${hop.alias})` : ''}: ${err.code ?? ''} ${err.message}. Check the address, port and network path.`.replace(/\s+/g, ' ')));
    });
    client.on('close', () => fail(hostKeyError ?? new TapscopeError('E_TARGET_UNREACHABLE', `The connection to ${hop.hostName}:${hop.port} closed during the handshake.`)));
    client.connect(cfg);
  });
}

/** Runs one command and collects its output; `stdin` is written then closed. */
export function execCollect(client: Client, command: string, stdin?: Buffer | string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(new TapscopeError('E_TARGET_UNREACHABLE', `Could not run a command over SSH: ${err.message}`));
      const out: Buffer[] = [];
      const errs: Buffer[] = [];
      let code: number | null = null;
      let signal: string | null = null;
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => errs.push(d));
      ch.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s ?? null;
      });
      ch.on('close', () => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(errs).toString('utf8') }));
      if (stdin !== undefined) ch.end(stdin);
      else ch.end();
    });
  });
}
