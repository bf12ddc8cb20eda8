// Network lab for integration tests: two private network namespaces ("node" and "server") joined by a
// veth pair, plus HTTPS servers with a throwaway CA. Tests capture in the node namespace and talk to
// the server namespace, so nothing touches the host's own interfaces or /etc/hosts.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { watchOutput } from './child-output.js';
import { tsharkClientHellos } from './tshark-ja4.js';

export interface ExecResult { code: number | null; stdout: string; stderr: string }
export interface ExecOptions { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string; cwd?: string }

export interface Lab {
  prefix: string;
  nodeNs: string;
  serverNs: string;
  nodeIp: string;
  serverIp: string;
  /** IPv6 addresses on the same veth (`fd00:<3rd octet of subnet>::1` / `::2`). */
  nodeIp6: string;
  serverIp6: string;
  execIn(ns: string, cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  spawnIn(ns: string, cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  close(): Promise<void>;
}

export interface HttpsServers {
  /** PEM file of the CA that signed the server certificate. */
  ca: string;
  ports: number[];
  /** Names the node namespace resolves to the server (all `*.tapscope.test`). */
  hostnames: string[];
  stop(): Promise<void>;
}

/** Every name `<n>.tapscope.test` the node namespace resolves to the server (via /etc/netns/NS/hosts). */
export const LAB_HOST_LABELS = [
  'curl', 'python', 'node', 'wget', 'gnutls', 'java', 'go', 'nss', 'late', 'www', 'api', 'bench',
  'a', 'b', 'c', 'd', 'e', 'f',
];

export const CACHE_DIR = '/tmp/tapscope-test-cache';

/**
 * tshark's "Decode As" for the lab's TLS server ports that are not 443. why: tshark picks a TCP dissector by the
 * lower port with a registered one; a client's ephemeral port that happens to be registered (44322 is pmproxy's) wins
 * over an unregistered 8443, and its ClientHello is then read as that protocol, not TLS (it made two tests flaky).
 */
export const TSHARK_TLS_PORTS = ['8443', '9443', '4433', '18443'].flatMap((p) => ['-d', `tcp.port==${p},tls`]);
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tls');

/** Runs a command to completion; never rejects on a non-zero exit (the caller checks `code`). */
export function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdin.on('error', () => {});
    if (opts.input !== undefined) child.stdin.end(opts.input); else child.stdin.end();
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => { if (timer) clearTimeout(timer); reject(e); });
    child.on('close', (code) => { if (timer) clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

async function deleteNs(name: string): Promise<void> {
  await run('ip', ['netns', 'pids', name]).then(async (r) => {
    for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
  });
  await run('ip', ['netns', 'delete', name]);
  await rm(`/etc/netns/${name}`, { recursive: true, force: true });
}

/**
 * When `prefix` ends in `-<pid>-` (see `uniquePrefix`), removes namespaces left behind by earlier runs of
 * the same base prefix whose process is gone (a crashed run cannot clean up after itself).
 */
async function deleteStaleLabs(prefix: string): Promise<void> {
  const m = /^(.*-)\d+-$/.exec(prefix);
  if (!m) return;
  const base = m[1]!;
  const list = await run('ip', ['netns', 'list']);
  for (const line of list.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pm = name.startsWith(base) ? /-(\d+)-(node|srv)$/.exec(name.slice(base.length - 1)) : null;
    if (pm && !existsSync(`/proc/${pm[1]}`)) await deleteNs(name);
  }
}

/** A lab prefix unique to this process, so concurrent runs of the same test file do not collide. */
export function uniquePrefix(base: string): string {
  return `${base}${process.pid}-`;
}

/**
 * Creates `${prefix}node` and `${prefix}srv`, each with `lo` up and an `eth0` (veth) on `${subnet}.0/24`:
 * node = `${subnet}.1`, server = `${subnet}.2`. Leftovers of an earlier run with the same prefix are removed first.
 */
export async function createLab(prefix: string, subnet: string): Promise<Lab> {
  const nodeNs = `${prefix}node`;
  const serverNs = `${prefix}srv`;
  const nodeIp = `${subnet}.1`;
  const serverIp = `${subnet}.2`;
  const v6net = `fd00:${subnet.split('.').map((x) => Number(x).toString(16)).join(':')}`;
  const nodeIp6 = `${v6net}::1`;
  const serverIp6 = `${v6net}::2`;
  // why: veth names live in the root namespace until moved and are limited to 15 characters.
  const vethNode = `${prefix}vn`.slice(-15);
  const vethSrv = `${prefix}vs`.slice(-15);
  await deleteStaleLabs(prefix);
  await deleteNs(nodeNs);
  await deleteNs(serverNs);
  await run('ip', ['link', 'delete', vethNode]);
  const children = new Set<ChildProcess>();

  try {
    await must('ip', ['netns', 'add', nodeNs]);
    await must('ip', ['netns', 'add', serverNs]);
    await must('ip', ['link', 'add', vethNode, 'type', 'veth', 'peer', 'name', vethSrv]);
    for (const [veth, ns, ip, ip6] of [[vethNode, nodeNs, nodeIp, nodeIp6], [vethSrv, serverNs, serverIp, serverIp6]] as const) {
      await must('ip', ['link', 'set', veth, 'netns', ns]);
      await must('ip', ['-n', ns, 'link', 'set', veth, 'name', 'eth0']);
      await must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      // why: nodad makes the address usable at once instead of after duplicate address detection
      await must('ip', ['-n', ns, '-6', 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
      await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // why: `ip netns exec` bind-mounts /etc/netns/NS/* over /etc, so clients resolve the test names
    // without touching the host's /etc/hosts and without per-client resolve flags.
    await mkdir(`/etc/netns/${nodeNs}`, { recursive: true });
    const hosts = [`127.0.0.1 localhost`, `${nodeIp} node.lab`, ...LAB_HOST_LABELS.map((l) => `${serverIp} ${l}.tapscope.test`)];
    await writeFile(`/etc/netns/${nodeNs}/hosts`, hosts.join('\n') + '\n');
  } catch (e) {
    await deleteNs(nodeNs);
    await deleteNs(serverNs);
    throw e;
  }

  const nsArgs = (ns: string, cmd: string, args: string[]) => ['netns', 'exec', ns, cmd, ...args];
  return {
    prefix, nodeNs, serverNs, nodeIp, serverIp, nodeIp6, serverIp6,
    execIn: (ns, cmd, args, opts) => run('ip', nsArgs(ns, cmd, args), opts),
    spawnIn: (ns, cmd, args, opts) => {
      const child = spawn('ip', nsArgs(ns, cmd, args), { env: opts?.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    },
    close: async () => {
      for (const c of children) c.kill('SIGKILL');
      await deleteNs(nodeNs);
      await deleteNs(serverNs);
    },
  };
}

/** Writes a CA and a `*.tapscope.test` server certificate signed by it into a fresh temp dir. */
export async function makeTestCa(serverIp: string): Promise<{ dir: string; ca: string; cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tapscope-ca-'));
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  const ext = join(dir, 'ext.cnf');
  await writeFile(ext, `subjectAltName=DNS:*.tapscope.test,DNS:tapscope.test,IP:${serverIp}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  await must('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '3',
    '-subj', '/CN=Tapscope Test CA', '-keyout', caKey, '-out', ca]);
  await must('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=*.tapscope.test', '-keyout', key, '-out', csr]);
  await must('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-days', '3',
    '-extfile', ext, '-out', cert]);
  return { dir, ca, cert, key };
}

// What every test server script gets before its own lines: serve(port, handle) accepts on the port and calls
// handle(connection) for each connection in turn, on a thread of its own, printing what a handler raised.
const PY_SERVE = `import socket, threading
def serve(port, handle):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(8)
    def loop():
        while True:
            c, _ = s.accept()
            try: handle(c)
            except Exception as e: print('server error', port, repr(e), flush=True)
    threading.Thread(target=loop, daemon=True).start()
`;

/**
 * Runs a Python script in the lab's server namespace (or `ns`) (`python3 SCRIPT ...args`) until it prints "ready": a
 * small server of some protocol for a test, which may call serve(port, handle) (PY_SERVE). output() is what it printed
 * since; stop() ends it.
 */
export async function startPythonServer(lab: Lab, dir: string, name: string, script: string, args: string[] = [], ns = lab.serverNs): Promise<{ output(): string; stop(): void }> {
  const file = join(dir, `${name}.py`);
  await writeFile(file, PY_SERVE + script);
  const child = lab.spawnIn(ns, 'python3', [file, ...args]);
  const out = watchOutput(child, ['stdout'], name);
  const err = watchOutput(child, ['stderr'], name);
  await out.waitFor('ready', 60_000).catch((e: Error) => { throw new Error(`${e.message}; its stderr: ${err.text()}`); });
  return { output: out.text, stop: () => { child.kill(); } };
}

/**
 * The ClientHellos tshark reads in a capture, in order: destination port, SNI, JA3 hash and full JA3 string.
 * `options`: more tshark options before the filter, e.g. `-d tcp.port==P,tls` for a port tshark gives another protocol.
 */
export function tsharkHellos(file: string, options: string[] = []): Promise<{ port: number; sni: string; ja3: string; full: string }[]> {
  const fields = ['tcp.dstport', 'tls.handshake.extensions_server_name', 'tls.handshake.ja3', 'tls.handshake.ja3_full'];
  return Promise.resolve(tsharkClientHellos(file, 'tls', { decode: options, fields }).map(({ row }) => ({
    port: Number(row['tcp.dstport']), sni: row['tls.handshake.extensions_server_name'] ?? '', ja3: row['tls.handshake.ja3'] ?? '', full: row['tls.handshake.ja3_full'] ?? '',
  })));
}

/** Starts one Node HTTPS server (HTTP/1.1 + h2) per port in the lab's server namespace. */
export async function startHttpsServers(lab: Lab, ports: number[]): Promise<HttpsServers> {
  const { dir, ca, cert, key } = await makeTestCa(lab.serverIp);
  const child = lab.spawnIn(lab.serverNs, process.execPath, [join(FIXTURES, 'https-server.mjs'), cert, key, ...ports.map(String)]);
  const out = watchOutput(child, ['stdout', 'stderr'], 'the HTTPS server');
  for (const p of ports) await out.waitFor(`listening ${p}\n`, 15_000);
  return {
    ca, ports,
    hostnames: LAB_HOST_LABELS.map((l) => `${l}.tapscope.test`),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
