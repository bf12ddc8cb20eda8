// Ctrl-C while a Kubernetes capture is still starting (the DaemonSet made, its pods not streaming yet: an image pull):
// the start is cancelled and everything it created is removed, by the CLI (SIGINT) and by the service (close(), as
// the app does when its window closes), against the strict test API server with its watches slowed down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startK8sApi, type K8sApi } from '../k8s-api/server.js';
import { testHelper } from '../lib/sshd.js';
import { until } from '../lib/until.js';
import { startCli } from './core-cli.js';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { isStartCancelled } from '../../src/targets/target.js';

let api: K8sApi;
let dir: string;
let kc: string;
let context: string;

beforeAll(async () => {
  api = await startK8sApi({ id: 5, nodes: 2 });
  dir = mkdtempSync('/tmp/tsk-cancel-');
  kc = api.kubeconfig(dir, 'token');
  context = /current-context: (\S+)/.exec(readFileSync(kc, 'utf8'))?.[1] ?? '';
});

afterAll(async () => {
  await api?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function tapscopeObjects(): string[] {
  return ['daemonsets', 'serviceaccounts', 'pods', 'namespaces'].flatMap((k) => api.list(k)
    .filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'tapscope')
    .map((o) => `${k}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`));
}

describe('Ctrl-C while a Kubernetes capture starts', () => {
  it('the CLI cancels the start, removes the DaemonSet, its pods, ServiceAccount and namespace, says so in one line and exits 130', async () => {
    api.slowWatches(30_000);
    try {
      const env = { TAPSCOPE_HOME: join(dir, 'home-cli'), TAPSCOPE_HELPER: testHelper() };
      const cap = startCli(['capture', '--target', `k8s://${context}`, '--kubeconfig', kc, '--mode', 'afpacket', '--duration', '10', '--out', join(dir, 'cli.pcapng')], env);
      await until('the DaemonSet and its pods are there', () => tapscopeObjects().some((o) => o.startsWith('pods/')), 300);
      expect(tapscopeObjects().filter((o) => o.startsWith('daemonsets/'))).toHaveLength(1);
      cap.child.kill('SIGINT');
      const code = await cap.exited;
      expect(code, cap.stderr()).toBe(130);
      expect(cap.stderr()).toMatch(/tapscope: capture cancelled before it started: removed DaemonSet tapscope\/tapscope-[0-9a-f]+ \(and its pods\), ServiceAccount tapscope\/tapscope-[0-9a-f]+, namespace tapscope\n/);
      expect(cap.stderr()).not.toContain('may be left');
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      api.slowWatches(0);
    }
  }, 120_000);

  it('the service cancels a start in progress on close() (the app quitting) and on an aborted signal, leaving nothing', async () => {
    api.slowWatches(30_000);
    const svc = new CoreService({ store: new SessionStore(join(dir, 'home-svc')), targetOptions: { kubeconfig: kc, helperPath: testHelper() } });
    try {
      const req = { target: `k8s://${context}`, mode: 'afpacket' as const, ifaces: [], duration: 10 };
      const closing = svc.startCapture(req).then(() => null, (e: unknown) => e);
      await until('the DaemonSet is there', () => tapscopeObjects().some((o) => o.startsWith('daemonsets/')), 300);
      await svc.close();
      const e1 = await closing;
      expect(isStartCancelled(e1), String(e1)).toBe(true);
      expect(tapscopeObjects()).toEqual([]);
      expect(await svc.listSessions()).toEqual([]);

      const ac = new AbortController();
      const aborted = svc.startCapture(req, { signal: ac.signal }).then(() => null, (e: unknown) => e);
      await until('the DaemonSet is there', () => tapscopeObjects().some((o) => o.startsWith('daemonsets/')), 300);
      ac.abort();
      const e2 = await aborted;
      expect(isStartCancelled(e2), String(e2)).toBe(true);
      expect((e2 as Error).message).toMatch(/removed DaemonSet tapscope\/tapscope-/);
      expect(tapscopeObjects()).toEqual([]);
    } finally {
      api.slowWatches(0);
      await svc.close();
    }
  }, 120_000);
});
