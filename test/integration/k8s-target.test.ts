// The Kubernetes target against the strict test API server: token, client-certificate and exec-plugin
// users, node listing, a capture on six nodes at once with the helper really running in each node's
// network namespace, pod enrichment from watches, RBAC and Pod Security refusals, shell, and cleanup.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { cleanK8s, createK8sTarget, type K8sTargetOptions } from '../../src/targets/k8s/index.js';
import { execStream } from '../../src/targets/k8s/exec.js';
import { kubeConfigFor, mergeKubeconfigs } from '../../src/targets/k8s/kubeconfig.js';
import { claimPatch } from '../../src/targets/k8s/manifests.js';
import { CoreV1Api } from '@kubernetes/client-node';
import { isTapscopeError } from '../../src/errors.js';
import { NodeFileWriter } from '../../src/store/node-writer.js';
import { LiveSectionMerger } from '../../src/pcapng/merge.js';
import type { CaptureHandlers, NodeStatus, StreamGap } from '../../src/targets/target.js';
import { KUBELET_PORT, startK8sApi, type K8sApi } from '../k8s-api/server.js';
import { testHelper } from '../lib/sshd.js';
import { until } from '../lib/until.js';

let api: K8sApi;
let dir: string;
let kcToken: string;

beforeAll(async () => {
  api = await startK8sApi({ id: 2, nodes: 6 });
  dir = mkdtempSync('/tmp/tsk-test-');
  kcToken = api.kubeconfig(dir, 'token');
});

afterAll(async () => {
  await api?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// why: afpacket, because eBPF TLS hooks are host-wide: on this one machine they would also record this
// test process's own TLS to the API server, which carries the helper's output — a feedback loop.
function opts(extra: K8sTargetOptions = {}): K8sTargetOptions {
  return { kubeconfig: kcToken, helperPath: testHelper(), readyTimeoutMs: 30_000, ...extra };
}

interface Recorder {
  handlers: CaptureHandlers;
  streams: Map<string, Buffer[]>;
  statuses: NodeStatus[];
  gaps: StreamGap[];
  /** node -> its session file, when the recorder writes them (`fileDir`) */
  writers: Map<string, NodeFileWriter>;
}

/** Records statuses, gaps and stream bytes; with `fileDir`, also writes each node's streams as the session store does. */
function recorder(fileDir?: string): Recorder {
  const streams = new Map<string, Buffer[]>();
  const statuses: NodeStatus[] = [];
  const gaps: StreamGap[] = [];
  const writers = new Map<string, NodeFileWriter>();
  return {
    streams,
    statuses,
    gaps,
    writers,
    handlers: {
      onStatus: (s) => statuses.push(s),
      onStream: (node: string, s: Readable) => {
        const chunks = streams.get(node) ?? [];
        streams.set(node, chunks);
        const w = fileDir ? writers.get(node) ?? new NodeFileWriter(join(fileDir, `${node}.pcapng`), node) : null;
        if (w) writers.set(node, w);
        w?.beginStream();
        s.on('data', (d: Buffer) => {
          chunks.push(d);
          w?.write(d);
        });
      },
      onGap: (g) => gaps.push(g),
    },
  };
}

/** Helper temp dirs in the fake pods' /tmp (each pod's /tmp is a dir of the test API server). */
function podTempDirs(): string[] {
  return existsSync(api.podTmpRoot) ? readdirSync(api.podTmpRoot).flatMap((p) => readdirSync(join(api.podTmpRoot, p)).map((d) => `${p}/${d}`)) : [];
}

function tapscopeObjects(): string[] {
  return ['daemonsets', 'serviceaccounts', 'pods', 'namespaces'].flatMap((k) => api.list(k)
    .filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'tapscope')
    .map((o) => `${k}/${o.metadata.name}`));
}

describe('authentication and nodes', () => {
  it('lists nodes with readiness, kernel and architecture using a bearer token', async () => {
    const t = createK8sTarget('k8s://tsk-token', opts());
    const nodes = await t.listNodes();
    expect(nodes.map((n) => n.name)).toEqual(api.nodes.map((n) => n.name));
    const kernel = execFileSync('uname', ['-r']).toString().trim();
    for (const n of nodes) expect(n).toMatchObject({ ready: true, kernel, arch: 'x86_64' });
    expect(nodes[2]?.address).toBe(api.nodes[2]?.ip);
  });

  it('authenticates with a client certificate and with an exec credential plugin', async () => {
    const cert = createK8sTarget('k8s://tsk-cert', opts({ kubeconfig: api.kubeconfig(dir, 'cert') }));
    expect(await cert.listNodes()).toHaveLength(6);
    const exec = createK8sTarget('k8s://tsk-exec', opts({ kubeconfig: api.kubeconfig(dir, 'exec') }));
    expect(await exec.listNodes()).toHaveLength(6);
    expect(api.requests.length).toBeGreaterThan(0);
  });

  it('reports rejected credentials and an unreachable server', async () => {
    const bad = createK8sTarget('k8s://tsk-bad', opts({ kubeconfig: api.kubeconfig(dir, 'token', { context: 'tsk-bad', token: 'nope' }) }));
    const e1 = await bad.listNodes().then(() => null, (e: unknown) => e);
    expect(isTapscopeError(e1, 'E_AUTH_FAILED'), String(e1)).toBe(true);
    const f = join(dir, 'kc-down');
    writeFileSync(f, [
      'apiVersion: v1', 'kind: Config', 'current-context: down',
      'clusters:', '- name: down', '  cluster:', '    server: https://127.0.0.1:1', '    insecure-skip-tls-verify: true',
      'users:', '- name: down', '  user:', '    token: x',
      'contexts:', '- name: down', '  context:', '    cluster: down', '    user: down', '',
    ].join('\n'));
    const down = createK8sTarget('k8s://down', opts({ kubeconfig: f }));
    const e2 = await down.listNodes().then(() => null, (e: unknown) => e);
    expect(isTapscopeError(e2, 'E_TARGET_UNREACHABLE'), String(e2)).toBe(true);
  });

  it('merges KUBECONFIG files with the first file winning, as kubectl does', async () => {
    const first = api.kubeconfig(dir, 'token', { context: 'dup' });
    const second = join(dir, 'kc-second');
    writeFileSync(second, [
      'apiVersion: v1', 'kind: Config', 'current-context: other',
      'clusters:', '- name: dup-cluster', '  cluster:', '    server: https://127.0.0.1:1',
      'users:', '- name: dup-user', '  user:', '    token: wrong',
      'contexts:', '- name: dup', '  context:', '    cluster: dup-cluster', '    user: dup-user', '',
    ].join('\n'));
    // Current context from the first file, and its cluster/user definitions win over the second's.
    const t = createK8sTarget('k8s://', opts({ kubeconfig: `${first}:${second}` }));
    expect(await t.listNodes()).toHaveLength(6);
  });
});

describe('proxy-url', () => {
  it('reaches the API server and pod exec through an HTTP CONNECT proxy named in the kubeconfig', async () => {
    const tunnels: string[] = [];
    const proxy = createServer();
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host as string, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const f = api.kubeconfig(dir, 'token', { context: 'via-proxy' });
      const port = (proxy.address() as AddressInfo).port;
      writeFileSync(f, readFileSync(f, 'utf8').replace(/( {4}server: .*\n)/, `$1    proxy-url: http://127.0.0.1:${port}\n`));
      const t = createK8sTarget('k8s://via-proxy', opts({ kubeconfig: f }));
      const seen = api.requests.length;
      expect(await t.listNodes()).toHaveLength(6);
      const rec = recorder();
      const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [api.nodes[1]?.name as string] }, rec.handlers);
      await handle.stop();
      expect(rec.streams.size).toBe(1);
      // Each exec WebSocket is its own connection: all of them went through the proxy.
      const upgrades = api.requests.slice(seen).filter((r) => r.startsWith('UPGRADE')).length;
      expect(upgrades).toBeGreaterThanOrEqual(3);
      expect(tunnels.length).toBeGreaterThanOrEqual(upgrades);
      expect(new Set(tunnels)).toEqual(new Set([new URL(api.url).host]));
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });
});

describe('capture', () => {
  it('deploys to six nodes at once, streams real helper output from each, enriches pod IPs, and leaves nothing behind', async () => {
    const workloadIp = '10.205.99.50';
    api.put('namespaces', { metadata: { name: 'shop', labels: {} }, status: { phase: 'Active' } });
    api.put('pods', {
      metadata: {
        name: 'web-7d9f5c6b8-x2x9k', namespace: 'shop', labels: { app: 'web', 'pod-template-hash': '7d9f5c6b8' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f5c6b8', uid: 'u1', controller: true }],
      },
      spec: { nodeName: api.nodes[1]?.name, containers: [{ name: 'web', image: 'nginx' }] },
      status: { phase: 'Running', podIP: workloadIp, podIPs: [{ ip: workloadIp }] },
    });
    api.put('services', { metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'], ports: [{ port: 80 }] } });

    const t = createK8sTarget('k8s://tsk-token', opts());
    const rec = recorder();
    // a slow link: the pods are running before the pod watch opens, and every phase must still be reported
    api.slowWatches(150);
    const handle = await t.start({ mode: 'afpacket', ifaces: [] }, rec.handlers).finally(() => api.slowWatches(0));
    try {
      expect([...rec.streams.keys()].sort()).toEqual(api.nodes.map((n) => n.name).sort());
      for (const n of api.nodes) {
        const phases = rec.statuses.filter((s) => s.node === n.name).map((s) => s.phase);
        expect(phases).toEqual(expect.arrayContaining(['deploying', 'scheduled', 'pulling', 'running', 'streaming']));
      }
      // Traffic made inside each node (a DNS lookup of a name unique to the node) arrives in that node's stream only.
      await Promise.all(api.nodes.map((n, i) => until(`tsknodemark${i} in ${n.name}'s stream`, () => {
        spawnSync('ip', ['netns', 'exec', n.ns, 'getent', 'hosts', `tsknodemark${i}.test`], { stdio: 'ignore' });
        return Buffer.concat(rec.streams.get(n.name) ?? []).includes(`tsknodemark${i}`);
      })));
      for (const [i, n] of api.nodes.entries()) {
        const bytes = Buffer.concat(rec.streams.get(n.name) ?? []);
        expect(bytes.readUInt32LE(0)).toBe(0x0a0d0d0a);
        expect(bytes.includes(`tsknodemark${i}`)).toBe(true);
        expect(bytes.includes(`tsknodemark${(i + 1) % 6}`)).toBe(false);
        // The kubelet API that carries the helper's own output is excluded on each node, and the helper says so.
        expect(bytes.includes(`"excludedTcp":[{"ip":"${n.ip}","port":${KUBELET_PORT}}]`)).toBe(true);
      }
      expect(handle.notes.join('\n')).toContain(`kubelet API (${api.nodes.map((n) => `${n.ip}:${KUBELET_PORT}`).join(', ')})`);
      // The same streams merged as `capture --out -` writes them: one section tshark reads, every node's DNS query
      // on that node's own interface (named node/interface), none on another's.
      const merged: Buffer[] = [];
      const merger = new LiveSectionMerger((b) => merged.push(b));
      for (const n of api.nodes) for (const c of rec.streams.get(n.name) ?? []) merger.push(n.name, c);
      expect(merger.notes).toEqual([]);
      const mergedFile = join(dir, 'merged.pcapng');
      writeFileSync(mergedFile, Buffer.concat(merged));
      const q = spawnSync('tshark', ['-r', mergedFile, '-Y', 'dns.flags.response == 0', '-T', 'fields', '-e', 'dns.qry.name', '-e', 'frame.interface_name'], { encoding: 'utf8' });
      expect(q.status, q.stderr).toBe(0);
      for (const [i, n] of api.nodes.entries()) {
        const on = q.stdout.split('\n').filter((l) => l.startsWith(`tsknodemark${i}.test\t`)).map((l) => l.split('\t')[1]!);
        expect(on.length, n.name).toBeGreaterThan(0);
        expect(on.every((iface) => iface.startsWith(`${n.name}/`)), `${n.name}: ${on.join(', ')}`).toBe(true);
      }

      const enrich = handle.enrich as (ip: string) => unknown;
      expect(enrich(workloadIp)).toEqual({ namespace: 'shop', name: 'web-7d9f5c6b8-x2x9k', workload: 'Deployment/web', node: api.nodes[1]!.name });
      expect(enrich('10.96.0.20')).toEqual({ namespace: 'shop', name: 'web', workload: 'Service/web', node: null });
      expect(enrich(api.nodes[0]?.ip as string)).toBeNull();
      api.put('pods', {
        metadata: { name: 'db-0', namespace: 'shop', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'u2', controller: true }] },
        spec: { nodeName: api.nodes[2]?.name, containers: [{ name: 'db', image: 'postgres' }] },
        status: { phase: 'Running', podIP: '10.205.99.51' },
      });
      await until('the new pod in the index', () => enrich('10.205.99.51'));
      expect(enrich('10.205.99.51')).toEqual({ namespace: 'shop', name: 'db-0', workload: 'StatefulSet/db', node: api.nodes[2]!.name });
      // A host-network pod shares its node's address: its container ids (as the helper reads them from cgroups) name it.
      const cid = 'ab12'.repeat(16);
      api.put('pods', {
        metadata: { name: 'node-exporter-q8', namespace: 'shop', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'node-exporter', uid: 'u3', controller: true }] },
        spec: { nodeName: api.nodes[3]?.name, hostNetwork: true, containers: [{ name: 'exporter', image: 'prom/node-exporter' }] },
        status: { phase: 'Running', podIP: api.nodes[3]?.ip, containerStatuses: [{ name: 'exporter', image: 'prom/node-exporter', imageID: '', ready: true, restartCount: 0, containerID: `containerd://${cid}` }] },
      });
      await until('the host-network pod by container id', () => enrich(`container:${cid}`));
      expect(enrich(`container:${cid}`)).toEqual({ namespace: 'shop', name: 'node-exporter-q8', workload: 'DaemonSet/node-exporter', node: api.nodes[3]!.name });
      expect(enrich(api.nodes[3]?.ip as string)).toBeNull();

      expect(tapscopeObjects().length).toBeGreaterThan(0);
      expect(podTempDirs().filter((d) => /\/tapscope\./.test(d))).toHaveLength(6);
    } finally {
      await handle.stop();
    }
    await handle.done;
    expect(tapscopeObjects()).toEqual([]);
    expect(podTempDirs()).toEqual([]);
    expect(handle.notes.join('\n')).not.toMatch(/Not removed/);
    expect(api.rejected).toEqual([]);
    for (const n of api.nodes) expect(rec.statuses.filter((s) => s.node === n.name).at(-1)?.phase).toBe('stopped');
    api.remove('namespaces', null, 'shop');
  });

  it('captures chosen pods only: on their node, with a filter on their addresses; refuses pods it cannot scope', async () => {
    const n = api.nodes[2]!;
    const podIp = n.ip.replace(/\.\d+$/, '.77');
    // the pod's address lives in its node's namespace here (a real pod's end of its veth carries it)
    execFileSync('ip', ['-n', n.ns, 'addr', 'add', `${podIp}/24`, 'dev', n.dev!]);
    api.put('namespaces', { metadata: { name: 'shop', labels: {} }, status: { phase: 'Active' } });
    const pod = (name: string, spec: object, status: object) => api.put('pods', {
      metadata: { name, namespace: 'shop' }, spec: { containers: [{ name: 'c', image: 'app' }], ...spec }, status,
    });
    pod('api-0', { nodeName: n.name }, { phase: 'Running', podIP: podIp, podIPs: [{ ip: podIp }] });
    pod('exporter', { nodeName: n.name, hostNetwork: true }, { phase: 'Running', podIP: n.ip });
    pod('queued', {}, { phase: 'Pending' });
    const t = createK8sTarget('k8s://tsk-token', opts());
    try {
      // the pods the Connect view offers: the cluster's, each with its node, addresses and network
      expect((await t.listPods!()).filter((p) => p.namespace === 'shop')).toEqual([
        { namespace: 'shop', name: 'api-0', node: n.name, ips: [podIp], hostNetwork: false, phase: 'Running' },
        { namespace: 'shop', name: 'exporter', node: n.name, ips: [n.ip], hostNetwork: true, phase: 'Running' },
        { namespace: 'shop', name: 'queued', node: null, ips: [], hostNetwork: false, phase: 'Pending' },
      ]);
      const refused = async (pods: string[]) => t.start({ mode: 'afpacket', ifaces: [], pods }, recorder().handlers).then(() => 'started', (e: unknown) => e);
      expect(await refused(['shop/nope'])).toMatchObject({ code: 'E_TARGET_INVALID', message: expect.stringMatching(/Pod shop\/nope is not in context/) });
      expect(await refused(['shop/exporter'])).toMatchObject({ code: 'E_TARGET_INVALID', message: expect.stringMatching(/hostNetwork.*capture k8s:\/\/.*\/tsk-node-2 with a capture filter/) });
      expect(await refused(['shop/queued'])).toMatchObject({ code: 'E_TARGET_INVALID', message: expect.stringMatching(/has no node yet \(phase Pending\)/) });
      expect(await refused(['shop/api-0/x'])).toMatchObject({ code: 'E_USAGE' });
      expect(tapscopeObjects()).toEqual([]);

      const rec = recorder();
      const handle = await t.start({ mode: 'afpacket', ifaces: [], pods: ['shop/api-0'], filter: 'udp' }, rec.handlers);
      const send = (from: string, mark: string) => spawnSync('ip', ['netns', 'exec', n.ns, 'python3', '-c',
        `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('${from}', 0)); s.sendto(b'${mark}', ('${n.ip.replace(/\.\d+$/, '.1')}', 9))`]);
      const streamed = (mark: string) => Buffer.concat(rec.streams.get(n.name) ?? []).includes(mark);
      try {
        expect([...rec.streams.keys()]).toEqual([n.name]);
        await until('the pod\'s datagram in the stream', () => { send(podIp, 'tskpodmark1'); return streamed('tskpodmark1'); });
        // the node's own datagram, then the pod's again: once the second is in, the first would be too had it been kept
        send(n.ip, 'tsknodemark9');
        await until('the pod\'s second datagram', () => { send(podIp, 'tskpodmark2'); return streamed('tskpodmark2'); });
        expect(streamed('tsknodemark9')).toBe(false);
        expect(Buffer.concat(rec.streams.get(n.name)!).includes(`"filter":"host ${podIp} and (udp)"`)).toBe(true);
        expect(handle.notes.join('\n')).toContain(`Pod shop/api-0 (${podIp}) on node ${n.name}: only traffic to or from its address is captured`);
      } finally {
        await handle.stop();
      }
      await handle.done;
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      execFileSync('ip', ['-n', n.ns, 'addr', 'del', `${podIp}/24`, 'dev', n.dev!]);
      api.remove('namespaces', null, 'shop');
    }
  });

  it('follows a key log at its path on the node, which the helper\'s pod reads under /proc/1/root', async () => {
    const n = api.nodes[4]!;
    // (the node's file: this machine's, as the fake pods' helpers run here, in the node's network namespace only)
    const keylog = join(dir, 'node-sslkeys.log');
    writeFileSync(keylog, '');
    const t = createK8sTarget('k8s://tsk-token', opts());
    const rec = recorder();
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [n.name], keyLogs: [keylog] }, rec.handlers);
    // a client's line, written after the helper began to follow the file
    const line = `CLIENT_RANDOM ${'ab'.repeat(32)} ${'cd'.repeat(48)}`;
    const nodePath = `/proc/1/root${keylog}`;
    // why: a helper pod shares its node's PID namespace, where PID 1 is the node's init and its root the node's file
    // system; this machine's PID 1 may refuse its root even to root (a sandbox's init): the helper must then say so
    const readable = (() => { try { readdirSync('/proc/1/root/'); return true; } catch { return false; } })();
    try {
      expect([...rec.streams.keys()]).toEqual([n.name]);
      const exec = api.requests.find((r) => r.startsWith('UPGRADE ') && r.includes('--keylog'));
      expect(decodeURIComponent(exec ?? '')).toContain(`command=--keylog&command=${nodePath}`);
      if (readable) {
        await until('the key log line in the stream, as a decryption secrets block', () => {
          if (!readFileSync(keylog, 'utf8')) writeFileSync(keylog, `${line}\n`, { flag: 'a' });
          return Buffer.concat(rec.streams.get(n.name) ?? []).includes(line);
        });
        const bytes = Buffer.concat(rec.streams.get(n.name)!);
        // (its block: a Decryption Secrets Block, type 0x0000000A, of TLS key log lines, 0x544c534b)
        const block = bytes.lastIndexOf(Buffer.from([0x0a, 0, 0, 0]), bytes.indexOf(line));
        expect(block).toBeGreaterThan(0);
        expect(bytes.readUInt32LE(block + 8)).toBe(0x544c534b);
      } else {
        await until('the node\'s failure', () => rec.statuses.some((x) => x.node === n.name && x.phase === 'failed'));
        expect(rec.statuses.find((x) => x.phase === 'failed')).toMatchObject({
          node: n.name, error: { code: 'E_HELPER_EXITED', message: expect.stringContaining(`cannot read key log ${nodePath}: Permission denied`) },
        });
      }
    } finally {
      await handle.stop();
    }
    await handle.done;
    expect(tapscopeObjects()).toEqual([]);
  });

  it('names the verb and resource when RBAC forbids the DaemonSet, and removes what it had created', async () => {
    api.deny.push({ user: 'admin', verb: 'create', resource: 'daemonsets.apps' });
    try {
      const t = createK8sTarget('k8s://tsk-token', opts());
      const [pre] = await t.preflight([api.nodes[3]?.name as string]);
      expect(pre?.problems).toContain('RBAC: cannot create daemonsets.apps in namespace tapscope.');
      expect(pre?.privileged).toBe('none');
      expect(pre?.helperVersion).toMatch(/^tapscope-helper \d+\.\d+\.\d+/);
      const e = await t.start({ mode: 'afpacket', ifaces: [], nodes: [api.nodes[3]?.name as string] }, recorder().handlers).then(() => null, (x: unknown) => x);
      expect(isTapscopeError(e, 'E_K8S_FORBIDDEN'), String(e)).toBe(true);
      expect((e as Error).message).toContain('cannot create daemonsets.apps in namespace tapscope');
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      api.deny.length = 0;
    }
  });

  it('checks every node of the cluster with one run of the helper\'s --version, not one per node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsk-version-'));
    try {
      // a helper that counts its --version runs
      const helper = join(dir, 'tapscope-helper');
      writeFileSync(helper, `#!/bin/sh\necho run >> ${join(dir, 'runs')}\necho "tapscope-helper 9.9.9"\n`, { mode: 0o755 });
      const t = createK8sTarget('k8s://tsk-token', opts({ helperPath: helper }));
      const reports = await t.preflight(api.nodes.map((n) => n.name));
      expect(reports.map((r) => r.helperVersion)).toEqual(api.nodes.map(() => 'tapscope-helper 9.9.9'));
      expect(readFileSync(join(dir, 'runs'), 'utf8')).toBe('run\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains Pod Security refusals with the namespace label that would allow the pods', async () => {
    api.put('namespaces', { metadata: { name: 'locked', labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } }, status: { phase: 'Active' } });
    api.put('namespaces', { metadata: { name: 'plain', labels: {} }, status: { phase: 'Active' } });
    api.setPsaDefault('baseline');
    try {
      for (const namespace of ['locked', 'plain']) {
        const t = createK8sTarget('k8s://tsk-token', opts({ namespace }));
        const e = await t.start({ mode: 'afpacket', ifaces: [] }, recorder().handlers).then(() => null, (x: unknown) => x);
        expect(isTapscopeError(e, 'E_K8S_ADMISSION'), String(e)).toBe(true);
        expect((e as Error).message).toContain(`kubectl label namespace ${namespace} pod-security.kubernetes.io/enforce=privileged`);
      }
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      api.setPsaDefault('privileged');
      api.remove('namespaces', null, 'locked');
      api.remove('namespaces', null, 'plain');
    }
  });

  it('resumes in the DaemonSet\'s replacement pod when the capture pod is deleted, while the other node keeps streaming', async () => {
    const t = createK8sTarget('k8s://tsk-token', opts({ reconnect: { first: 100, max: 400, giveUpMs: 20_000 } }));
    const rec = recorder();
    const [a, b] = [api.nodes[2]?.name as string, api.nodes[3]?.name as string];
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [a, b] }, rec.handlers);
    try {
      const victim = api.list('pods', 'tapscope').find((p) => p.spec.nodeName === a)?.metadata.name as string;
      api.remove('pods', 'tapscope', victim);
      const replacement = await until('the replacement pod', () => api.list('pods', 'tapscope').find((p) => p.spec.nodeName === a)?.metadata.name);
      expect(replacement).not.toBe(victim);
      await until('a second stream from the node', () => rec.gaps.some((g) => g.node === a && g.toMs !== null));
      expect(rec.gaps.find((g) => g.node === a)?.reason).toContain(`the capture pod ${victim} is gone`);
      const before = Buffer.concat(rec.streams.get(a) ?? []).length;
      await until('data from the replacement pod', () => {
        spawnSync('ip', ['netns', 'exec', api.nodes[2]?.ns as string, 'getent', 'hosts', 'tskreplaced.test'], { stdio: 'ignore' });
        return Buffer.concat(rec.streams.get(a) ?? []).subarray(before).includes('tskreplaced');
      });
      expect(rec.statuses.filter((s) => s.node === b).map((s) => s.phase)).not.toContain('reconnecting');
    } finally {
      await handle.stop();
    }
    expect(rec.statuses.filter((s) => s.node === a).map((s) => s.phase)).not.toContain('failed');
    expect(tapscopeObjects()).toEqual([]);
    expect(podTempDirs()).toEqual([]);
  });

});

describe('clean', () => {
  const HEARTBEAT = 'tapscope.dev/heartbeat';
  const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
  /** A session's DaemonSet and ServiceAccount as a Tapscope that is gone left them (no pods: its DaemonSet may be half-deleted). */
  function leftover(namespace: string, session: string, annotations: Record<string, string> | null): void {
    const labels = { 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': session, 'app.kubernetes.io/name': 'tapscope-helper' };
    const metadata = { name: `tapscope-${session}`, namespace, labels, creationTimestamp: minutesAgo(11) };
    api.put('daemonsets', {
      metadata: { ...metadata, ...(annotations ? { annotations } : {}) },
      spec: { selector: { matchLabels: { 'tapscope.dev/session': session } }, template: { metadata: { labels }, spec: { containers: [{ name: 'helper', image: 'busybox:1.36' }] } } },
    });
    api.put('serviceaccounts', { metadata, automountServiceAccountToken: false });
  }

  it('leaves a running capture (DaemonSet, ServiceAccount, namespace) and its stream alone, removes a crashed session and an older Tapscope\'s leftovers, and with force the running one too', async () => {
    const node = api.nodes[4]!;
    // a short heartbeat: the capture below runs for longer than three of them, so only refreshing keeps it
    const t = createK8sTarget('k8s://tsk-token', opts({ heartbeatMs: 300 }));
    const rec = recorder();
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, rec.handlers);
    try {
      const ds = api.list('daemonsets', 'tapscope')[0]!;
      const session = ds.metadata.labels['tapscope.dev/session'] as string;
      const firstBeat = ds.metadata.annotations[HEARTBEAT] as string;
      expect(ds.metadata.annotations['tapscope.dev/started-by']).toBe(`${userInfo().username}@${hostname()}`);
      leftover('tapscope', 'dead0001', { [HEARTBEAT]: minutesAgo(10), 'tapscope.dev/heartbeat-interval-seconds': '20', 'tapscope.dev/started-by': 'bob@desk' });
      api.put('namespaces', { metadata: { name: 'tapscope-old', labels: { 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': 'old00001', 'tapscope.dev/created-namespace': 'true' }, creationTimestamp: minutesAgo(11) }, status: { phase: 'Active' } });
      leftover('tapscope-old', 'old00001', null);
      await new Promise((r) => setTimeout(r, 1200));
      expect(api.list('daemonsets', 'tapscope').find((d) => d.metadata.name === `tapscope-${session}`)?.metadata.annotations[HEARTBEAT]).not.toBe(firstBeat);

      const first = await cleanK8s('tsk-token', { kubeconfig: kcToken });
      expect(first.kept).toHaveLength(1);
      expect(first.kept[0]).toMatch(new RegExp(`^running capture tapscope/tapscope-${session} \\(heartbeat \\d s ago, started by ${userInfo().username}@${hostname()}\\)$`));
      expect(first.removed.sort()).toEqual([
        'daemonset tapscope-old/tapscope-old00001 (no heartbeat: made by a Tapscope from before heartbeats)',
        'daemonset tapscope/tapscope-dead0001 (last heartbeat 10 min ago, started by bob@desk)',
        'namespace tapscope-old',
        'serviceaccount tapscope-old/tapscope-old00001',
        'serviceaccount tapscope/tapscope-dead0001',
      ]);
      expect(tapscopeObjects()).toEqual([`daemonsets/tapscope-${session}`, `serviceaccounts/tapscope-${session}`, expect.stringMatching(`^pods/tapscope-${session}-`), 'namespaces/tapscope']);
      // the capture goes on
      await until('traffic after the clean in the stream', () => {
        spawnSync('ip', ['netns', 'exec', node.ns, 'getent', 'hosts', 'tskaftercleanmark.test'], { stdio: 'ignore' });
        return Buffer.concat(rec.streams.get(node.name) ?? []).includes('tskaftercleanmark');
      });
      expect(rec.statuses.map((x) => x.phase)).not.toContain('failed');

      const forced = await cleanK8s('tsk-token', { kubeconfig: kcToken, force: true });
      expect(forced.kept).toEqual([]);
      expect(forced.removed[0]).toMatch(new RegExp(`^daemonset tapscope/tapscope-${session} \\(running: heartbeat \\d s ago, started by `));
      expect(forced.removed.slice(1)).toEqual([`serviceaccount tapscope/tapscope-${session}`, 'namespace tapscope']);
      await until('the pods gone', () => tapscopeObjects().length === 0);
      // the capture is told: it does not wait out its resume budget (120 s) for pods that will not come back
      const failed = await until('the node failed', () => rec.statuses.find((x) => x.phase === 'failed'));
      expect(failed?.message).toMatch(new RegExp(`the capture's DaemonSet tapscope/tapscope-${session} was deleted \\(\`tapscope clean --force\`, or kubectl delete\\): its pods are gone, so the capture cannot resume`));
    } finally {
      await handle.stop();
    }
    expect(api.rejected).toEqual([]);
  });

  it('judges heartbeats by the API server\'s clock: a cleaner whose clock runs 10 min ahead leaves a running capture alone', async () => {
    const node = api.nodes[4]!;
    const t = createK8sTarget('k8s://tsk-token', opts({ heartbeatMs: 300 }));
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, recorder().handlers);
    try {
      const ds = api.list('daemonsets', 'tapscope')[0]!;
      const first = ds.metadata.annotations[HEARTBEAT] as string;
      await until('a heartbeat', () => api.list('daemonsets', 'tapscope')[0]?.metadata.annotations[HEARTBEAT] !== first);
      // (this process's clock set 10 min ahead; the test API server, in this process too, kept on the real one)
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 600_000);
      api.skewClock(-600_000);
      let r: Awaited<ReturnType<typeof cleanK8s>>;
      try {
        r = await cleanK8s('tsk-token', { kubeconfig: kcToken });
      } finally {
        vi.useRealTimers();
        api.skewClock(0);
      }
      expect(r.removed).toEqual([]);
      expect(r.kept).toEqual([expect.stringMatching(new RegExp(`^running capture tapscope/${ds.metadata.name} \\(heartbeat \\d s ago, started by `))]);
      expect(tapscopeObjects()).toContain(`daemonsets/${ds.metadata.name}`);
    } finally {
      await handle.stop();
    }
    expect(tapscopeObjects()).toEqual([]);
  });

  it('keeps a session whose heartbeat comes while clean runs (the delete\'s precondition), with its ServiceAccount', async () => {
    leftover('tapscope-late', 'late0001', { [HEARTBEAT]: minutesAgo(10), 'tapscope.dev/heartbeat-interval-seconds': '20' });
    api.put('namespaces', { metadata: { name: 'tapscope-late', labels: { 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': 'late0001', 'tapscope.dev/created-namespace': 'true' }, creationTimestamp: minutesAgo(11) }, status: { phase: 'Active' } });
    // (the session, stalled for a minute, refreshes its heartbeat just as clean deletes its DaemonSet)
    api.holdRequests((method, path) => {
      if (method !== 'DELETE' || path !== '/apis/apps/v1/namespaces/tapscope-late/daemonsets/tapscope-late0001') return;
      const d = api.list('daemonsets', 'tapscope-late')[0]!;
      api.put('daemonsets', { ...d, metadata: { ...d.metadata, annotations: { ...d.metadata.annotations, [HEARTBEAT]: new Date().toISOString() } } });
    });
    try {
      const r = await cleanK8s('tsk-token', { kubeconfig: kcToken });
      expect(r.kept).toEqual(['daemonset tapscope-late/tapscope-late0001 (changed while clean ran: its session is alive)']);
      expect(r.removed).toEqual([]);
      expect(tapscopeObjects().sort()).toEqual(['daemonsets/tapscope-late0001', 'namespaces/tapscope-late', 'serviceaccounts/tapscope-late0001']);
    } finally {
      api.holdRequests(null);
      api.remove('namespaces', null, 'tapscope-late');
    }
    expect(tapscopeObjects()).toEqual([]);
  });

  it('does not delete a namespace a session starts in while clean runs: the session claims it first, and clean\'s delete is refused', async () => {
    const node = api.nodes[4]!;
    api.put('namespaces', { metadata: { name: 'tapscope-reuse', labels: { 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': 'gone0001', 'tapscope.dev/created-namespace': 'true', 'pod-security.kubernetes.io/enforce': 'privileged' }, creationTimestamp: minutesAgo(11) }, status: { phase: 'Active' } });
    const t = createK8sTarget('k8s://tsk-token', opts({ namespace: 'tapscope-reuse' }));
    let starting: ReturnType<typeof t.start> | null = null;
    // (clean has listed the namespace, empty and old, and is about to delete it: a session starts in it then)
    api.holdRequests(async (method, path) => {
      if (method !== 'DELETE' || path !== '/api/v1/namespaces/tapscope-reuse') return;
      starting = t.start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, recorder().handlers);
      await until('the session\'s claim', () => api.requests.some((x) => x.startsWith('PATCH /api/v1/namespaces/tapscope-reuse')));
    });
    try {
      const r = await cleanK8s('tsk-token', { kubeconfig: kcToken });
      expect(r.kept).toEqual(['namespace tapscope-reuse (changed while clean ran: a session claimed it)']);
      expect(r.removed).toEqual([]);
    } finally {
      api.holdRequests(null);
    }
    const handle = await starting!;
    const sa = api.list('serviceaccounts', 'tapscope-reuse')[0]!;
    expect(api.list('namespaces').find((n) => n.metadata.name === 'tapscope-reuse')?.metadata.annotations).toEqual({ 'tapscope.dev/claimed-by': sa.metadata.labels['tapscope.dev/session'] });
    // a clean now: the namespace is the running session's
    const again = await cleanK8s('tsk-token', { kubeconfig: kcToken });
    expect(again.removed).toEqual([]);
    await handle.stop();
    // (it did not make the namespace, so it leaves it, to clean)
    expect(tapscopeObjects()).toEqual(['namespaces/tapscope-reuse']);
    api.remove('namespaces', null, 'tapscope-reuse');
  });

  it('waits for a namespace being deleted to go, then makes it again and captures', async () => {
    const node = api.nodes[4]!;
    api.put('namespaces', { metadata: { name: 'tapscope-term', labels: { 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': 'gone0002', 'tapscope.dev/created-namespace': 'true' }, finalizers: ['kubernetes'], deletionTimestamp: new Date().toISOString() }, status: { phase: 'Terminating' } });
    const t = createK8sTarget('k8s://tsk-token', opts({ namespace: 'tapscope-term' }));
    // (the namespace controller done a second later)
    const done = setTimeout(() => api.remove('namespaces', null, 'tapscope-term'), 1000);
    try {
      const rec = recorder();
      const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, rec.handlers);
      const made = api.list('namespaces').find((n) => n.metadata.name === 'tapscope-term')!;
      expect(made.metadata.deletionTimestamp).toBeUndefined();
      expect(rec.statuses.filter((x) => x.phase === 'failed')).toEqual([]);
      await handle.stop();
      // (it made the namespace, so it removes it)
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      clearTimeout(done);
    }
  });

  it('says so when it may not claim a namespace another session made, and captures there unclaimed', async () => {
    api.put('namespaces', { metadata: { name: 'tapscope-noclaim', labels: { 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': 'gone0003', 'tapscope.dev/created-namespace': 'true' }, creationTimestamp: minutesAgo(11) }, status: { phase: 'Active' } });
    api.deny.push({ user: 'admin', verb: 'patch', resource: 'namespaces' });
    try {
      const rec = recorder();
      const handle = await createK8sTarget('k8s://tsk-token', opts({ namespace: 'tapscope-noclaim' })).start({ mode: 'afpacket', ifaces: [], nodes: [api.nodes[4]!.name] }, rec.handlers);
      try {
        expect(handle.notes.filter((n) => n.includes('without claiming'))).toEqual([
          'This capture runs in namespace tapscope-noclaim, which another Tapscope session made, without claiming it (cannot patch namespaces at cluster scope): that session\'s end, or `tapscope clean`, may delete it, and this capture\'s pods with it. Grant that permission, or choose another namespace with --namespace.',
        ]);
        expect(rec.statuses.filter((x) => x.phase === 'failed')).toEqual([]);
      } finally {
        await handle.stop();
      }
    } finally {
      api.deny.length = 0;
      api.remove('namespaces', null, 'tapscope-noclaim');
    }
    expect(tapscopeObjects()).toEqual([]);
  });

  it('the session that made a namespace leaves it when another session has just claimed it, its objects not made yet', async () => {
    const node = api.nodes[4]!;
    const t = createK8sTarget('k8s://tsk-token', opts({ namespace: 'tapscope-shared' }));
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, recorder().handlers);
    const ns = api.list('namespaces').find((n) => n.metadata.name === 'tapscope-shared')!;
    // (another Tapscope claims it, as a session starting there does before it makes its ServiceAccount)
    const core = kubeConfigFor(mergeKubeconfigs([kcToken]), null).makeApiClient(CoreV1Api);
    await core.patchNamespace({ name: 'tapscope-shared', body: claimPatch(ns, 'b0b0b0b0') });
    await handle.stop();
    expect(tapscopeObjects()).toEqual(['namespaces/tapscope-shared']);
    api.remove('namespaces', null, 'tapscope-shared');
  });

  it('fails a lost node at once while its DaemonSet is being deleted (a finalizer holds it), and on stop says to clean in a minute or with --force', async () => {
    const node = api.nodes[5]!;
    // (a namespace the session does not create, so that it is not deleted, taking the held DaemonSet with it)
    api.put('namespaces', { metadata: { name: 'tapscope', labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } }, status: { phase: 'Active' } });
    const t = createK8sTarget('k8s://tsk-token', opts({ reconnect: { first: 200, max: 1000, giveUpMs: 60_000 } }));
    const rec = recorder();
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, rec.handlers);
    const ds = api.list('daemonsets', 'tapscope')[0]!;
    try {
      // kubectl delete --cascade=foreground: the DaemonSet stays, marked, until its pods are gone; they go first
      api.put('daemonsets', { ...ds, metadata: { ...ds.metadata, finalizers: ['foregroundDeletion'], deletionTimestamp: new Date().toISOString() } });
      for (const p of api.list('pods', 'tapscope')) api.remove('pods', 'tapscope', p.metadata.name);
      const failed = await until('the node failed', () => rec.statuses.find((x) => x.phase === 'failed'), 50);
      expect(failed?.message).toMatch(new RegExp(`the capture's DaemonSet tapscope/${ds.metadata.name} was deleted .*: its pods are gone, so the capture cannot resume`));
    } finally {
      await handle.stop();
    }
    expect(handle.notes, handle.notes.join('\n')).toContain(`Not removed yet: daemonset tapscope/${ds.metadata.name}. Run \`tapscope clean --target k8s://tsk-token\` in a minute, once the session's heartbeat has gone stale (or now with --force).`);
    api.remove('daemonsets', 'tapscope', ds.metadata.name);
    api.remove('namespaces', null, 'tapscope');
    expect(tapscopeObjects()).toEqual([]);
  }, 60_000);

  it('says when the capture may not refresh its heartbeat, and why', async () => {
    api.deny.push({ user: 'admin', verb: 'patch', resource: 'daemonsets.apps' });
    try {
      const t = createK8sTarget('k8s://tsk-token', opts({ heartbeatMs: 200 }));
      const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [api.nodes[3]?.name as string] }, recorder().handlers);
      try {
        const note = await until('the heartbeat note', () => handle.notes.find((n) => n.includes('heartbeat')));
        expect(note).toMatch(/^This capture cannot refresh its heartbeat on DaemonSet tapscope\/tapscope-[0-9a-f]+ \(cannot patch daemonsets\.apps in namespace tapscope\): `tapscope clean` run meanwhile takes it for a leftover/);
        await new Promise((r) => setTimeout(r, 500));
        expect(handle.notes.filter((n) => n.includes('heartbeat'))).toHaveLength(1);
      } finally {
        await handle.stop();
      }
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      api.deny.length = 0;
    }
  });
});

describe('nodes that cannot run the capture pod', () => {
  const phases = (rec: Recorder, node: string) => rec.statuses.filter((s) => s.node === node).map((s) => s.phase);

  it('refuses a node asked for whose kubelet is gone, at once and with its reason, and leaves it out of an every-node capture with a note', async () => {
    const down = api.nodes[3]!;
    api.setNodeReady(down.name, { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' });
    try {
      const said = `node ${down.name} is NotReady (NodeStatusUnknown: Kubelet stopped posting node status)`;
      const t = createK8sTarget('k8s://tsk-token', opts({ readyTimeoutMs: 60_000 }));
      const seen = api.requests.length;
      for (const [target, nodes] of [[t, [api.nodes[2]!.name, down.name]], [createK8sTarget(`k8s://tsk-token/${down.name}`, opts({ readyTimeoutMs: 60_000 })), undefined]] as const) {
        const e = await target.start({ mode: 'afpacket', ifaces: [], ...(nodes ? { nodes: [...nodes] } : {}) }, recorder().handlers).then(() => null, (x: unknown) => x);
        expect(isTapscopeError(e, 'E_K8S_NODE_FAILED'), String(e)).toBe(true);
        expect((e as Error).message).toBe(`N${said.slice(1)}: its kubelet is not reporting, so no pod starts there. Choose other nodes, or wait until \`kubectl get nodes\` shows it Ready.`);
      }
      const shell = await t.openShell(down.name).then(() => null, (x: unknown) => x);
      expect((shell as Error).message).toMatch(/^Node tsk-node-3 is NotReady \(NodeStatusUnknown: .*\): its kubelet is not reporting/);
      // refused before anything was made
      expect(api.requests.slice(seen).filter((r) => r.startsWith('POST'))).toEqual([]);
      expect((await t.preflight([down.name]))[0]?.problems).toContain(`Node is NotReady (NodeStatusUnknown: Kubelet stopped posting node status).`);

      const rec = recorder();
      const handle = await t.start({ mode: 'afpacket', ifaces: [] }, rec.handlers);
      await handle.stop();
      expect([...rec.streams.keys()].sort()).toEqual(api.nodes.filter((n) => n !== down).map((n) => n.name).sort());
      expect(phases(rec, down.name)).toEqual([]);
      expect(handle.notes).toContain(`Not captured: ${said}.`);
    } finally {
      api.setNodeReady(down.name);
    }
    expect(tapscopeObjects()).toEqual([]);
  });

  it('ends the wait for a node that goes NotReady while its pod waits, with the node\'s reason, and captures the other', async () => {
    const [ok, lost] = [api.nodes[4]!, api.nodes[5]!];
    api.stallKubelet(lost.name, true);
    try {
      const t = createK8sTarget('k8s://tsk-token', opts({ readyTimeoutMs: 60_000 }));
      const rec = recorder();
      const t0 = Date.now();
      const starting = t.start({ mode: 'afpacket', ifaces: [], nodes: [ok.name, lost.name] }, rec.handlers);
      await until('the pod bound to the stalled node', () => phases(rec, lost.name).includes('scheduled'));
      // the node controller, once the kubelet has been silent for its grace period
      api.setNodeReady(lost.name, { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' });
      const handle = await starting;
      try {
        expect(Date.now() - t0).toBeLessThan(60_000);
        expect(rec.statuses.find((s) => s.node === lost.name && s.phase === 'failed')).toMatchObject({
          error: { code: 'E_K8S_NODE_FAILED', message: `Node ${lost.name} is NotReady (NodeStatusUnknown: Kubelet stopped posting node status): its capture pod cannot start.` },
        });
        expect(phases(rec, ok.name)).toContain('streaming');
      } finally {
        await handle.stop();
      }
    } finally {
      api.stallKubelet(lost.name, false);
      api.setNodeReady(lost.name);
    }
    expect(tapscopeObjects()).toEqual([]);
  });

  it('captures on a node NotReady only for its pod network, named or turning so while its pod waits, with a note; a shell opens there too', async () => {
    const [netDown, flap] = [api.nodes[2]!, api.nodes[4]!];
    const network: { status: 'False'; reason: string; message: string } = {
      status: 'False', reason: 'KubeletNotReady',
      message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized',
    };
    const said = (n: string) => `node ${n} is NotReady (KubeletNotReady: ${network.message})`;
    api.setNodeReady(netDown.name, network);
    api.stallKubelet(flap.name, true);
    try {
      const t = createK8sTarget('k8s://tsk-token', opts({ readyTimeoutMs: 60_000 }));
      const rec = recorder();
      const seen = api.requests.length;
      const starting = t.start({ mode: 'afpacket', ifaces: [], nodes: [netDown.name, flap.name] }, rec.handlers);
      await until('the pod bound to the stalled node', () => phases(rec, flap.name).includes('scheduled'));
      // the kubelet reports the CNI gone (not-ready taint, which the capture pod tolerates), then comes round
      api.setNodeReady(flap.name, network);
      await until('the node\'s reason as its status', () => rec.statuses.some((s) => s.node === flap.name && s.message?.startsWith(`the node is NotReady (KubeletNotReady: container runtime network not ready`)));
      api.stallKubelet(flap.name, false);
      const handle = await starting;
      try {
        expect(phases(rec, netDown.name)).toContain('streaming');
        expect(phases(rec, flap.name)).toContain('streaming');
        expect(rec.statuses.filter((s) => s.phase === 'failed')).toEqual([]);
        // two nodes: one watch, from the listing they were chosen from (changes only, not every node again)
        expect(api.requests.slice(seen).filter((r) => r.startsWith('GET /api/v1/nodes?watch'))).toEqual([expect.stringMatching(/^GET \/api\/v1\/nodes\?watch=true&resourceVersion=\d+$/)]);
        expect(handle.notes).toContain(`Tried although not Ready: ${said(netDown.name)}. Its kubelet still runs, and starts host-network pods such as the capture pod while only the pod network is down.`);
      } finally {
        await handle.stop();
      }
      const shell = await t.openShell(netDown.name);
      let out = '';
      shell.onData((d) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => shell.onExit(r));
      shell.write('echo tsk-$((6*7)); exit 0\n');
      expect(await exited).toBe(0);
      expect(out).toContain(`tapscope: ${said(netDown.name)}; the shell pod started there all the same.`);
      expect(out).toContain('tsk-42');
    } finally {
      api.stallKubelet(flap.name, false);
      api.setNodeReady(flap.name);
      api.setNodeReady(netDown.name);
    }
    expect(tapscopeObjects()).toEqual([]);
  });

  it('ends the wait for a pod the scheduler refuses for good, with the scheduler\'s message, and fails the start when no node is left', async () => {
    const [full, ok] = [api.nodes[1]!, api.nodes[2]!];
    api.fillNode(full.name, '0/6 nodes are available: 1 node(s) had volume node affinity conflict, 5 node(s) didn\'t match Pod\'s node affinity/selector. preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling.');
    try {
      const t = createK8sTarget('k8s://tsk-token', opts({ readyTimeoutMs: 60_000 }));
      const why = new RegExp(`^The capture pod tapscope-[0-9a-f]+-\\w+ cannot be scheduled on ${full.name}: Unschedulable: 0/6 nodes are available: 1 node\\(s\\) had volume node affinity conflict, 5 node\\(s\\) didn't match Pod's node affinity/selector\\. preemption: .*[^.]\\.$`);
      const rec = recorder();
      const t0 = Date.now();
      const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [full.name, ok.name] }, rec.handlers);
      try {
        expect(Date.now() - t0).toBeLessThan(60_000);
        const failed = rec.statuses.find((s) => s.node === full.name && s.phase === 'failed');
        expect(failed?.error?.code).toBe('E_K8S_NODE_FAILED');
        expect(failed?.message).toMatch(why);
        expect(phases(rec, ok.name)).toContain('streaming');
      } finally {
        await handle.stop();
      }
      const e = await t.start({ mode: 'afpacket', ifaces: [], nodes: [full.name] }, recorder().handlers).then(() => null, (x: unknown) => x);
      expect(isTapscopeError(e, 'E_K8S_NODE_FAILED'), String(e)).toBe(true);
      expect((e as Error).message).toMatch(why);
      expect(Date.now() - t0).toBeLessThan(60_000);
    } finally {
      api.fillNode(full.name, false);
    }
    expect(tapscopeObjects()).toEqual([]);
  });
});

describe('a node without room for the capture pod', () => {
  const phases = (rec: Recorder, node: string) => rec.statuses.filter((s) => s.node === node).map((s) => s.phase);
  const room = new RegExp('^no room for the capture pod on the node yet \\(Unschedulable: 0/6 nodes are available: 1 Insufficient memory, 5 node\\(s\\) didn\'t match Pod\'s node affinity/selector\\. preemption: .*\\); waiting, as the scheduler tries again when pods end$');

  it('waits, saying why, while the scheduler finds no room, and captures once it places the pod', async () => {
    const node = api.nodes[1]!;
    api.fillNode(node.name, true);
    const freed = setTimeout(() => api.fillNode(node.name, false), 2000);
    try {
      const rec = recorder();
      const handle = await createK8sTarget('k8s://tsk-token', opts()).start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, rec.handlers);
      try {
        expect(rec.statuses.filter((s) => s.node === node.name && room.test(s.message ?? ''))).toHaveLength(1);
        expect(phases(rec, node.name)).not.toContain('failed');
        expect(phases(rec, node.name)).toContain('streaming');
      } finally {
        await handle.stop();
      }
    } finally {
      clearTimeout(freed);
      api.fillNode(node.name, false);
    }
    expect(tapscopeObjects()).toEqual([]);
  });

  it('fails the node at the start timeout with the scheduler\'s reason when no room comes', async () => {
    const node = api.nodes[1]!;
    api.fillNode(node.name, true);
    try {
      const e = await createK8sTarget('k8s://tsk-token', opts({ readyTimeoutMs: 3000 })).start({ mode: 'afpacket', ifaces: [], nodes: [node.name] }, recorder().handlers)
        .then(() => null, (x: unknown) => x);
      expect(isTapscopeError(e, 'E_K8S_NODE_FAILED'), String(e)).toBe(true);
      expect((e as Error).message).toMatch(new RegExp(`^Node ${node.name} did not get a running capture pod within 3 s \\(last phase: deploying; the scheduler found no room for it: Unschedulable: 0/6 nodes are available: 1 Insufficient memory, `));
    } finally {
      api.fillNode(node.name, false);
    }
    expect(tapscopeObjects()).toEqual([]);
  });
});

describe('shell', () => {
  it('opens a host shell on a node through a TTY exec and removes the shell pod after exit', async () => {
    const t = createK8sTarget('k8s://tsk-token', opts());
    const shell = await t.openShell(api.nodes[5]?.name as string);
    let out = '';
    shell.onData((d) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => shell.onExit(r));
    shell.resize(100, 30);
    shell.write('stty size; echo tsk-$((6*7)); exit 3\n');
    const code = await exited;
    expect(out).toContain('tsk-42');
    // Where nsenter into PID 1 is refused (this machine may itself be a container) the fallback must say so.
    const hostNs = spawnSync('nsenter', ['-t', '1', '-m', '-u', '-i', '-n', '-p', '--', 'true']).status === 0;
    expect(out.includes('tapscope: cannot enter the host namespaces')).toBe(!hostNs);
    expect(code).toBe(3);
    expect(out).toContain('30 100');
    expect(tapscopeObjects()).toEqual([]);
  });
});

describe('shell, exec refused', () => {
  it('removes the shell pod and stops its heartbeat when the exec into it fails', async () => {
    api.deny.push({ user: 'admin', verb: 'create', resource: 'pods/exec' });
    try {
      const t = createK8sTarget('k8s://tsk-token', opts({ heartbeatMs: 200 }));
      const e = await t.openShell(api.nodes[1]!.name).then(() => null, (x: unknown) => x);
      expect(isTapscopeError(e, 'E_K8S_FORBIDDEN'), String(e)).toBe(true);
      expect((e as Error).message).toMatch(/^Not allowed to create pods\/exec in namespace tapscope \(a shell in pod tapscope-shell-[0-9a-f]+-\w+\): /);
      expect(tapscopeObjects()).toEqual([]);
      const seen = api.requests.length;
      await new Promise((r) => setTimeout(r, 700));
      expect(api.requests.slice(seen).filter((r) => r.startsWith('PATCH'))).toEqual([]);
    } finally {
      api.deny.length = 0;
    }
  });

  it('stops the heartbeat of a shell whose DaemonSet was deleted under it, its pod left running (kubectl delete --cascade=orphan)', async () => {
    const t = createK8sTarget('k8s://tsk-token', opts({ heartbeatMs: 200 }));
    const shell = await t.openShell(api.nodes[1]!.name);
    const exited = new Promise<number | null>((r) => shell.onExit(r));
    const ds = api.list('daemonsets', 'tapscope').find((d) => d.metadata.name.startsWith('tapscope-shell-'))!;
    const pod = api.list('pods', 'tapscope').find((p) => p.metadata.name.startsWith(ds.metadata.name))!;
    try {
      await until('a heartbeat', () => api.requests.some((r) => r.startsWith(`PATCH /apis/apps/v1/namespaces/tapscope/daemonsets/${ds.metadata.name}`)));
      // (an orphaning delete: the garbage collector takes the owner reference off the pod, then the DaemonSet goes)
      api.put('pods', { ...pod, metadata: { ...pod.metadata, ownerReferences: [] } });
      api.remove('daemonsets', 'tapscope', ds.metadata.name);
      await new Promise((r) => setTimeout(r, 500));
      const seen = api.requests.length;
      await new Promise((r) => setTimeout(r, 1000));
      expect(api.requests.slice(seen).filter((r) => r.startsWith('PATCH'))).toEqual([]);
    } finally {
      api.remove('pods', 'tapscope', pod.metadata.name);
      await exited;
    }
    await until('the session\'s objects gone', () => tapscopeObjects().length === 0);
  });
});

describe('stop', () => {
  it('says so when a helper ignored SIGTERM and had to be killed: the end of its capture is missing', async () => {
    // a "helper" that ignores SIGTERM and writes nothing, run as the real one is (exec of the uploaded file)
    const src = join(dir, 'deaf-helper.c');
    writeFileSync(src, '#include <signal.h>\n#include <unistd.h>\nint main(void) { signal(SIGTERM, SIG_IGN); for (;;) pause(); }\n');
    const bin = join(dir, 'deaf-helper');
    execFileSync('cc', ['-O2', '-o', bin, src]);
    const node = api.nodes[3]!.name;
    const t = createK8sTarget('k8s://tsk-token', opts({ helperPath: bin }));
    const rec = recorder();
    const seen = api.requests.length;
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node] }, rec.handlers);
    // the one node is watched alone, from the listing it was chosen from: no other node's object is sent
    expect(api.requests.slice(seen).filter((r) => r.startsWith('GET /api/v1/nodes?watch'))).toEqual([
      expect.stringMatching(new RegExp(`^GET /api/v1/nodes\\?watch=true&fieldSelector=metadata\\.name%3D${node}&resourceVersion=\\d+$`)),
    ]);
    const t0 = Date.now();
    await handle.stop();
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(handle.notes).toContain(`${node}: the helper did not stop within 5 s of its input closing and was killed (it ignored SIGTERM): the packets it had not yet sent and its final statistics are missing`);
    expect(tapscopeObjects()).toEqual([]);
    expect(podTempDirs()).toEqual([]);
  });
});

describe('architectures', () => {
  it('sends each node the helper of its architecture, an aarch64 node its own (run here by qemu-user, so in AF_PACKET mode), and leaves out an architecture without one', async () => {
    const arm = api.nodes[5]!;
    const original = api.list('nodes').find((o) => o.metadata.name === arm.name)!;
    const asArch = (arch: string) => JSON.parse(JSON.stringify(original).replaceAll('"amd64"', `"${arch}"`)) as typeof original;
    // a node of an architecture no helper is built for (no namespace behind it: it must never be deployed to)
    api.put('nodes', {
      metadata: { name: 'tsk-s390x-node', labels: { 'kubernetes.io/arch': 's390x' } },
      status: { conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { architecture: 's390x', kernelVersion: '6.1.0', operatingSystem: 'linux' } },
    });
    api.put('nodes', asArch('arm64'));
    try {
      const t = createK8sTarget('k8s://tsk-token', opts());
      const listed = await t.listNodes();
      expect(listed.find((n) => n.name === arm.name)?.arch).toBe('aarch64');
      const pre = await t.preflight([arm.name]);
      // (the aarch64 helper has eBPF too: nothing to warn about)
      expect(pre[0]!.problems.filter((p) => /aarch64|AF_PACKET/.test(p))).toEqual([]);
      const e = await t.start({ mode: 'afpacket', ifaces: [], nodes: ['tsk-s390x-node'] }, recorder().handlers).then(() => null, (x: unknown) => x);
      expect(isTapscopeError(e, 'E_KERNEL_UNSUPPORTED'), String(e)).toBe(true);
      expect((e as Error).message).toBe('Not captured: tsk-s390x-node (no helper for their architecture in this build). This build has the helper for x86_64 and aarch64 nodes only.');
      const rec = recorder();
      // auto: the aarch64 helper, run here by qemu-user on this x86-64 kernel, finds a kernel of another architecture
      // and takes AF_PACKET by itself, saying why (on an aarch64 kernel it captures in eBPF mode: arm64-ebpf.test.ts)
      const handle = await t.start({ mode: 'auto', ifaces: [], nodes: [arm.name, api.nodes[0]!.name] }, rec.handlers);
      try {
        await until(`a DNS query in ${arm.name}'s stream`, () => {
          spawnSync('ip', ['netns', 'exec', arm.ns, 'getent', 'hosts', 'tskarmmark.test'], { stdio: 'ignore' });
          return Buffer.concat(rec.streams.get(arm.name) ?? []).includes('tskarmmark');
        });
      } finally {
        await handle.stop();
      }
      const bytes = Buffer.concat(rec.streams.get(arm.name) ?? []);
      expect(bytes.readUInt32LE(0)).toBe(0x0a0d0d0a);
      expect(bytes.toString('latin1')).toMatch(/"t":"capture","v":1,"helper":"[^"]*","mode":"afpacket","requestedMode":"auto","reason":"auto: the kernel is x86_64 but this helper is aarch64 \(run under emulation/);
      // the x86-64 node got its own helper, not the aarch64 one
      expect(Buffer.concat(rec.streams.get(api.nodes[0]!.name) ?? []).toString('latin1')).not.toContain('this helper is aarch64');
      expect(rec.statuses.filter((s) => s.node === arm.name).map((s) => s.phase)).toContain('streaming');
      // all nodes: the s390x one is named and left out, the others captured
      const rec2 = recorder();
      const all = await t.start({ mode: 'afpacket', ifaces: [] }, rec2.handlers);
      await all.stop();
      expect([...rec2.streams.keys()].sort()).toEqual(api.nodes.map((n) => n.name).sort());
      expect(all.notes.join('\n')).toContain('Not captured: tsk-s390x-node (no helper for their architecture in this build).');
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      api.put('nodes', original);
      api.remove('nodes', null, 'tsk-s390x-node');
    }
  });
});

describe('exec stream', () => {
  it('applies backpressure: a reader that stops reading stops the transfer instead of buffering it', async () => {
    const t = createK8sTarget('k8s://tsk-token', opts());
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [api.nodes[1]?.name as string] }, recorder().handlers);
    try {
      const pod = api.list('pods', 'tapscope')[0]?.metadata.name as string;
      const kc = kubeConfigFor(mergeKubeconfigs([kcToken]), 'tsk-token');
      const total = 256 * 1024 * 1024;
      const s = await execStream(kc, 'tapscope', pod, 'helper', ['head', '-c', String(total), '/dev/zero']);
      await until('the buffer to fill', () => s.stdout.readableLength >= 1 << 20);
      await new Promise((r) => setTimeout(r, 500));
      // Without backpressure the whole 256 MiB would pile up here while nobody reads.
      expect(s.stdout.readableLength + s.stdout.writableLength).toBeLessThan(16 << 20);
      let n = 0;
      s.stdout.on('data', (d: Buffer) => (n += d.length));
      expect(await s.exit).toBe(0);
      await until('all bytes read', () => n === total);
      s.stdin.destroy();
    } finally {
      await handle.stop();
    }
  });
});

describe('lost exec stream', () => {
  /** Makes DNS queries for NAME inside the node until its stream has them. */
  function markIn(rec: Recorder, i: number, name: string): Promise<boolean> {
    const n = api.nodes[i] as (typeof api.nodes)[number];
    return until(`${name} in ${n.name}'s stream`, () => {
      spawnSync('ip', ['netns', 'exec', n.ns, 'getent', 'hosts', name], { stdio: 'ignore' });
      return Buffer.concat(rec.streams.get(n.name) ?? []).includes(name.split('.')[0] as string);
    });
  }

  function phasesOf(rec: Recorder, node: string): string[] {
    return rec.statuses.filter((s) => s.node === node).map((s) => s.phase);
  }

  function tsharkNames(file: string): { code: number | null; stderr: string; names: string } {
    const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'dns.qry.name'], { encoding: 'utf8' });
    return { code: r.status, stderr: warnings(r.stderr), names: r.stdout };
  }

  /** tshark's stderr without its note about running as root. */
  function warnings(stderr: string): string {
    return stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Running as user')).join('\n');
  }

  it('resumes a node whose exec WebSocket is cut: data before and after in one valid file, a gap, other nodes untouched', async () => {
    const files = mkdtempSync(join(dir, 'resume-'));
    const t = createK8sTarget('k8s://tsk-token', opts({ reconnect: { first: 200, max: 1000, giveUpMs: 30_000 } }));
    const rec = recorder(files);
    const [a, b] = [api.nodes[0]?.name as string, api.nodes[1]?.name as string];
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [a, b] }, rec.handlers);
    try {
      await Promise.all([markIn(rec, 0, 'tskbefore0.test'), markIn(rec, 1, 'tskbefore1.test')]);
      expect(api.dropExec(a)).toBeGreaterThan(0);
      await until('node a reconnecting', () => phasesOf(rec, a).includes('reconnecting'));
      await until('node a streaming again', () => phasesOf(rec, a).slice(phasesOf(rec, a).indexOf('reconnecting')).includes('streaming'));
      await Promise.all([markIn(rec, 0, 'tskafter0.test'), markIn(rec, 1, 'tskafter1.test')]);
    } finally {
      await handle.stop();
    }
    await handle.done;
    for (const w of rec.writers.values()) w.close();
    // Two streams from a (the second a new section), one from b, which never noticed.
    expect(rec.gaps.filter((g) => g.node === a).map((g) => g.toMs === null)).toEqual([true, false]);
    const [open, closed] = rec.gaps as [StreamGap, StreamGap];
    expect(closed).toMatchObject({ node: a, fromMs: open.fromMs, reason: open.reason });
    expect(closed.toMs as number).toBeGreaterThanOrEqual(open.fromMs);
    expect(open.reason).toMatch(/exec stream .* was lost/);
    expect(phasesOf(rec, b)).not.toContain('reconnecting');
    expect(phasesOf(rec, a).at(-1)).toBe('stopped');
    // The resumed helper excludes the kubelet API too (each section's header says so).
    const excluded = `"excludedTcp":[{"ip":"${api.nodes[0]?.ip}","port":${KUBELET_PORT}}]`;
    expect(Buffer.concat(rec.streams.get(a) ?? []).toString('latin1').split(excluded).length - 1).toBe(2);
    for (const [node, i] of [[a, 0], [b, 1]] as const) {
      const r = tsharkNames(join(files, `${node}.pcapng`));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.names).toContain(`tskbefore${i}.test`);
      expect(r.names).toContain(`tskafter${i}.test`);
    }
    const quiet = spawnSync('tshark', ['-r', join(files, `${a}.pcapng`), '-q'], { encoding: 'utf8' });
    expect([quiet.status, warnings(quiet.stderr)]).toEqual([0, '']);
    expect(tapscopeObjects()).toEqual([]);
    expect(podTempDirs()).toEqual([]);
  });

  it('resumes every node after an API server restart, with a gap each and valid files', async () => {
    const files = mkdtempSync(join(dir, 'restart-'));
    const t = createK8sTarget('k8s://tsk-token', opts({ reconnect: { first: 200, max: 1000, giveUpMs: 30_000 } }));
    const rec = recorder(files);
    const [a, b] = [api.nodes[0]?.name as string, api.nodes[1]?.name as string];
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [a, b] }, rec.handlers);
    try {
      await Promise.all([markIn(rec, 0, 'tskprerestart0.test'), markIn(rec, 1, 'tskprerestart1.test')]);
      await api.restart(1500);
      await until('both nodes resumed', () => [a, b].every((n) => rec.gaps.some((g) => g.node === n && g.toMs !== null)), 300);
      await Promise.all([markIn(rec, 0, 'tskpostrestart0.test'), markIn(rec, 1, 'tskpostrestart1.test')]);
    } finally {
      await handle.stop();
    }
    for (const w of rec.writers.values()) w.close();
    for (const [node, i] of [[a, 0], [b, 1]] as const) {
      expect(phasesOf(rec, node)).toContain('reconnecting');
      const r = tsharkNames(join(files, `${node}.pcapng`));
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.names).toContain(`tskprerestart${i}.test`);
      expect(r.names).toContain(`tskpostrestart${i}.test`);
    }
    expect(tapscopeObjects()).toEqual([]);
    expect(podTempDirs()).toEqual([]);
  });

  it('fails the node with the reason after bounded retries when exec keeps being refused, and keeps the others going', async () => {
    const files = mkdtempSync(join(dir, 'refused-'));
    const t = createK8sTarget('k8s://tsk-token', opts({ reconnect: { first: 100, max: 400, giveUpMs: 2500 } }));
    const rec = recorder(files);
    const [a, b] = [api.nodes[2]?.name as string, api.nodes[3]?.name as string];
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [a, b] }, rec.handlers);
    try {
      await Promise.all([markIn(rec, 2, 'tskbefore2.test'), markIn(rec, 3, 'tskbefore3.test')]);
      api.refuseExec(a, 500);
      expect(api.dropExec(a)).toBeGreaterThan(0);
      const failed = await until('node a failed', () => rec.statuses.find((s) => s.node === a && s.phase === 'failed'), 300);
      expect(failed?.error?.code).toBe('E_K8S_NODE_FAILED');
      expect(failed?.message).toMatch(/exec stream .* was lost, and resuming failed for \d+ s; last try: .*\(HTTP 500\)/);
      expect(rec.statuses.filter((s) => s.node === a && s.phase === 'reconnecting').length).toBeGreaterThan(1);
      expect(rec.gaps.filter((g) => g.node === a).map((g) => g.toMs)).toEqual([null]);
      await markIn(rec, 3, 'tskafter3.test');
      expect(phasesOf(rec, b)).not.toContain('reconnecting');
      expect(phasesOf(rec, b)).not.toContain('failed');
    } finally {
      api.refuseExec(a, null);
      await handle.stop();
    }
    for (const w of rec.writers.values()) w.close();
    // What a sent before the cut is kept and readable, and b's file is whole.
    const ra = tsharkNames(join(files, `${a}.pcapng`));
    expect([ra.code, ra.stderr]).toEqual([0, '']);
    expect(ra.names).toContain('tskbefore2.test');
    const rb = tsharkNames(join(files, `${b}.pcapng`));
    expect([rb.code, rb.stderr]).toEqual([0, '']);
    expect(rb.names).toContain('tskafter3.test');
    expect(tapscopeObjects()).toEqual([]);
  });

  it('stops promptly and cleans up while a node is waiting to reconnect', async () => {
    const giveUpMs = 60_000;
    const t = createK8sTarget('k8s://tsk-token', opts({ reconnect: { first: 20_000, max: 20_000, giveUpMs } }));
    const rec = recorder();
    const [a, b] = [api.nodes[4]?.name as string, api.nodes[5]?.name as string];
    const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [a, b] }, rec.handlers);
    api.refuseExec(a, 500);
    try {
      expect(api.dropExec(a)).toBeGreaterThan(0);
      await until('node a reconnecting', () => phasesOf(rec, a).includes('reconnecting'));
      const t0 = Date.now();
      await handle.stop();
      await handle.done;
      // Far less than one backoff step: the stop did not wait for the retry.
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      api.refuseExec(a, null);
    }
    expect(phasesOf(rec, a).at(-1)).toBe('stopped');
    expect(phasesOf(rec, a)).not.toContain('failed');
    expect(tapscopeObjects()).toEqual([]);
    expect(podTempDirs()).toEqual([]);
  });
});

describe('credentials and permissions (review I: 7, 8, 10, 11)', () => {
  it('reports a failing exec credential plugin as a credentials error naming it, its exit code and its stderr, in one line', async () => {
    const plugin = join(dir, 'sso-expired.sh');
    writeFileSync(plugin, '#!/bin/sh\necho "error: the SSO session has expired; run \'aws sso login --profile prod\'" >&2\necho "hint: second line" >&2\nexit 4\n', { mode: 0o755 });
    const f = join(dir, 'kc-bad-exec');
    writeFileSync(f, readFileSync(api.kubeconfig(dir, 'exec', { context: 'tsk-bad-exec' }), 'utf8').replace(/command: .*/, `command: ${plugin}`));
    const t = createK8sTarget('k8s://tsk-bad-exec', opts({ kubeconfig: f }));
    const e = await t.listNodes().then(() => null, (x: unknown) => x);
    expect(isTapscopeError(e, 'E_AUTH_FAILED'), String(e)).toBe(true);
    const m = (e as Error).message;
    expect(m).toContain(`the credential plugin ${plugin} of user "tsk-bad-exec-user" failed with exit code 4`);
    expect(m).toContain('error: the SSO session has expired; run \'aws sso login --profile prod\' / hint: second line');
    expect(m).not.toMatch(/[\r\n]/);
    expect(m).not.toMatch(/VPN|proxy-url/);
  });

  it('runs an exec plugin given by a relative path from the kubeconfig\'s directory, not the current one', async () => {
    const sub = mkdtempSync(join(dir, 'kc-rel-'));
    writeFileSync(join(sub, 'plugin.sh'), readFileSync(api.execPlugin), { mode: 0o755 });
    const f = join(sub, 'config');
    writeFileSync(f, readFileSync(api.kubeconfig(dir, 'exec', { context: 'tsk-rel-exec' }), 'utf8').replace(/command: .*/, 'command: ./plugin.sh'));
    expect(process.cwd()).not.toBe(sub);
    const t = createK8sTarget('k8s://tsk-rel-exec', opts({ kubeconfig: f }));
    expect(await t.listNodes()).toHaveLength(6);
  });

  it('captures in an admin-prepared namespace without the right to get namespaces, and check reports no problem', async () => {
    api.put('namespaces', { metadata: { name: 'team-a', labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } }, status: { phase: 'Active' } });
    api.deny.push({ user: 'admin', verb: 'get', resource: 'namespaces' });
    try {
      const node = api.nodes[1]?.name as string;
      const t = createK8sTarget('k8s://tsk-token', opts({ namespace: 'team-a' }));
      const [pre] = await t.preflight([node]);
      expect(pre?.problems).toEqual([]);
      const handle = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node] }, recorder().handlers);
      await handle.stop();
      await handle.done;
      expect(handle.notes.join(' ')).not.toMatch(/Not removed|Could not remove/);
      expect(tapscopeObjects()).toEqual([]);
      expect(api.list('namespaces').some((n) => n.metadata.name === 'team-a')).toBe(true);
      // a namespace that is not there, with no right to read or create namespaces: check says so, capture says why
      api.deny.push({ user: 'admin', verb: 'create', resource: 'namespaces' });
      const t2 = createK8sTarget('k8s://tsk-token', opts({ namespace: 'nowhere' }));
      const [pre2] = await t2.preflight([node]);
      expect(pre2?.problems).toContain('RBAC: namespace nowhere does not exist, and this context cannot create namespaces.');
      const e = await t2.start({ mode: 'afpacket', ifaces: [], nodes: [node] }, recorder().handlers).then(() => null, (x: unknown) => x);
      expect(isTapscopeError(e, 'E_K8S_FORBIDDEN'), String(e)).toBe(true);
      expect((e as Error).message).toContain('Namespace "nowhere" does not exist, and this context may neither read nor create namespaces');
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      api.deny.length = 0;
      api.remove('namespaces', null, 'team-a');
    }
  });

  it('names a refused ServiceAccount delete on stop, check reports it first, and a namespace the capture created still goes', async () => {
    api.deny.push({ user: 'admin', verb: 'delete', resource: 'serviceaccounts' });
    api.put('namespaces', { metadata: { name: 'team-b', labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } }, status: { phase: 'Active' } });
    try {
      const node = api.nodes[2]?.name as string;
      // in the namespace the capture creates: deleting the namespace takes the ServiceAccount with it
      const t = createK8sTarget('k8s://tsk-token', opts());
      const [pre] = await t.preflight([node]);
      expect(pre?.problems).toContain('RBAC: cannot delete serviceaccounts in namespace tapscope.');
      const h1 = await t.start({ mode: 'afpacket', ifaces: [], nodes: [node] }, recorder().handlers);
      await h1.stop();
      await h1.done;
      expect(tapscopeObjects()).toEqual([]);
      expect(h1.notes.join(' ')).not.toMatch(/Not removed|Could not remove/);
      // in a namespace that was there: the ServiceAccount stays, and the note names it, why, and the remedy
      const t2 = createK8sTarget('k8s://tsk-token', opts({ namespace: 'team-b' }));
      const h2 = await t2.start({ mode: 'afpacket', ifaces: [], nodes: [node] }, recorder().handlers);
      const t0 = Date.now();
      await h2.stop();
      await h2.done;
      expect(Date.now() - t0).toBeLessThan(15_000);
      const left = tapscopeObjects();
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(/^serviceaccounts\/tapscope-/);
      const note = h2.notes.find((n) => n.startsWith('Could not remove'));
      expect(note).toContain(`serviceaccount team-b/${left[0]!.split('/')[1]} (not deleted: cannot delete serviceaccounts in namespace team-b)`);
      expect(note).toContain('tapscope clean --target k8s://tsk-token');
      expect(note).not.toContain('list session objects');
    } finally {
      api.deny.length = 0;
      api.remove('namespaces', null, 'team-b');
    }
    expect(tapscopeObjects()).toEqual([]);
  });
});
