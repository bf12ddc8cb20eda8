// The SSH capture target: one host reached with OpenSSH semantics (ssh_config, known_hosts, agent,
// ProxyJump). It uploads the helper into a private temp dir, runs it as root (directly, `sudo -n`, or
// sudo with a password), streams its pcapng back over the exec channel, reconnects and redeploys when
// the connection drops, and leaves nothing behind on stop.
import { PassThrough } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { TapscopeError, isTapscopeError } from '../errors.js';
import {
  CompleteBlocks, HelperSet, MKTEMP_SCRIPT, builtHelper, checkUploadDigest, durationElapsed, helperArgs, helperVersion, killScript, onLines, STOP_GRACE_MS, stopOverrunNote,
  remainingDuration, runCommandLine, shQuote, madeTempDir, uploadScript,
} from './deploy.js';
import { retryWithBackoff, type Backoff } from './retry.js';
import { parseJump } from './ssh/config.js';
import { connectSsh, execCollect, type ExecResult, type SecretCache, type SshConnectOptions, type SshConnection, type SshDestination } from './ssh/connect.js';
import {
  StartCancelled, abortedPromise,
  type CaptureHandle, type CaptureHandlers, type CaptureOptions, type CaptureTarget, type NodeInfo, type NodePhase, type PreflightReport, type PromptFn,
  type ShellChannel,
} from './target.js';

export interface SshTargetOptions {
  prompt?: PromptFn;
  acceptNewHostKey?: boolean;
  sshConfigPath?: string;
  knownHostsPath?: string;
  helperPath?: string;
  /** Reconnect backoff in ms: first delay and cap. Defaults 500 and 8000. */
  backoffMs?: { first: number; max: number };
  keepaliveMs?: number;
}

/** Parses `ssh://[user@]host[:port]` (or the bare `user@host:port` form). */
export function parseSshUri(uri: string): SshDestination {
  const s = uri.startsWith('ssh://') ? uri.slice(6) : uri;
  if (!s || (s.includes('/') && !s.endsWith('/'))) {
    throw new TapscopeError('E_TARGET_INVALID', `Not an SSH target: "${uri}". Use ssh://user@host:port.`);
  }
  return parseJump(s.replace(/\/$/, ''));
}

interface Facts {
  arch: string | null;
  kernel: string | null;
  btf: boolean;
  uid: number | null;
  sudo: 'nopasswd' | 'password' | 'none';
  /** what `sudo -n true` said when it failed (a password is required; requiretty; not in sudoers) */
  sudoMessage: string | null;
  sshConnection: string | null;
}

const FACTS_SCRIPT = [
  'echo "arch=$(uname -m)"',
  'echo "kernel=$(uname -r)"',
  'if [ -r /sys/kernel/btf/vmlinux ]; then echo btf=1; else echo btf=0; fi',
  'echo "uid=$(id -u)"',
  // (sudo's own message is kept: "you must have a tty" (requiretty) and "not in the sudoers file" are no password matter)
  'if [ "$(id -u)" = 0 ]; then echo sudo=none; elif ! command -v sudo >/dev/null 2>&1; then echo sudo=none; elif m=$(LC_ALL=C sudo -n true 2>&1 </dev/null); then echo sudo=nopasswd; else echo sudo=password; echo "sudomsg=$(printf %s "$m" | tr "\\n" "\\t")"; fi',
  'echo "sshconn=$SSH_CONNECTION"',
].join('; ');

async function readFacts(client: Client): Promise<Facts> {
  const r = await execCollect(client, FACTS_SCRIPT);
  const kv = new Map<string, string>();
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const uid = kv.get('uid');
  return {
    arch: kv.get('arch') || null,
    kernel: kv.get('kernel') || null,
    btf: kv.get('btf') === '1',
    uid: uid && /^\d+$/.test(uid) ? Number(uid) : null,
    sudo: (kv.get('sudo') as Facts['sudo']) ?? 'none',
    sudoMessage: kv.get('sudomsg') || null,
    sshConnection: kv.get('sshconn') || null,
  };
}

/** `$SSH_CONNECTION` is "client_ip client_port server_ip server_port" as the server sees it. */
export function excludeFromSshConnection(v: string | null): { client: string; server: string } | null {
  const p = (v ?? '').trim().split(/\s+/);
  if (p.length !== 4) return null;
  const ep = (ip: string, port: string) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
  return { client: ep(p[0] as string, p[1] as string), server: ep(p[2] as string, p[3] as string) };
}

type Privilege = { kind: 'root' } | { kind: 'sudo' } | { kind: 'sudo-password'; password: string };

/**
 * What sudo's message (in the C locale) says when it is not a password matter: the user may not use sudo at all, or
 * sudo wants a terminal (Defaults requiretty). Such a refusal is the same whatever password is given, so it is said
 * at once, with what to do. null for anything else (a password is required, a wrong one).
 */
export function sudoRefusal(message: string, user: string, node: string): TapscopeError | null {
  // (one line of what sudo said, without its complaints about this host's name)
  const said = message.split(/[\n\t]/).map((l) => l.trim().replace(/^sudo: /, '')).filter((l) => l && !/^unable to resolve host/.test(l)).join('; ');
  if (/not in the sudoers file|is not allowed to run sudo|may not run sudo/i.test(said)) {
    return new TapscopeError('E_SUDO_REQUIRED', `User ${user} may not use sudo on ${node} (sudo said: "${said}"). Capture needs root: grant ${user} sudo (for example \`${user} ALL=(ALL) ALL\` in /etc/sudoers.d/) or connect as root.`);
  }
  if (/must have a tty|requires a tty|no tty present/i.test(said)) {
    return new TapscopeError('E_SUDO_REQUIRED', `sudo on ${node} requires a terminal for ${user} (Defaults requiretty; sudo said: "${said}"). Capture runs sudo without one: add \`Defaults:${user} !requiretty\` to the sudoers (visudo), or connect as root.`);
  }
  return null;
}

/** The secret cache's key for the sudo password sudo took. */
const SUDO_PASSWORD = 'sudo-password';

/** sudo's answer to a wrong password (C locale). */
const WRONG_PASSWORD = /Sorry, try again|incorrect password|no password was provided|Authentication failure|a password is required/i;

function privilegePrefix(p: Privilege): string[] {
  if (p.kind === 'root') return [];
  if (p.kind === 'sudo') return ['sudo', '-n'];
  // why: -k makes sudo always read the password we feed, so stdin never depends on cached credentials.
  return ['sudo', '-k', '-S', '-p', ''];
}

export class SshTarget implements CaptureTarget {
  readonly kind = 'ssh' as const;
  readonly uri: string;
  private readonly dest: SshDestination;
  private readonly opts: SshTargetOptions;
  private readonly secrets: SecretCache = new Map();
  private conn: SshConnection | null = null;
  private connecting: Promise<SshConnection> | null = null;

  constructor(uri: string, opts: SshTargetOptions) {
    this.uri = uri;
    this.dest = parseSshUri(uri);
    this.opts = opts;
  }

  /** The node name: the host as the user wrote it (an ssh_config alias stays an alias). */
  get nodeName(): string {
    return this.dest.host;
  }

  private connectOpts(): SshConnectOptions {
    const o: SshConnectOptions = {};
    if (this.opts.prompt) o.prompt = this.opts.prompt;
    if (this.opts.acceptNewHostKey !== undefined) o.acceptNewHostKey = this.opts.acceptNewHostKey;
    if (this.opts.sshConfigPath) o.sshConfigPath = this.opts.sshConfigPath;
    if (this.opts.knownHostsPath) o.knownHostsPath = this.opts.knownHostsPath;
    if (this.opts.keepaliveMs) o.keepaliveMs = this.opts.keepaliveMs;
    return o;
  }

  /** A fresh connection (captures own theirs so close() does not stop them). */
  openConnection(): Promise<SshConnection> {
    return connectSsh(this.dest, this.connectOpts(), this.secrets);
  }

  private async shared(): Promise<SshConnection> {
    if (this.conn) return this.conn;
    this.connecting ??= this.openConnection().then((c) => {
      this.conn = c;
      void c.closed.then(() => {
        if (this.conn === c) this.conn = null;
      });
      return c;
    }).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private checkNode(node: string): void {
    if (node !== this.nodeName) {
      throw new TapscopeError('E_TARGET_INVALID', `Unknown node "${node}": this SSH target has one node, "${this.nodeName}".`);
    }
  }

  async listNodes(): Promise<NodeInfo[]> {
    const c = await this.shared();
    const f = await readFacts(c.client);
    return [{ name: this.nodeName, ready: true, kernel: f.kernel, arch: f.arch, address: c.resolved.hostName }];
  }

  async preflight(nodes?: string[]): Promise<PreflightReport[]> {
    for (const n of nodes ?? []) this.checkNode(n);
    const c = await this.shared();
    const f = await readFacts(c.client);
    const problems: string[] = [];
    // (a host whose `uname -m` could not be read has no helper: '' is no architecture)
    const built = builtHelper(f.arch ?? '', this.opts.helperPath);
    if (!built) problems.push(`No helper is built for architecture ${f.arch ?? 'unknown'}.`);
    if (!f.btf) problems.push('The kernel has no BTF (/sys/kernel/btf/vmlinux): eBPF mode is unavailable, AF_PACKET will be used.');
    let privileged: PreflightReport['privileged'] = f.uid === 0 ? 'root' : f.sudo === 'nopasswd' ? 'sudo' : f.sudo === 'password' ? 'sudo-password' : 'none';
    if (privileged === 'none') problems.push(`User ${c.resolved.user} is not root and cannot use sudo: capture needs root. Connect as root or grant sudo.`);
    if (privileged === 'sudo-password') {
      const refused = sudoRefusal(f.sudoMessage ?? '', c.resolved.user, this.nodeName) ?? await this.sudoWithKnownPassword(c, c.resolved.user);
      if (refused) {
        privileged = 'none';
        problems.push(refused.message);
      }
    }
    const version = built ? helperVersion(built) : null;
    return [{ node: this.nodeName, arch: f.arch, kernel: f.kernel, btf: f.btf, privileged, helperVersion: version, problems }];
  }

  /**
   * Preflight: a user who needs a sudo password may still not be allowed sudo at all, which sudo only says once it has
   * a password. Tried (once, without asking) with a password this target already holds: the sudo password given
   * before, or the login password the connection was accepted with. The refusal, or null (allowed, or not known).
   */
  private async sudoWithKnownPassword(c: SshConnection, user: string): Promise<TapscopeError | null> {
    const password = this.secrets.get(SUDO_PASSWORD) ?? this.secrets.get(`password:${user}@${c.resolved.hostName}`);
    if (password === undefined) return null;
    const r = await this.trySudoPassword(c.client, password).catch(() => null);
    if (!r || r.code === 0) return null;
    return sudoRefusal(r.stderr, user, this.nodeName);
  }

  /** Runs `sudo true` with the password and gives sudo's answer; a password sudo takes is kept for this target. */
  private async trySudoPassword(client: Client, password: string): Promise<ExecResult> {
    const r = await execCollect(client, 'LC_ALL=C sudo -k -S -p "" true', `${password}\n`);
    if (r.code === 0) this.secrets.set(SUDO_PASSWORD, password);
    return r;
  }

  /** Decides how to become root on this connection, asking for the sudo password once. */
  async privilege(client: Client, facts: Facts, user: string): Promise<Privilege> {
    if (facts.uid === 0) return { kind: 'root' };
    if (facts.sudo === 'nopasswd') return { kind: 'sudo' };
    if (facts.sudo === 'none') {
      throw new TapscopeError('E_SUDO_REQUIRED', `User ${user} on ${this.nodeName} is not root and sudo is not available. Capture needs root: connect as root or install and configure sudo.`);
    }
    // (requiretty: no password helps, so none is asked for)
    const refused = sudoRefusal(facts.sudoMessage ?? '', user, this.nodeName);
    if (refused) throw refused;
    for (let attempt = 0; attempt < 3; attempt++) {
      let password = attempt === 0 ? this.secrets.get(SUDO_PASSWORD) : undefined;
      if (password === undefined) {
        const a = this.opts.prompt
          ? await this.opts.prompt({ kind: 'sudo-password', message: `[sudo] password for ${user} on ${this.nodeName}:`, echo: false })
          : null;
        if (typeof a !== 'string') {
          throw new TapscopeError('E_SUDO_REQUIRED', `User ${user} on ${this.nodeName} needs a sudo password and none was given. Enter it when asked, or allow NOPASSWD for the helper.`);
        }
        password = a;
      }
      const r = await this.trySudoPassword(client, password);
      if (r.code === 0) return { kind: 'sudo-password', password };
      this.secrets.delete(SUDO_PASSWORD);
      // why: only a wrong password is worth asking again; "not in the sudoers file" comes with the right one, and each
      // try is an incident sudo logs or mails
      const no = sudoRefusal(r.stderr, user, this.nodeName);
      if (no) throw no;
      if (!WRONG_PASSWORD.test(r.stderr)) {
        const said = r.stderr.replace(/\s+/g, ' ').trim();
        throw new TapscopeError('E_SUDO_REQUIRED', `sudo on ${this.nodeName} failed for ${user}${said ? `: ${said}` : ` (exit ${r.code})`}. Capture needs root: check the user's sudo rights, or connect as root.`);
      }
    }
    throw new TapscopeError('E_AUTH_FAILED', `sudo on ${this.nodeName} rejected the password three times.`);
  }

  async start(options: CaptureOptions, handlers: CaptureHandlers, signal?: AbortSignal): Promise<CaptureHandle> {
    for (const n of options.nodes ?? []) this.checkNode(n);
    const run = new SshCapture(this, options, handlers, new HelperSet(this.opts.helperPath), this.opts.backoffMs ?? { first: 500, max: 8000 });
    await run.begin(signal);
    return run.handle();
  }

  async openShell(node: string): Promise<ShellChannel> {
    this.checkNode(node);
    const c = await this.shared();
    const ch = await new Promise<ClientChannel>((resolve, reject) => {
      c.client.shell({ term: 'xterm-256color', cols: 80, rows: 24 }, (err, s) => (err ? reject(new TapscopeError('E_TARGET_UNREACHABLE', `Could not open a shell on ${node}: ${err.message}`)) : resolve(s)));
    });
    return channelToShell(ch);
  }

  async close(): Promise<void> {
    const c = this.conn ?? (this.connecting ? await this.connecting.catch(() => null) : null);
    this.conn = null;
    c?.end();
  }
}

function channelToShell(ch: ClientChannel): ShellChannel {
  let exitCode: number | null = null;
  ch.on('exit', (code: number | null) => {
    exitCode = code;
  });
  return {
    write: (d) => void ch.write(d),
    resize: (cols, rows) => void ch.setWindow(rows, cols, 0, 0),
    onData(cb) {
      const f = (d: Buffer) => cb(d);
      ch.on('data', f);
      ch.stderr.on('data', f);
      return () => {
        ch.off('data', f);
        ch.stderr.off('data', f);
      };
    },
    onExit(cb) {
      const f = () => cb(exitCode);
      ch.once('close', f);
      return () => ch.off('close', f);
    },
    close: () => void ch.close(),
  };
}

/** One capture on the SSH node: deploy, stream, reconnect on loss, clean up. */
class SshCapture {
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private conn: SshConnection | null = null;
  private channel: ClientChannel | null = null;
  private dir: string | null = null;
  private priv: Privilege | null = null;
  private leftovers: string[] = [];
  /** the start was cancelled (begin's signal): the deployment under way stops at its next step */
  private cancelled = false;
  private phase: NodePhase = 'preflight';
  private readonly stopSignal = new AbortController();
  private reconnecting: Promise<void> | null = null;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((r) => (this.resolveDone = r));
  private readonly notes: string[] = [];
  private readonly startedAt = Date.now();
  private readonly node: string;

  constructor(
    private readonly target: SshTarget,
    private readonly options: CaptureOptions,
    private readonly handlers: CaptureHandlers,
    private readonly helpers: HelperSet,
    private readonly backoff: Backoff,
  ) {
    this.node = target.nodeName;
  }

  handle(): CaptureHandle {
    return { stop: () => this.stop(), done: this.done, notes: this.notes };
  }

  private status(phase: NodePhase, message?: string, error?: TapscopeError): void {
    this.phase = phase;
    this.handlers.onStatus({
      node: this.node,
      phase,
      ...(message ? { message } : {}),
      ...(error ? { error: { code: error.code, message: error.message } } : {}),
    });
  }

  /**
   * First deployment: errors reach the caller of start(). Aborting `signal` before it is done cancels it: the
   * deployment stops at its next step, what it made on the node (its temp dir, a helper already started) is removed,
   * and it rejects with StartCancelled.
   */
  async begin(signal?: AbortSignal): Promise<void> {
    const run = this.deploy();
    try {
      await (signal ? Promise.race([run, abortedPromise(signal)]) : run);
    } catch (e) {
      if (signal?.aborted) throw await this.cancel(run);
      this.status('failed', undefined, asTapscope(e));
      await this.abandon();
      this.resolveDone();
      throw e;
    }
  }

  /** Cancels the first deployment (begin's signal aborted) and cleans up what it made; the error to reject with. */
  private async cancel(run: Promise<void>): Promise<StartCancelled> {
    this.cancelled = true;
    this.stopping = true;
    this.stopSignal.abort();
    // why a bounded wait: the step under way (connecting, a question to the user, the upload) stops at its next
    // checkpoint; an upload over a slow link is not waited for: its connection is closed, which ends it, and its dir
    // is removed over a new one (a command on the old one would queue behind the upload's bytes)
    const settled = await Promise.race([run.then(() => true, () => true), sleep(1500).then(() => false)]);
    const dir = this.dir;
    if (!settled && dir && this.conn) {
      this.conn.end();
      const fresh = this.target.openConnection();
      this.conn = await withTimeout(fresh, 15_000).catch(() => {
        void fresh.then((c) => c.end(), () => undefined);
        return null;
      });
    }
    let left: string[] = [];
    if (this.channel) {
      // (the helper had started: stop it as stop() does)
      left = await this.teardown();
      await this.cleanupConnection();
    } else {
      left = await this.abandon();
    }
    this.status('stopped', 'start cancelled');
    this.resolveDone();
    const removed = dir ? `removed the helper's temp dir ${dir} on ${this.node}` : `nothing had been deployed on ${this.node} yet`;
    return new StartCancelled(this.target.uri, left.length ? `could not remove the helper's temp dir ${dir} on ${this.node}` : removed, left.length && dir ? [`${this.node}:${dir}`] : []);
  }

  /** Throws when the start was cancelled (see cancel()): the deployment goes no further. */
  private checkCancelled(): void {
    if (this.cancelled) throw new TapscopeError('E_TARGET_UNREACHABLE', 'cancelled');
  }

  /**
   * After a failed deployment: removes the temp dir it had made (a partial helper would fill the node's /tmp a little
   * more each try) unless a helper runs from it, and closes the connection. What may be left (dirs not removed).
   */
  private async abandon(): Promise<string[]> {
    const conn = this.conn;
    const dir = this.channel ? null : this.dir;
    if (dir) this.dir = null;
    let left: string[] = [];
    if (dir && conn) {
      // (the dir is the login user's, made before any sudo: removing it needs no privilege)
      const r = await execCollect(conn.client, `rm -rf ${shQuote(dir)}; [ ! -e ${shQuote(dir)} ] && echo gone`).catch(() => null);
      if (!r || !r.stdout.toString().includes('gone')) left = [dir];
    } else if (dir) {
      left = [dir];
    }
    await this.cleanupConnection();
    return left;
  }

  private async deploy(): Promise<void> {
    this.status('preflight');
    // (a redeploy: the last helper's dir is in leftovers; this one's is set once made)
    this.dir = null;
    const conn = await this.target.openConnection();
    if (this.cancelled) {
      conn.end();
      this.checkCancelled();
    }
    this.conn = conn;
    const facts = await readFacts(conn.client);
    this.checkCancelled();
    const helper = this.helpers.for(facts.arch ?? 'unknown');
    if (!helper) {
      throw new TapscopeError('E_KERNEL_UNSUPPORTED', `${this.node} is ${facts.arch ?? 'an unknown architecture'}; this build has no helper for it (${this.helpers.architectures()} only).`);
    }
    this.priv ??= await this.target.privilege(conn.client, facts, conn.resolved.user);
    this.checkCancelled();
    this.status('deploying', `uploading helper (${helper.data.length} bytes)`);
    const mk = await execCollect(conn.client, ['sh', '-c', MKTEMP_SCRIPT].map(shQuote).join(' '));
    const { dir, passedOver } = madeTempDir(mk, `on ${this.node}`,
      `Set TMPDIR for ${conn.resolved.user} there to a dir on a mount that allows programs (not noexec) and has room.`);
    this.dir = dir;
    if (passedOver.length) this.notes.push(`${this.node}: the helper runs from ${dir}: ${passedOver.join('; ')}.`);
    this.checkCancelled();
    const up = await execCollect(conn.client, uploadScript(dir, helper.data.length), helper.data);
    checkUploadDigest(up.stdout.toString('utf8'), helper.sha256, `${this.node}:${dir}`, up.stderr);
    this.checkCancelled();
    const ex = excludeFromSshConnection(facts.sshConnection);
    const excludes = ex ? [ex.client] : [];
    if (ex && this.notes.length === 0) {
      this.notes.push(`The SSH connection carrying the stream (${ex.client} → ${ex.server} on ${this.node}) is excluded from the capture.`);
    }
    const args = helperArgs({ ...this.options, duration: remainingDuration(this.options, this.startedAt) }, excludes);
    const cmd = runCommandLine(dir, args, privilegePrefix(this.priv));
    const ch = await new Promise<ClientChannel>((resolve, reject) => {
      conn.client.exec(cmd, (err, c) => (err ? reject(new TapscopeError('E_TARGET_UNREACHABLE', `Could not start the helper on ${this.node}: ${err.message}`)) : resolve(c)));
    });
    this.channel = ch;
    if (this.priv.kind === 'sudo-password') ch.write(`${this.priv.password}\n`);
    this.watch(conn, ch, dir);
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    // why on its first bytes: the helper is capturing once it writes its section header, not when the channel opens
    // (a helper that cannot start, e.g. exit 126, must not be reported capturing first)
    ch.once('data', () => {
      if (this.channel === ch && !this.stopping) this.status('streaming');
    });
    ch.pipe(out);
    this.status('running');
    this.handlers.onStream(this.node, out.pipe(new CompleteBlocks()));
  }

  private watch(conn: SshConnection, ch: ClientChannel, dir: string): void {
    let exit: { code: number | null; signal: string | null } | null = null;
    const err = onLines(ch.stderr, (line) => this.status(this.phase, line));
    ch.on('exit', (code: number | null, signal?: string) => {
      exit = { code, signal: signal ?? null };
    });
    let handled = false;
    const onEnd = () => {
      if (handled) return;
      handled = true;
      if (this.stopping) return;
      if (exit) {
        // The helper itself ended (duration reached or it failed): this is not a connection loss.
        void this.finish(exit.code === 0 ? null : new TapscopeError('E_HELPER_EXITED',
          `The helper on ${this.node} exited with ${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`}: ${err.tail().trim().split('\n').slice(-3).join(' ') || 'no message'}`));
        return;
      }
      this.leftovers.push(dir);
      void this.reconnect(conn);
    };
    ch.on('close', onEnd);
    void conn.closed.then(onEnd);
  }

  private async finish(error: TapscopeError | null): Promise<void> {
    await this.cleanupConnection();
    if (error) this.status('failed', error.message, error);
    else this.status('stopped');
    this.resolveDone();
  }

  private async cleanupConnection(): Promise<void> {
    this.conn?.end();
    this.conn = null;
    this.channel = null;
  }

  private async reconnect(lost: SshConnection): Promise<void> {
    lost.end();
    const fromMs = Date.now();
    const reason = `SSH connection to ${this.node} lost`;
    this.handlers.onGap?.({ node: this.node, fromMs, toMs: null, reason });
    const r = await retryWithBackoff(async () => {
      if (durationElapsed(this.options, this.startedAt)) return false;
      this.reconnecting = this.deploy();
      await this.reconnecting.catch(async (e: unknown) => {
        // (a try that got as far as its temp dir removes it: a full node must not fill up more each try)
        await this.abandon();
        throw asTapscope(e);
      });
      return true;
    }, {
      backoff: this.backoff,
      signal: this.stopSignal.signal,
      onWait: (ms) => this.status('reconnecting', `${reason}; retrying in ${(ms / 1000).toFixed(1)} s`),
      fatal: (e) => ['E_HOST_KEY_CHANGED', 'E_HOST_KEY_UNKNOWN', 'E_AUTH_FAILED', 'E_SUDO_REQUIRED'].includes(asTapscope(e).code),
    });
    if (r.outcome === 'stopped') return;
    if (r.outcome === 'failed') return this.finish(asTapscope(r.error));
    if (!r.value) return this.finish(null);
    if (this.stopping) {
      await this.teardown();
      await this.finish(null);
      return;
    }
    this.handlers.onGap?.({ node: this.node, fromMs, toMs: Date.now(), reason });
    await this.removeLeftovers();
  }

  /** Temp dirs of helpers whose connection died: their wrapper removes them; make sure. */
  private async removeLeftovers(): Promise<void> {
    const conn = this.conn;
    if (!conn || !this.priv || this.leftovers.length === 0) return;
    const dirs = this.leftovers.splice(0);
    for (const d of dirs) await this.privExec(conn.client, killScript(d)).catch(() => undefined);
  }

  private privExec(client: Client, script: string): ReturnType<typeof execCollect> {
    const p = this.priv ?? { kind: 'root' as const };
    const cmd = [...privilegePrefix(p), 'sh', '-c', script].map(shQuote).join(' ');
    return execCollect(client, cmd, p.kind === 'sudo-password' ? `${p.password}\n` : undefined);
  }

  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    // why: a redeploy may be half-way; give it a moment to land so its helper is stopped below,
    // and a later landing tears itself down (see reconnect()).
    if (this.reconnecting) await Promise.race([this.reconnecting, sleep(3000)]);
    await this.teardown();
    await this.finish(null);
  }

  /**
   * Stops the current helper (closing its stdin makes the run script signal it), then makes sure its dir is gone; the
   * dir when it could not confirm that (also said in a note).
   */
  private async teardown(): Promise<string[]> {
    const conn = this.conn;
    const ch = this.channel;
    const dir = this.dir;
    if (!conn || !ch) return [];
    const left: string[] = [];
    // Claimed: a second teardown (stop racing a redeploy) finds nothing to do.
    this.channel = null;
    this.dir = null;
    this.status('stopping');
    const closed = new Promise<void>((r) => ch.once('close', () => r()));
    ch.end();
    const stoppedInTime = await Promise.race([closed.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (dir) {
      // Signal through the pid file if still running, remove the dir, and confirm it is gone.
      const r = await this.privExec(conn.client, killScript(dir)).catch(() => null);
      const said = r?.stdout.toString() ?? null;
      if (!said?.includes('gone')) {
        this.notes.push(`Could not confirm removal of ${dir} on ${this.node}; remove it by hand.`);
        left.push(dir);
      }
      // why: what the helper wrote after the channel was given up never arrives: the capture must not read as a clean stop
      const note = stoppedInTime ? null : stopOverrunNote(this.node, said);
      if (note) this.notes.push(note);
    }
    await this.removeLeftovers();
    return left;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`no answer in ${ms / 1000} s`)))]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function asTapscope(e: unknown): TapscopeError {
  if (isTapscopeError(e)) return e;
  return new TapscopeError('E_INTERNAL', e instanceof Error ? e.message : String(e));
}

export function createSshTarget(uri: string, opts: SshTargetOptions = {}): SshTarget {
  return new SshTarget(uri, opts);
}
