// Kubeconfig merging as kubectl does it, exec-plugin lookup with a short PATH, target URIs, error
// wording for RBAC/admission, workload names, and the manifests checked against the real schemas.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecPlugin, kubeConfigFor, kubeconfigFiles, mergeKubeconfigs } from '../../src/targets/k8s/kubeconfig.js';
import { parseK8sUri } from '../../src/targets/k8s/index.js';
import { describeForbidden, k8sError } from '../../src/targets/k8s/errors.js';
import { workloadOf } from '../../src/targets/k8s/pod-index.js';
import { CAPTURE_CAPABILITIES, daemonSetManifest, dryRunPod, namespaceManifest, serviceAccountManifest } from '../../src/targets/k8s/manifests.js';
import { validateBody } from '../k8s-api/validate.js';
import { CoreV1Api } from '@kubernetes/client-node';

let dir: string;

function kc(name: string, body: { current?: string; clusters: Array<[string, string]>; users: Array<[string, string]>; contexts: Array<[string, string, string]> }): string {
  const f = join(dir, name);
  writeFileSync(f, [
    'apiVersion: v1', 'kind: Config', ...(body.current ? [`current-context: ${body.current}`] : []),
    'clusters:', ...body.clusters.flatMap(([n, s]) => [`- name: ${n}`, '  cluster:', `    server: ${s}`]),
    'users:', ...body.users.flatMap(([n, t]) => [`- name: ${n}`, '  user:', `    token: ${t}`]),
    'contexts:', ...body.contexts.flatMap(([n, c, u]) => [`- name: ${n}`, '  context:', `    cluster: ${c}`, `    user: ${u}`]),
    '',
  ].join('\n'));
  return f;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsk-unit-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('KUBECONFIG merge', () => {
  it('lets the first file win for each name and for current-context', () => {
    const a = kc('a', { current: 'ctx-a', clusters: [['c1', 'https://a.example:6443']], users: [['u1', 'token-a']], contexts: [['ctx-a', 'c1', 'u1'], ['shared', 'c1', 'u1']] });
    const b = kc('b', { current: 'ctx-b', clusters: [['c1', 'https://b.example:6443'], ['c2', 'https://c2.example']], users: [['u1', 'token-b'], ['u2', 'x']], contexts: [['ctx-b', 'c2', 'u2'], ['shared', 'c2', 'u2']] });
    const m = mergeKubeconfigs(kubeconfigFiles(`${a}:${b}`));
    expect(m.currentContext).toBe('ctx-a');
    expect(m.contexts.map((c) => c.name)).toEqual(['ctx-a', 'shared', 'ctx-b']);
    expect(m.clusters.find((c) => c.name === 'c1')?.server).toBe('https://a.example:6443');
    expect(m.users.find((u) => u.name === 'u1')?.token).toBe('token-a');
    expect(kubeConfigFor(m, 'shared').getCurrentCluster()?.server).toBe('https://a.example:6443');
    expect(kubeConfigFor(m, 'ctx-b').getCurrentCluster()?.server).toBe('https://c2.example');
  });

  it('skips missing files, and says which contexts exist when one is unknown', () => {
    const a = kc('only', { current: 'x', clusters: [['c', 'https://c']], users: [['u', 't']], contexts: [['x', 'c', 'u']] });
    const m = mergeKubeconfigs([join(dir, 'missing'), a]);
    expect(() => kubeConfigFor(m, 'nope')).toThrow(/Known contexts: x/);
    expect(() => mergeKubeconfigs([join(dir, 'missing')])).toThrow(/No kubeconfig found/);
  });

  it('uses ~/.kube/config when KUBECONFIG is unset', () => {
    expect(kubeconfigFiles(undefined, { HOME: '/home/someone' })).toEqual(['/home/someone/.kube/config']);
  });
});

describe('exec credential plugins', () => {
  it('are found outside a short PATH (~/bin, ~/.krew/bin, ~/go/bin ...) and made absolute', () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, 'go', 'bin'), { recursive: true });
    const plugin = join(home, 'go', 'bin', 'tsk-auth-plugin');
    writeFileSync(plugin, '#!/bin/sh\necho {}\n');
    chmodSync(plugin, 0o755);
    const env = { PATH: '/nonexistent', HOME: home };
    expect(findExecPlugin('tsk-auth-plugin', env)).toBe(plugin);
    expect(findExecPlugin('tsk-no-such-plugin', env)).toBeNull();
    const f = join(dir, 'kc-exec');
    writeFileSync(f, [
      'apiVersion: v1', 'kind: Config', 'current-context: e',
      'clusters:', '- name: c', '  cluster:', '    server: https://c',
      'users:', '- name: u', '  user:', '    exec:', '      apiVersion: client.authentication.k8s.io/v1', '      command: tsk-auth-plugin',
      'contexts:', '- name: e', '  context:', '    cluster: c', '    user: u', '',
    ].join('\n'));
    const k = kubeConfigFor(mergeKubeconfigs([f]), null, env);
    expect(k.getCurrentUser()?.exec.command).toBe(plugin);
    expect(() => kubeConfigFor(mergeKubeconfigs([f]), null, { PATH: '/nonexistent', HOME: dir })).toThrow(/tsk-auth-plugin.*not found/);
  });
});

describe('exec credential plugins (review I: 7, 8)', () => {
  const kcWith = (file: string, command: string) => writeFileSync(file, [
    'apiVersion: v1', 'kind: Config', 'current-context: e',
    'clusters:', '- name: c', '  cluster:', '    server: https://127.0.0.1:1',
    'users:', '- name: u', '  user:', '    exec:', '      apiVersion: client.authentication.k8s.io/v1', `      command: ${command}`, '      interactiveMode: Never',
    'contexts:', '- name: e', '  context:', '    cluster: c', '    user: u', '',
  ].join('\n'));

  it('resolve a relative plugin path against the kubeconfig file\'s directory; a bare name is looked up in PATH only', () => {
    const kdir = join(dir, 'rel-kube');
    mkdirSync(join(kdir, 'bin'), { recursive: true });
    for (const n of ['plugin.sh', 'bin/p', 'bare-plugin']) {
      writeFileSync(join(kdir, n), '#!/bin/sh\necho {}\n');
      chmodSync(join(kdir, n), 0o755);
    }
    const env = { PATH: '/nonexistent', HOME: join(dir, 'nohome') };
    for (const [command, expected] of [['./plugin.sh', join(kdir, 'plugin.sh')], ['bin/p', join(kdir, 'bin', 'p')]] as const) {
      const f = join(kdir, 'config');
      kcWith(f, command);
      expect(process.cwd()).not.toBe(kdir);
      expect(kubeConfigFor(mergeKubeconfigs([f]), null, env).getCurrentUser()?.exec.command).toBe(expected);
    }
    // (kubectl: a name without a separator is never taken from the kubeconfig's directory)
    kcWith(join(kdir, 'config'), 'bare-plugin');
    expect(() => kubeConfigFor(mergeKubeconfigs([join(kdir, 'config')]), null, env)).toThrow(/bare-plugin.*not found in PATH/);
    kcWith(join(kdir, 'config'), './missing.sh');
    expect(() => kubeConfigFor(mergeKubeconfigs([join(kdir, 'config')]), null, env)).toThrow(/missing\.sh.*relative to the kubeconfig file's directory/);
  });

  it('that fail are a credentials error with the plugin, its exit code and its first stderr lines, in one line', async () => {
    const plugin = join(dir, 'failing-plugin.sh');
    writeFileSync(plugin, '#!/bin/sh\necho "error: the SSO session has expired" >&2\necho "run aws sso login" >&2\necho "3" >&2\necho "4" >&2\nexit 2\n');
    chmodSync(plugin, 0o755);
    const f = join(dir, 'kc-failing');
    kcWith(f, plugin);
    const k = kubeConfigFor(mergeKubeconfigs([f]), null);
    const e = await k.makeApiClient(CoreV1Api).listNode().then(() => null, (x: unknown) => k8sError(x, 'list nodes', { context: 'e', user: 'u' }));
    expect(e?.code).toBe('E_AUTH_FAILED');
    expect(e?.message).toBe(`Could not get credentials for context "e": the credential plugin ${plugin} of user "u" failed with exit code 2: `
      + 'error: the SSO session has expired / run aws sso login / 3 (and 1 more line). Log in again as it says (run it yourself to see all of its output), then retry.');
    expect(e?.details).toMatchObject({ plugin, user: 'u', exitCode: 2 });
    // any other error without a status stays "unreachable", in one line
    const u = k8sError(new Error('some failure\nsecond line\n'), 'list nodes', { context: 'c' });
    expect(u.code).toBe('E_TARGET_UNREACHABLE');
    expect(u.message).not.toMatch(/\n/);
  });
});

describe('URIs and errors', () => {
  it('parses k8s://CONTEXT[/NODE]', () => {
    expect(parseK8sUri('k8s://prod')).toEqual({ context: 'prod', node: null });
    expect(parseK8sUri('k8s://prod/node-1')).toEqual({ context: 'prod', node: 'node-1' });
    expect(parseK8sUri('k8s://')).toEqual({ context: null, node: null });
    expect(() => parseK8sUri('ssh://x')).toThrow(/k8s:\/\/CONTEXT/);
  });

  it('names verb and resource of RBAC denials, and the label for admission refusals', () => {
    const rbac = 'daemonsets.apps is forbidden: User "alice" cannot create resource "daemonsets" in API group "apps" in the namespace "tapscope"';
    expect(describeForbidden(rbac)).toBe('cannot create daemonsets.apps in namespace tapscope');
    expect(describeForbidden('nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope')).toBe('cannot list nodes at cluster scope');
    const e = k8sError({ code: 403, body: JSON.stringify({ kind: 'Status', message: rbac, reason: 'Forbidden', code: 403 }) }, 'create daemonsets.apps', { context: 'c' });
    expect(e.code).toBe('E_K8S_FORBIDDEN');
    const psa = k8sError({ code: 403, body: { message: 'pods "x" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' } }, 'create pods', { context: 'c', namespace: 'obs' });
    expect(psa.code).toBe('E_K8S_ADMISSION');
    expect(psa.message).toContain('kubectl label namespace obs pod-security.kubernetes.io/enforce=privileged');
    // a namespace being deleted refuses new objects with 403 too: no permission is missing, and the message says what is
    const terminating = k8sError({ code: 403, body: { message: 'serviceaccounts is forbidden: unable to create new content in namespace t because it is being terminated',
      details: { causes: [{ reason: 'NamespaceTerminating', message: 'namespace t is being terminated', field: 'metadata.namespace' }] } } }, 'create serviceaccounts in namespace t', { context: 'c' });
    expect(terminating.code).toBe('E_TARGET_INVALID');
    expect(terminating.message).toMatch(/^Could not create serviceaccounts in namespace t: the namespace is being deleted \(`tapscope clean`, a session that made it ending, or kubectl\)\. Try again once it is gone/);
    expect(k8sError({ code: 401 }, 'list nodes', { context: 'c', user: 'u' }).code).toBe('E_AUTH_FAILED');
    expect(k8sError(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }), 'list nodes', { context: 'c' }).code).toBe('E_TARGET_UNREACHABLE');
  });

  it('names workloads from owners (Deployment through its ReplicaSet)', () => {
    const owner = (kind: string, name: string) => [{ apiVersion: 'apps/v1', kind, name, uid: 'u', controller: true }];
    expect(workloadOf({ metadata: { labels: { 'pod-template-hash': '5d4f8' }, ownerReferences: owner('ReplicaSet', 'api-5d4f8') } })).toBe('Deployment/api');
    expect(workloadOf({ metadata: { ownerReferences: owner('ReplicaSet', 'bare-rs') } })).toBe('ReplicaSet/bare-rs');
    expect(workloadOf({ metadata: { ownerReferences: owner('DaemonSet', 'agent') } })).toBe('DaemonSet/agent');
    expect(workloadOf({ metadata: {} })).toBeNull();
  });
});

describe('manifests', () => {
  const spec = {
    name: 'tapscope-ab12', namespace: 'tapscope', session: 'ab12', serviceAccount: 'tapscope-ab12', image: 'busybox:1.36', nodes: ['n1', 'n2'],
    heartbeat: { at: new Date('2025-01-02T03:04:05.678Z'), intervalMs: 20_000, startedBy: 'alice@laptop' },
  };

  it('pass the real schemas with no unknown fields', () => {
    expect(validateBody('DaemonSet', daemonSetManifest(spec))).toBeNull();
    expect(validateBody('DaemonSet', daemonSetManifest({ ...spec, shell: true }))).toBeNull();
    expect(validateBody('Pod', dryRunPod(spec))).toBeNull();
    expect(validateBody('Namespace', namespaceManifest('tapscope', 'ab12'))).toBeNull();
    expect(validateBody('ServiceAccount', serviceAccountManifest('tapscope-ab12', 'tapscope', 'ab12'))).toBeNull();
    // The validator itself rejects what a strict API server rejects.
    const bad = daemonSetManifest(spec) as unknown as { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
    (bad.spec.template.spec.containers[0] as Record<string, unknown>).privilegedd = true;
    expect(validateBody('DaemonSet', bad)?.causes[0]?.message).toBe('unknown field "spec.template.spec.containers.0.privilegedd"');
  });

  it('restrict pods to the chosen nodes, tolerate every taint, use host namespaces and only the needed capabilities', () => {
    const ds = daemonSetManifest(spec);
    const pod = ds.spec?.template.spec;
    expect(pod?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1', 'n2'] }] },
    ]);
    expect(pod?.tolerations).toEqual([{ operator: 'Exists' }]);
    expect([pod?.hostNetwork, pod?.hostPID]).toEqual([true, true]);
    const sc = pod?.containers[0]?.securityContext;
    expect(sc?.privileged).toBe(false);
    expect(sc?.capabilities?.add).toEqual(CAPTURE_CAPABILITIES);
    expect(CAPTURE_CAPABILITIES).not.toContain('SYS_ADMIN');
    for (const o of [ds, ds.spec?.template]) {
      expect(o?.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'tapscope', 'tapscope.dev/session': 'ab12' });
    }
  });
});
