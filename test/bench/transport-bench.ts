// Transport throughput: the same file streamed from a "node" (a network namespace) through an ssh2 exec
// channel (what the SSH target uses), through OpenSSH's `ssh host cat file`, and through a Kubernetes
// exec stream (client-node over the test API server). Prints MB/s and ratios against OpenSSH measured in
// the same run; never gates on absolute numbers. Run: npx tsx test/bench/transport-bench.ts [MiB]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connectSsh, negotiatedOf } from '../../src/targets/ssh/connect.js';
import { execStream } from '../../src/targets/k8s/exec.js';
import { kubeConfigFor, mergeKubeconfigs } from '../../src/targets/k8s/kubeconfig.js';
import { startSshLab, sh } from '../lib/sshd.js';
import { startK8sApi } from '../k8s-api/server.js';

const MIB = Number(process.argv[2] ?? 256);
const ROUNDS = 3;
const FILE = `/tmp/tss-bench-${MIB}m.bin`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function timeIt(f: () => Promise<number>): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = process.hrtime.bigint();
    const bytes = await f();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (bytes !== MIB * 1024 * 1024) throw new Error(`short read: ${bytes} bytes`);
    rates.push(bytes / 1024 / 1024 / s);
  }
  return median(rates);
}

async function main(): Promise<void> {
  if (!existsSync(FILE) || statSync(FILE).size !== MIB * 1024 * 1024) {
    const r = await sh('dd', ['if=/dev/urandom', `of=${FILE}`, 'bs=1M', `count=${MIB}`, 'status=none']);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const lab = await startSshLab({ id: 3, nodes: 1 });
  const api = await startK8sApi({ id: 4, nodes: 1 });
  const dir = mkdtempSync('/tmp/tss-bench-');
  try {
    const node = lab.nodes[0]!;
    writeFileSync(lab.knownHosts, lab.knownHostsLines());
    writeFileSync(lab.sshConfig, `Host *\n  IdentityFile ${lab.key}\n`);
    const conn = await connectSsh({ host: node.ip, user: 'root', port: 22 }, { sshConfigPath: lab.sshConfig, knownHostsPath: lab.knownHosts });
    let cipher = 'unknown';
    const ssh2Rate = await timeIt(() => new Promise((resolve, reject) => {
      conn.client.exec(`cat ${FILE}`, (err, ch) => {
        if (err) return reject(err);
        let n = 0;
        ch.on('data', (d: Buffer) => (n += d.length));
        ch.on('close', () => resolve(n));
      });
    }));
    cipher = negotiatedOf(conn.client)?.sc.cipher ?? cipher;
    conn.end();

    const openssh = (extra: string[]) => timeIt(() => new Promise((resolve, reject) => {
      const p = spawn('ssh', ['-q', '-T', '-i', lab.key, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', ...extra, `root@${node.ip}`, `cat ${FILE}`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let n = 0;
      p.stdout.on('data', (d: Buffer) => (n += d.length));
      p.on('error', reject);
      p.on('close', () => resolve(n));
    }));
    const opensshDefault = await openssh([]);
    const opensshAes = await openssh(['-c', 'aes128-gcm@openssh.com']);

    const kc = kubeConfigFor(mergeKubeconfigs([api.kubeconfig(dir, 'token')]), null);
    const core = (await import('@kubernetes/client-node')).CoreV1Api;
    const apps = (await import('@kubernetes/client-node')).AppsV1Api;
    await kc.makeApiClient(core).createNamespace({ body: { metadata: { name: 'bench' } } });
    await kc.makeApiClient(apps).createNamespacedDaemonSet({
      namespace: 'bench',
      body: { metadata: { name: 'b' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { hostNetwork: true, tolerations: [{ operator: 'Exists' }], containers: [{ name: 'c', image: 'busybox' }] } } } },
    });
    let pod = '';
    for (let i = 0; i < 100 && !pod; i++) {
      const list = await kc.makeApiClient(core).listNamespacedPod({ namespace: 'bench' });
      pod = list.items.find((p) => p.status?.phase === 'Running')?.metadata?.name ?? '';
      if (!pod) await new Promise((r) => setTimeout(r, 50));
    }
    const k8sRate = await timeIt(async () => {
      const s = await execStream(kc, 'bench', pod, 'c', ['cat', FILE]);
      let n = 0;
      s.stdout.on('data', (d: Buffer) => (n += d.length));
      await s.exit;
      s.stdin.destroy();
      return n;
    });

    const row = (label: string, x: number, extra = '') => console.log(`  ${label.padEnd(46)}${x.toFixed(0).padStart(5)} MB/s${extra}`);
    console.log(`transport throughput into this Node process, ${MIB} MiB file, median of ${ROUNDS} (same machine, netns)`);
    row('OpenSSH `ssh host cat` (default cipher)', opensshDefault);
    row('OpenSSH `ssh -c aes128-gcm host cat`', opensshAes);
    row(`ssh2 exec channel (${cipher})`, ssh2Rate, `   ${(ssh2Rate / opensshDefault).toFixed(2)}x OpenSSH default, ${(ssh2Rate / opensshAes).toFixed(2)}x same cipher (target >= 0.8x)`);
    row('Kubernetes exec stream (client-node, v5)', k8sRate, `   ${(k8sRate / opensshDefault).toFixed(2)}x OpenSSH default`);
  } finally {
    await api.close();
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
