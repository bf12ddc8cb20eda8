// A strict test stand-in for a Kubernetes API server: HTTPS with its own CA, authentication by bearer
// token (static or issued to an exec credential plugin) and client certificate, discovery, nodes,
// namespaces, pods (list/watch/dry-run create), services, serviceaccounts, daemonsets, events,
// SelfSubjectAccessReview, JSON Patch of metadata, deletes held by finalizers, and pods/exec over WebSocket (v5/v4.channel.k8s.io). Every
// request body is validated against the real schemas with unknown fields rejected; RBAC denials and Pod Security
// admission refusals use the real Status messages. A small DaemonSet controller makes a pod per node (with the
// node's own affinity term, as the real one), a scheduler binds it or says why not (PodScheduled=False), and a
// kubelet per node starts it once the node is Ready (or, with the pod network down, at once for a host-network pod);
// each node is a network namespace and a pod's exec really runs there.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import pty from 'node-pty';
import { validateBody } from './validate.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The kubelet port the fake nodes report in status.daemonEndpoints. */
export const KUBELET_PORT = 11250;

export interface FakeNode {
  name: string; ns: string; ip: string; taints?: Obj[]; /** its interface inside ns */ dev?: string;
  /** the kubelet starts no pod (a hung container runtime), whatever the node's Ready condition says */
  stalled?: boolean;
  /** the scheduler's refusal of pods for this node (no room on it), as its PodScheduled=False message says */
  full?: string;
}

/** A node's Ready condition, as the kubelet or the node controller sets it. */
export interface ReadyCondition { status: 'True' | 'False' | 'Unknown'; reason: string; message: string }

export interface RbacRule {
  /** `user` the rule applies to; '*' for everyone. */
  user: string;
  verb: string;
  /** `resource[.group]`, e.g. `daemonsets.apps`, `pods/exec`, `nodes` */
  resource: string;
  namespace?: string;
}

export interface K8sApiOptions {
  /** 0-15: netns `tsk-<id>-<n>`, node n at 10.205.<id*16+n>.2 */
  id: number;
  nodes: number;
  /** Static bearer tokens → user names. */
  tokens?: Record<string, string>;
  /** Pod Security level for namespaces without the enforce label. Default `privileged`. */
  psaDefault?: 'privileged' | 'baseline' | 'restricted';
}

export interface K8sApi {
  url: string;
  caFile: string;
  clientCert: { cert: string; key: string; user: string };
  /** A shell script usable as a kubeconfig exec plugin; each run issues a fresh token the server accepts. */
  execPlugin: string;
  nodes: FakeNode[];
  /** RBAC denials, checked in order (everything else is allowed). */
  deny: RbacRule[];
  setPsaDefault(level: 'privileged' | 'baseline' | 'restricted'): void;
  /** Direct store access for tests (pods of other workloads, services, pre-existing namespaces, a crashed session's objects). */
  put(kind: 'pods' | 'services' | 'namespaces' | 'nodes' | 'daemonsets' | 'serviceaccounts', obj: Obj): Obj;
  remove(kind: 'pods' | 'services' | 'namespaces' | 'nodes' | 'daemonsets' | 'serviceaccounts', namespace: string | null, name: string): void;
  list(kind: string, namespace?: string | null): Obj[];
  /** Parent of the per-pod dirs that stand in for each container's /tmp (removed with the pod). */
  podTmpRoot: string;
  /** Every request seen, for assertions ("METHOD path"). */
  requests: string[];
  /** Bodies rejected as invalid (a test failing here means our client sent something a real server refuses). */
  rejected: Array<{ path: string; message: string }>;
  kubeconfig(dir: string, user: 'token' | 'cert' | 'exec', extra?: { context?: string; token?: string }): string;
  /** Test hook: cuts the open exec WebSockets into pods on `node` (socket destroyed, no status), as a lost connection does. Returns how many. */
  dropExec(node: string): number;
  /** Test hook: answers new exec requests into pods on `node` with HTTP `code` (null: serve them again). */
  refuseExec(node: string, code: number | null): void;
  /** Test hook: watches open `ms` later (a slow link), so objects may change before a watch sees them. */
  slowWatches(ms: number): void;
  /** Test hook: an API server restart: every connection is cut, the port refuses connections for `downMs`, then listens again. */
  restart(downMs: number): Promise<void>;
  /**
   * Test hook: sets `node`'s Ready condition, with the taint the node controller adds (not-ready or unreachable,
   * NoSchedule). A node that is not Ready starts no new pod, except a host-network one while Ready is False for the pod
   * network only (a message with `NetworkReady=false`), as the kubelet does. Default: Ready (KubeletReady).
   */
  setNodeReady(node: string, ready?: ReadyCondition): void;
  /** Test hook: `node`'s kubelet starts no pod while the node still reports Ready (as in the node controller's grace period). */
  stallKubelet(node: string, stalled: boolean): void;
  /** Test hook: `fn` is awaited before each request (its method and path) is handled, holding it meanwhile; null: none. */
  holdRequests(fn: ((method: string, path: string) => Promise<void> | void) | null): void;
  /** Test hook: the server's clock runs `ms` ahead of this machine's (negative: behind); its times and Date headers follow it. */
  skewClock(ms: number): void;
  /**
   * Test hook: the scheduler finds no room for pods on `node` (true: Insufficient memory), refuses them for `reason` (a
   * scheduler message), or places them again (false), the pods it refused too, as the scheduler retries them.
   */
  fillNode(node: string, full: boolean | string): void;
  close(): Promise<void>;
}

const GROUPS: Record<string, { group: string; namespaced: boolean; kind: string; listKind: string; version: string }> = {
  nodes: { group: '', namespaced: false, kind: 'Node', listKind: 'NodeList', version: 'v1' },
  namespaces: { group: '', namespaced: false, kind: 'Namespace', listKind: 'NamespaceList', version: 'v1' },
  pods: { group: '', namespaced: true, kind: 'Pod', listKind: 'PodList', version: 'v1' },
  services: { group: '', namespaced: true, kind: 'Service', listKind: 'ServiceList', version: 'v1' },
  serviceaccounts: { group: '', namespaced: true, kind: 'ServiceAccount', listKind: 'ServiceAccountList', version: 'v1' },
  events: { group: '', namespaced: true, kind: 'Event', listKind: 'EventList', version: 'v1' },
  daemonsets: { group: 'apps', namespaced: true, kind: 'DaemonSet', listKind: 'DaemonSetList', version: 'apps/v1' },
};

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function status(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function matchLabels(selector: string | null, labels: Obj | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  return selector.split(',').filter(Boolean).every((term) => {
    const ne = term.split('!=');
    if (ne.length === 2) return l[ne[0] as string] !== ne[1];
    const eq = term.split(/==?/);
    if (eq.length === 2) return l[eq[0] as string] === eq[1];
    return term.startsWith('!') ? !(term.slice(1) in l) : term in l;
  });
}

function matchFields(selector: string | null, o: Obj): boolean {
  if (!selector) return true;
  return selector.split(',').filter(Boolean).every((term) => {
    const [k, v] = term.split(/==?/) as [string, string];
    const val = k.split('.').reduce<unknown>((acc, p) => (acc && typeof acc === 'object' ? (acc as Obj)[p] : undefined), o);
    return String(val ?? '') === v;
  });
}

const BASELINE_CAPS = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);

/** Pod Security Standards, the checks that matter for a capture pod, worded as the admission plugin words them. */
function podSecurityViolations(level: string, spec: Obj): string[] {
  if (level === 'privileged') return [];
  const v: string[] = [];
  const hostNs = ['hostNetwork', 'hostPID', 'hostIPC'].filter((k) => spec[k] === true);
  if (hostNs.length) v.push(`host namespaces (${hostNs.map((k) => `${k}=true`).join(', ')})`);
  const priv = (spec.containers ?? []).filter((c: Obj) => c.securityContext?.privileged === true).map((c: Obj) => `"${c.name}"`);
  if (priv.length) v.push(`privileged (container ${priv.join(', ')} must not set securityContext.privileged=true)`);
  const hp = (spec.volumes ?? []).filter((x: Obj) => x.hostPath).map((x: Obj) => `"${x.name}"`);
  if (hp.length) v.push(`hostPath volumes (volume${hp.length > 1 ? 's' : ''} ${hp.join(', ')})`);
  for (const c of spec.containers ?? []) {
    const add: string[] = c.securityContext?.capabilities?.add ?? [];
    const bad = level === 'restricted' ? add.filter((x) => x !== 'NET_BIND_SERVICE') : add.filter((x) => !BASELINE_CAPS.has(x));
    if (bad.length) v.push(`non-default capabilities (container "${c.name}" must not include ${bad.map((x) => `"${x}"`).join(', ')} in securityContext.capabilities.add)`);
  }
  if (level === 'restricted') {
    for (const c of spec.containers ?? []) {
      if (c.securityContext?.allowPrivilegeEscalation !== false) v.push(`allowPrivilegeEscalation != false (container "${c.name}" must set securityContext.allowPrivilegeEscalation=false)`);
      if (spec.securityContext?.runAsNonRoot !== true && c.securityContext?.runAsNonRoot !== true) v.push(`runAsNonRoot != true (pod or container "${c.name}" must set securityContext.runAsNonRoot=true)`);
    }
  }
  return v;
}

/**
 * RFC 6902 add, remove, replace and test on a copy of `doc`; a path that is not there throws, worded as the API
 * server's JSON Patch library words it.
 */
function applyJsonPatch(doc: Obj, ops: Obj[]): Obj {
  const out = structuredClone(doc);
  for (const op of ops) {
    const path = String(op.path);
    const parts = path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop();
    const parent = parts.reduce<unknown>((o, p) => (o && typeof o === 'object' ? (o as Obj)[p] : undefined), out) as Obj | undefined;
    if (!path.startsWith('/') || last === undefined || !parent || typeof parent !== 'object') {
      throw new Error(`${op.op} operation does not apply: doc is missing path: "${path}": missing value`);
    }
    const index = Array.isArray(parent) ? (last === '-' && op.op === 'add' ? parent.length : Number(last)) : null;
    const has = index === null ? Object.prototype.hasOwnProperty.call(parent, last) : Number.isInteger(index) && index >= 0 && index < parent.length;
    if (op.op !== 'add' && !has) throw new Error(`${op.op} operation does not apply: doc is missing key: ${path}: missing value`);
    if (op.op !== 'remove' && !('value' in op)) throw new Error(`${op.op} operation, missing value field`);
    if (op.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new Error(`testing value ${path} failed: test failed`);
    } else if (index !== null) {
      (parent as unknown as unknown[]).splice(index, op.op === 'add' ? 0 : 1, ...(op.op === 'remove' ? [] : [op.value]));
    } else if (op.op === 'remove') {
      delete parent[last];
    } else {
      parent[last] = op.value;
    }
  }
  return out;
}

/** The top-level and metadata fields a patch changed ("spec", "metadata.annotations"). */
function changedFields(before: Obj, after: Obj): string[] {
  const diff = (a: Obj, b: Obj, prefix: string) => [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])]
    .filter((k) => JSON.stringify(a?.[k]) !== JSON.stringify(b?.[k])).map((k) => `${prefix}${k}`);
  return diff(before, after, '').flatMap((f) => (f === 'metadata' ? diff(before.metadata, after.metadata, 'metadata.') : [f]));
}

/** A fieldsV1 set of the fields of `o` (objects by their keys; a list or a value is a leaf), as managedFields records them. */
function fieldsOf(o: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o ?? {})) out[`f:${k}`] = v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length ? fieldsOf(v) : {};
  return out;
}

/**
 * The managedFields of `after`, an Update by `manager` from `before` (null: a create), as the API server keeps them:
 * the labels and annotations it added or changed become its own (and no other manager's), removed ones nobody's; its
 * entry's time is the server's clock at a change of its fields, and an entry left with no fields goes. A create gives
 * its manager every field of the object.
 */
function managed(before: Obj | null, after: Obj, manager: string, apiVersion: string, time: string): Obj[] {
  if (!before) {
    const { name: _n, namespace: _ns, managedFields: _m, uid: _u, resourceVersion: _r, creationTimestamp: _c, generation: _g, ...meta } = after.metadata;
    const { metadata: _md, apiVersion: _a, kind: _k, status: _s, ...rest } = after;
    return [{ manager, operation: 'Update', apiVersion, time, fieldsType: 'FieldsV1', fieldsV1: fieldsOf({ ...rest, ...(Object.keys(meta).length ? { metadata: meta } : {}) }) }];
  }
  const entries: Obj[] = structuredClone(before.metadata.managedFields ?? []);
  let changed = false;
  for (const map of ['labels', 'annotations']) {
    const a: Obj = before.metadata[map] ?? {};
    const b: Obj = after.metadata[map] ?? {};
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (a[k] === b[k]) continue;
      changed = true;
      for (const e of entries) {
        const md = e.fieldsV1?.['f:metadata'];
        if (!md?.[`f:${map}`]) continue;
        delete md[`f:${map}`][`f:${k}`];
        if (Object.keys(md[`f:${map}`]).length === 0) delete md[`f:${map}`];
        if (Object.keys(md).length === 0) delete e.fieldsV1['f:metadata'];
      }
      if (!(k in b)) continue;
      let mine = entries.find((e) => e.manager === manager && e.operation === 'Update');
      if (!mine) entries.push(mine = { manager, operation: 'Update', apiVersion, time, fieldsType: 'FieldsV1', fieldsV1: {} });
      ((mine.fieldsV1['f:metadata'] ??= {})[`f:${map}`] ??= {})[`f:${k}`] = {};
    }
  }
  if (changed) for (const e of entries) if (e.manager === manager && e.operation === 'Update') e.time = time;
  return entries.filter((e) => Object.keys(e.fieldsV1 ?? {}).length > 0);
}

function makePki(dir: string): { ca: string; caKey: string; cert: string; key: string; clientCert: string; clientKey: string } {
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  sh('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=tsk-test-ca']);
  writeFileSync(p('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  sh('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=kube-apiserver']);
  sh('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('san.ext')]);
  sh('openssl', ['req', ...ec, '-keyout', p('client.key'), '-out', p('client.csr'), '-subj', '/O=testers/CN=cert-user']);
  sh('openssl', ['x509', '-req', '-in', p('client.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('client.crt'), '-days', '2']);
  return { ca: p('ca.crt'), caKey: p('ca.key'), cert: p('server.crt'), key: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key') };
}

function cleanupNetns(id: number): void {
  const list = execFileSync('ip', ['netns', 'list']).toString();
  for (const line of list.split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    if (!ns.startsWith(`tsk-${id}-`)) continue;
    for (const pid of execFileSync('ip', ['netns', 'pids', ns]).toString().split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      // raced
    }
  }
  const links = execFileSync('ip', ['-o', 'link', 'show']).toString();
  for (const m of links.matchAll(new RegExp(`\\d+: (tsk${id}x\\d+h)[@:]`, 'g'))) {
    try {
      sh('ip', ['link', 'del', m[1] as string]);
    } catch {
      // raced
    }
  }
  for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) {
    if (d.startsWith(`tsk-${id}-`)) rmSync(`/etc/netns/${d}`, { recursive: true, force: true });
  }
}

function makeNodes(id: number, n: number): FakeNode[] {
  const nodes: FakeNode[] = [];
  for (let i = 0; i < n; i++) {
    const ns = `tsk-${id}-${i}`;
    const subnet = `10.205.${id * 16 + i}`;
    const h = `tsk${id}x${i}h`;
    const c = `tsk${id}x${i}n`;
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', h, 'type', 'veth', 'peer', 'name', c]);
    sh('ip', ['link', 'set', c, 'netns', ns]);
    sh('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', h]);
    sh('ip', ['link', 'set', h, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${subnet}.2/24`, 'dev', c]);
    sh('ip', ['-n', ns, 'link', 'set', c, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const name = `tsk-node-${i}`;
    // why: bind-mounted over /etc by `ip netns exec`, so lookups inside the node answer at once.
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/hosts`, `127.0.0.1 localhost\n${subnet}.2 ${name}\n`);
    writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    nodes.push({ name, ns, ip: `${subnet}.2`, dev: c, ...(i === 0 ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } : {}) });
  }
  return nodes;
}

function tolerates(tolerations: Obj[] | undefined, taints: Obj[] | undefined): boolean {
  return (taints ?? []).every((t) => (tolerations ?? []).some((tol) =>
    (tol.operator === 'Exists' && !tol.key) || (tol.key === t.key && (tol.operator === 'Exists' || tol.value === t.value) && (!tol.effect || tol.effect === t.effect))));
}

function affinityAllows(spec: Obj, node: FakeNode): boolean {
  for (const [k, v] of Object.entries(spec.nodeSelector ?? {})) {
    if (k === 'kubernetes.io/hostname' && v !== node.name) return false;
  }
  const terms: Obj[] | undefined = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (!terms) return true;
  return terms.some((term) => {
    const exprs = [...(term.matchFields ?? []).map((e: Obj) => ({ ...e, value: e.key === 'metadata.name' ? node.name : undefined })),
      ...(term.matchExpressions ?? []).map((e: Obj) => ({ ...e, value: e.key === 'kubernetes.io/hostname' ? node.name : undefined }))];
    return exprs.every((e: Obj) => (e.operator === 'In' ? (e.values ?? []).includes(e.value) : e.operator === 'NotIn' ? !(e.values ?? []).includes(e.value) : false));
  });
}

export async function startK8sApi(opts: K8sApiOptions): Promise<K8sApi> {
  cleanupNetns(opts.id);
  const dir = mkdtempSync('/tmp/tsk-api-');
  const pki = makePki(dir);
  const nodes = makeNodes(opts.id, opts.nodes);
  let psaDefault = opts.psaDefault ?? 'privileged';
  const tokens = new Map<string, string>(Object.entries(opts.tokens ?? { 'tsk-admin-token': 'admin' }));
  const issuedFile = join(dir, 'issued-tokens');
  writeFileSync(issuedFile, '');
  const execPlugin = join(dir, 'tsk-exec-plugin');
  writeFileSync(execPlugin, [
    '#!/bin/sh',
    '# Exec credential plugin: issues a fresh token and registers it with the test API server.',
    't="tsk-exec-$(od -An -N8 -tx1 /dev/urandom | tr -d " \\n")"',
    `echo "$t" >> ${issuedFile}`,
    'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\\n\' "$t"',
    '',
  ].join('\n'), { mode: 0o755 });

  let rv = 1;
  const store = new Map<string, Map<string, Obj>>();
  for (const k of Object.keys(GROUPS)) store.set(k, new Map());
  type Watcher = { kind: string; ns: string | null; label: string | null; field: string | null; send: (type: string, o: Obj) => void };
  const watchers = new Set<Watcher>();
  const log: Array<{ rv: number; kind: string; type: string; obj: Obj }> = [];
  const execs = new Map<string, Set<ChildProcess | pty.IPty>>();
  /** node name -> open exec WebSockets and the refusal status, for the test hooks */
  const execSockets = new Map<string, Set<WebSocket>>();
  const execRefusals = new Map<string, number>();
  let watchDelayMs = 0;
  /** node -> the scheduling of pods it refused, tried again when the node has room */
  const retries = new Map<string, Array<() => void>>();
  let hold: ((method: string, path: string) => Promise<void> | void) | null = null;
  const requests: string[] = [];
  const rejected: K8sApi['rejected'] = [];
  const deny: RbacRule[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const key = (ns: string | null, name: string) => (ns ? `${ns}/${name}` : name);
  const podTmp = (pod: Obj) => join(dir, 'pods', String(pod.metadata.uid));
  /** the server's clock: this machine's, or skewed by a test (skewClock) */
  let clockOffsetMs = 0;
  const serverDate = () => new Date(Date.now() + clockOffsetMs);
  const now = () => serverDate().toISOString().replace(/\.\d+Z$/, 'Z');
  function emit(kind: string, type: string, obj: Obj): void {
    log.push({ rv: Number(obj.metadata.resourceVersion), kind, type, obj: structuredClone(obj) });
    if (log.length > 5000) log.shift();
    for (const w of watchers) {
      if (w.kind !== kind) continue;
      if (w.ns && obj.metadata.namespace !== w.ns) continue;
      if (!matchLabels(w.label, obj.metadata.labels) || !matchFields(w.field, obj)) continue;
      w.send(type, obj);
    }
  }
  function put(kind: string, obj: Obj): Obj {
    const m = store.get(kind) as Map<string, Obj>;
    const k = key(obj.metadata.namespace ?? null, obj.metadata.name);
    const existed = m.has(k);
    obj.metadata.resourceVersion = String(++rv);
    obj.metadata.uid ??= randomUUID();
    obj.metadata.creationTimestamp ??= now();
    const g = GROUPS[kind] as (typeof GROUPS)[string];
    obj.apiVersion = g.version;
    obj.kind = g.kind;
    m.set(k, obj);
    emit(kind, existed ? 'MODIFIED' : 'ADDED', obj);
    return obj;
  }
  function del(kind: string, ns: string | null, name: string): Obj | null {
    const m = store.get(kind) as Map<string, Obj>;
    const o = m.get(key(ns, name));
    if (!o) return null;
    m.delete(key(ns, name));
    o.metadata.resourceVersion = String(++rv);
    emit(kind, 'DELETED', o);
    if (kind === 'pods') {
      for (const p of execs.get(key(ns, name)) ?? []) killExec(p);
      execs.delete(key(ns, name));
      // why: a deleted container takes its filesystem with it; here its /tmp is a per-pod host dir.
      rmSync(podTmp(o), { recursive: true, force: true });
      // Like the DaemonSet controller: a pod of a DaemonSet that still exists is replaced.
      const owner = o.metadata.ownerReferences?.find((r: Obj) => r.kind === 'DaemonSet');
      if (owner) {
        later(30, () => {
          const ds = store.get('daemonsets')?.get(key(ns, owner.name));
          if (ds && ds.metadata.uid === owner.uid) reconcile(ds);
        });
      }
    }
    if (kind === 'daemonsets') {
      for (const p of [...(store.get('pods') as Map<string, Obj>).values()]) {
        if (p.metadata.namespace === ns && p.metadata.ownerReferences?.some((r: Obj) => r.uid === o.metadata.uid)) del('pods', ns, p.metadata.name);
      }
    }
    if (kind === 'namespaces') {
      for (const k of ['daemonsets', 'pods', 'serviceaccounts', 'services', 'events']) {
        for (const x of [...(store.get(k) as Map<string, Obj>).values()]) if (x.metadata.namespace === name) del(k, name, x.metadata.name);
      }
    }
    return o;
  }
  function killExec(p: ChildProcess | pty.IPty): void {
    try {
      if ('write' in p && 'resize' in p) process.kill(-p.pid, 'SIGKILL');
      else if ((p as ChildProcess).pid) process.kill(-((p as ChildProcess).pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  };

  const KUBELET_READY: ReadyCondition = { status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' };
  for (const n of nodes) {
    put('nodes', {
      metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/arch': 'amd64', 'kubernetes.io/os': 'linux' } },
      spec: n.taints ? { taints: n.taints } : {},
      status: {
        conditions: [readyCondition(KUBELET_READY)],
        addresses: [{ type: 'InternalIP', address: n.ip }, { type: 'Hostname', address: n.name }],
        // why: a non-default kubelet port, so tests see that it is read from the node and not assumed
        daemonEndpoints: { kubeletEndpoint: { Port: KUBELET_PORT } },
        nodeInfo: {
          architecture: 'amd64', kernelVersion: execFileSync('uname', ['-r']).toString().trim(), operatingSystem: 'linux', osImage: 'Debian GNU/Linux 12 (bookworm)',
          containerRuntimeVersion: 'containerd://1.7.0', kubeletVersion: 'v1.31.0', kubeProxyVersion: 'v1.31.0', machineID: n.name, systemUUID: n.name, bootID: n.name,
        },
      },
    });
  }
  for (const ns of ['default', 'kube-system']) put('namespaces', { metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });

  function readyCondition(c: ReadyCondition): Obj {
    return { type: 'Ready', status: c.status, reason: c.reason, message: c.message, lastHeartbeatTime: now(), lastTransitionTime: now() };
  }

  function nodeObj(name: string): Obj {
    return store.get('nodes')?.get(name) as Obj;
  }

  /**
   * Whether the node's kubelet starts `pod` now: it is not stalled, and the node reports Ready or, for a host-network pod,
   * is NotReady only because the pod network is (kubelet syncPod: "if the network plugin is not ready, only start the
   * pod if it uses the host network").
   */
  function kubeletUp(n: FakeNode, pod: Obj): boolean {
    const ready = nodeObj(n.name)?.status?.conditions?.find((c: Obj) => c.type === 'Ready');
    const networkOnly = ready?.status === 'False' && /NetworkReady=false/.test(ready.message ?? '');
    return !n.stalled && (ready?.status === 'True' || (networkOnly && pod.spec.hostNetwork === true));
  }

  function nsLevel(ns: string): string {
    const o = store.get('namespaces')?.get(ns);
    return o?.metadata.labels?.['pod-security.kubernetes.io/enforce'] ?? psaDefault;
  }

  function event(ns: string, involved: Obj, reason: string, message: string, type = 'Normal'): void {
    put('events', {
      metadata: { name: `${involved.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: ns },
      involvedObject: { kind: involved.kind, name: involved.metadata.name, namespace: ns, uid: involved.metadata.uid, apiVersion: involved.apiVersion },
      reason, message, type, count: 1, firstTimestamp: now(), lastTimestamp: now(), source: { component: /Schedul/.test(reason) ? 'default-scheduler' : reason.startsWith('Failed') || reason === 'SuccessfulCreate' ? 'daemonset-controller' : 'kubelet' },
    });
  }

  /** The DaemonSet controller plus a kubelet per node: pods go Pending → ContainerCreating → Running. */
  function reconcile(ds: Obj): void {
    // (a DaemonSet being deleted gets no new pod)
    if (ds.metadata.deletionTimestamp) return;
    const ns = ds.metadata.namespace;
    const tmpl = ds.spec.template;
    let desired = 0;
    const pods = [...(store.get('pods') as Map<string, Obj>).values()];
    for (const n of nodes) {
      if (!affinityAllows(tmpl.spec, n) || !tolerates(tmpl.spec.tolerations, n.taints)) continue;
      desired++;
      if (pods.some((p) => p.spec.nodeName === n.name && p.metadata.ownerReferences?.some((r: Obj) => r.uid === ds.metadata.uid))) continue;
      const podName = `${ds.metadata.name}-${randomBytes(3).toString('hex').slice(0, 5)}`;
      const violations = podSecurityViolations(nsLevel(ns), tmpl.spec);
      if (violations.length) {
        event(ns, ds, 'FailedCreate', `Error creating: pods "${podName}" is forbidden: violates PodSecurity "${nsLevel(ns)}:latest": ${violations.join(', ')}`, 'Warning');
        continue;
      }
      // why: as the real controller, the pod is made for its node by an affinity term of its own and bound by the scheduler
      const spec = structuredClone(tmpl.spec);
      spec.affinity = { ...spec.affinity, nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [n.name] }] }] } } };
      const pod = put('pods', {
        metadata: {
          name: podName, namespace: ns, labels: { ...(tmpl.metadata?.labels ?? {}) },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: ds.metadata.name, uid: ds.metadata.uid, controller: true, blockOwnerDeletion: true }],
        },
        spec,
        status: { phase: 'Pending' },
      });
      event(ns, ds, 'SuccessfulCreate', `Created pod: ${podName}`);
      const cname = tmpl.spec.containers[0].name;
      later(5, function schedule() {
        const p = store.get('pods')?.get(key(ns, podName));
        if (!p) return;
        if (n.full) {
          p.status = { ...p.status, conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: n.full, lastProbeTime: null, lastTransitionTime: now() }] };
          put('pods', p);
          event(ns, pod, 'FailedScheduling', n.full, 'Warning');
          // (the scheduler tries an unschedulable pod again when the cluster changes: here, when the node has room)
          (retries.get(n.name) ?? retries.set(n.name, []).get(n.name)!).push(schedule);
          return;
        }
        p.spec.nodeName = n.name;
        p.status = { ...p.status, conditions: [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: now() }] };
        put('pods', p);
        event(ns, pod, 'Scheduled', `Successfully assigned ${ns}/${podName} to ${n.name}`);
        takeUp();
      });
      // The kubelet: it takes the bound pod up, one step after the other, once it may (the node back, the kubelet
      // unstalled), as long as the pod exists.
      const kubelet = (ms: number, step: (p: Obj) => void) => later(ms, function tryStep() {
        const p = store.get('pods')?.get(key(ns, podName));
        if (!p?.spec.nodeName) return;
        if (!kubeletUp(n, p)) return later(100, tryStep);
        step(p);
      });
      const running = (p: Obj) => {
        p.status = {
          phase: 'Running', hostIP: n.ip, podIP: n.ip, podIPs: [{ ip: n.ip }], startTime: now(),
          conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True' }],
          containerStatuses: [{ name: cname, ready: true, started: true, restartCount: 0, image: tmpl.spec.containers[0].image, imageID: 'sha256:0', state: { running: { startedAt: now() } } }],
        };
        put('pods', p);
      };
      // (once the pod is bound to the node)
      const takeUp = () => kubelet(20, (p) => {
        p.status = { ...p.status, hostIP: n.ip, containerStatuses: [{ name: cname, ready: false, restartCount: 0, image: tmpl.spec.containers[0].image, imageID: '', state: { waiting: { reason: 'ContainerCreating' } } }] };
        put('pods', p);
        event(ns, pod, 'Pulling', `Pulling image "${tmpl.spec.containers[0].image}"`);
        kubelet(40, running);
      });
    }
    ds.status = { currentNumberScheduled: 0, desiredNumberScheduled: desired, numberMisscheduled: 0, numberReady: 0, observedGeneration: 1 };
    put('daemonsets', ds);
  }

  /** RBAC: returns the Status message when denied. */
  function forbidden(user: string, verb: string, resource: string, group: string, sub: string | null, ns: string | null, name: string | null): string | null {
    const full = `${resource}${sub ? `/${sub}` : ''}${group ? `.${group}` : ''}`;
    const hit = deny.find((r) => (r.user === '*' || r.user === user) && (r.verb === '*' || r.verb === verb) && r.resource === full && (!r.namespace || r.namespace === ns));
    if (!hit) return null;
    const what = `${resource}${sub ? `/${sub}` : ''}${group ? `.${group}` : ''}`;
    const scope = ns ? `in the namespace "${ns}"` : 'at the cluster scope';
    return `${what}${name ? ` "${name}"` : ''} is forbidden: User "${user}" cannot ${verb} resource "${resource}${sub ? `/${sub}` : ''}" in API group "${group}" ${scope}`;
  }

  function authenticate(req: IncomingMessage): string | null {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) {
      const t = auth.slice(7).trim();
      if (tokens.has(t)) return tokens.get(t) as string;
      if (readFileSync(issuedFile, 'utf8').split('\n').includes(t)) return 'exec-user';
      return null;
    }
    const sock = req.socket as TLSSocket;
    if (sock.authorized) {
      const cert = sock.getPeerCertificate();
      const cn = cert?.subject?.CN;
      if (cn) return Array.isArray(cn) ? (cn[0] as string) : cn;
    }
    return null;
  }

  function send(res: ServerResponse, code: number, body: Obj, headers: Record<string, string> = {}): void {
    res.writeHead(code, { 'Content-Type': 'application/json', Date: serverDate().toUTCString(), ...headers });
    res.end(JSON.stringify(body));
  }

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text) return undefined;
    return JSON.parse(text);
  }

  interface Route { group: string; resource: string; ns: string | null; name: string | null; sub: string | null }
  function route(path: string): Route | null {
    const m = /^\/(?:api\/v1|apis\/(apps|authorization\.k8s\.io)\/v1)\/(.*)$/.exec(path);
    if (!m) return null;
    const group = m[1] ?? '';
    const parts = (m[2] as string).split('/').filter(Boolean);
    if (parts[0] === 'namespaces' && parts.length >= 3) {
      return { group, ns: parts[1] as string, resource: parts[2] as string, name: parts[3] ?? null, sub: parts[4] ?? null };
    }
    return { group, ns: null, resource: parts[0] as string, name: parts[1] ?? null, sub: parts[2] ?? null };
  }

  function invalid(res: ServerResponse, path: string, kind: string, name: string, causes: Array<{ reason: string; message: string; field: string }>): void {
    const fmt = (f: string) => f.replace(/\.(\d+)(?=\.|$)/g, '[$1]');
    const unknown = causes.filter((c) => c.message.startsWith('unknown field'));
    const message = unknown.length
      ? `${kind} in version "v1" cannot be handled as a ${kind}: strict decoding error: ${unknown.map((c) => `unknown field "${fmt(c.field)}"`).join(', ')}`
      : `${kind} "${name}" is invalid: ${causes.map((c) => `${fmt(c.field)}: ${c.message}`).join(', ')}`;
    rejected.push({ path, message });
    const code = unknown.length ? 400 : 422;
    send(res, code, status(code, unknown.length ? 'BadRequest' : 'Invalid', message, { name, kind: kind.toLowerCase(), causes: causes.map((c) => ({ ...c, field: fmt(c.field) })) }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    await hold?.(req.method ?? 'GET', url.pathname);
    const user = authenticate(req);
    if (!user) return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const q = url.searchParams;
    // (as the API server names the manager of a change: fieldManager, else the user agent's first part)
    const manager = q.get('fieldManager') ?? String(req.headers['user-agent'] ?? 'unknown').split('/')[0]!;
    if (manager.length > 128) return send(res, 422, status(422, 'Invalid', `fieldManager: Invalid value: "${manager}": must be no more than 128 characters`));
    if (url.pathname === '/version') return send(res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.0-tsk', platform: 'linux/amd64' });
    if (url.pathname === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.headers.host ?? '' }] });
    if (url.pathname === '/apis') {
      const g = (name: string) => ({ name, versions: [{ groupVersion: `${name}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' } });
      return send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [g('apps'), g('authorization.k8s.io')] });
    }
    const r = route(url.pathname);
    if (!r) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const method = req.method ?? 'GET';
    if (r.group === 'authorization.k8s.io' && r.resource === 'selfsubjectaccessreviews' && method === 'POST') {
      const body = (await readBody(req)) as Obj;
      const bad = validateBody('SelfSubjectAccessReview', body);
      if (bad) return invalid(res, url.pathname, 'SelfSubjectAccessReview', '', bad.causes);
      const a = body.spec.resourceAttributes ?? {};
      const denied = forbidden(user, a.verb, a.resource, a.group ?? '', a.subresource || null, a.namespace || null, a.name || null);
      return send(res, 201, { ...body, status: { allowed: !denied, ...(denied ? { reason: denied } : {}) } });
    }
    const g = GROUPS[r.resource];
    if (!g || g.group !== r.group || (r.ns && !g.namespaced)) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const watch = q.get('watch') === 'true' || q.get('watch') === '1';
    const verb = method === 'GET' ? (r.name ? 'get' : watch ? 'watch' : 'list') : method === 'POST' ? 'create' : method === 'DELETE' ? (r.name ? 'delete' : 'deletecollection') : method === 'PUT' ? 'update' : 'patch';
    const denied = forbidden(user, verb, r.resource, r.group, r.sub, r.ns, r.name);
    if (denied) return send(res, 403, status(403, 'Forbidden', denied, { ...(r.name ? { name: r.name } : {}), group: r.group, kind: r.resource }));
    if (r.ns && r.resource !== 'events' && method === 'POST' && !store.get('namespaces')?.has(r.ns)) {
      return send(res, 404, status(404, 'NotFound', `namespaces "${r.ns}" not found`, { name: r.ns, kind: 'namespaces' }));
    }
    // (as the NamespaceLifecycle admission plugin: a namespace being deleted takes no new objects, dry runs too)
    if (r.ns && r.resource !== 'events' && method === 'POST' && store.get('namespaces')?.get(r.ns)?.metadata.deletionTimestamp) {
      return send(res, 403, status(403, 'Forbidden', `${r.resource} is forbidden: unable to create new content in namespace ${r.ns} because it is being terminated`,
        { kind: r.resource, causes: [{ reason: 'NamespaceTerminating', message: `namespace ${r.ns} is being terminated`, field: 'metadata.namespace' }] }));
    }
    const m = store.get(r.resource) as Map<string, Obj>;
    if (method === 'GET' && r.name) {
      const o = m.get(key(r.ns, r.name));
      if (!o) return send(res, 404, status(404, 'NotFound', `${r.resource}${r.group ? `.${r.group}` : ''} "${r.name}" not found`, { name: r.name, group: r.group, kind: r.resource }));
      return send(res, 200, o);
    }
    if (method === 'GET') {
      const label = q.get('labelSelector');
      const field = q.get('fieldSelector');
      const sel = (o: Obj) => (!r.ns || o.metadata.namespace === r.ns) && matchLabels(label, o.metadata.labels) && matchFields(field, o);
      if (watch) {
        if (watchDelayMs) await new Promise((r) => setTimeout(r, watchDelayMs));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', Date: serverDate().toUTCString() });
        res.flushHeaders();
        const w: Watcher = { kind: r.resource, ns: r.ns, label, field, send: (type, o) => res.write(JSON.stringify({ type, object: o }) + '\n') };
        const from = Number(q.get('resourceVersion') ?? '0');
        if (from > 0) for (const e of log) if (e.kind === r.resource && e.rv > from && sel(e.obj)) w.send(e.type, e.obj);
        if (!from) for (const o of m.values()) if (sel(o)) w.send('ADDED', o);
        watchers.add(w);
        const t = Number(q.get('timeoutSeconds') ?? '0');
        const timer = t > 0 ? setTimeout(() => res.end(), t * 1000) : null;
        res.on('close', () => {
          watchers.delete(w);
          if (timer) clearTimeout(timer);
        });
        return;
      }
      return send(res, 200, { kind: g.listKind, apiVersion: g.version, metadata: { resourceVersion: String(rv) }, items: [...m.values()].filter(sel) });
    }
    if (method === 'PATCH' && r.name) {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
      if (type !== 'application/json-patch+json') {
        const known = ['application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'].includes(type ?? '');
        return known
          ? send(res, 405, status(405, 'MethodNotAllowed', `${type} patches are not supported by the test server (application/json-patch+json is)`))
          : send(res, 415, status(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json'));
      }
      const o = m.get(key(r.ns, r.name));
      if (!o) return send(res, 404, status(404, 'NotFound', `${r.resource}${r.group ? `.${r.group}` : ''} "${r.name}" not found`, { name: r.name, group: r.group, kind: r.resource }));
      const ops = await readBody(req);
      if (!Array.isArray(ops) || ops.some((op) => !op || typeof op !== 'object' || typeof op.path !== 'string' || !['add', 'remove', 'replace', 'test'].includes(op.op))) {
        rejected.push({ path: url.pathname, message: `not a JSON Patch of add, remove, replace and test operations: ${JSON.stringify(ops)}` });
        return send(res, 400, status(400, 'BadRequest', `json: cannot unmarshal ${JSON.stringify(ops)} into Go value of type jsonpatch.Patch`));
      }
      let patched: Obj;
      try {
        patched = applyJsonPatch(o, ops);
      } catch (e) {
        rejected.push({ path: url.pathname, message: (e as Error).message });
        return send(res, 422, status(422, 'Invalid', (e as Error).message));
      }
      const changed = changedFields(o, patched);
      if (changed.some((f) => f !== 'metadata.labels' && f !== 'metadata.annotations')) {
        return send(res, 405, status(405, 'MethodNotAllowed', `the test server patches metadata.labels and metadata.annotations only, not ${changed.join(', ')}`));
      }
      const bad = validateBody(g.kind, patched);
      if (bad) return invalid(res, url.pathname, g.kind, r.name, bad.causes);
      if (q.get('dryRun') === 'All') return send(res, 200, patched);
      patched.metadata.managedFields = managed(o, patched, manager, g.version, now());
      return send(res, 200, put(r.resource, patched));
    }
    if (method === 'DELETE') {
      const body = await readBody(req);
      if (body !== undefined) {
        const bad = validateBody('DeleteOptions', body);
        if (bad) return invalid(res, url.pathname, 'DeleteOptions', r.name ?? '', bad.causes);
      }
      if (!r.name) return send(res, 405, status(405, 'MethodNotAllowed', 'deletecollection is not supported by the test server'));
      const pre = (body as Obj | undefined)?.preconditions as { resourceVersion?: string; uid?: string } | undefined;
      const current = m.get(key(r.ns, r.name));
      if (current && pre) {
        const what = pre.uid !== undefined && pre.uid !== current.metadata.uid ? ['UID', pre.uid, current.metadata.uid]
          : pre.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion ? ['ResourceVersion', pre.resourceVersion, current.metadata.resourceVersion] : null;
        if (what) {
          return send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${r.resource}${r.group ? `.${r.group}` : ''} "${r.name}": Precondition failed: ${what[0]} in precondition: ${what[1]}, ${what[0]} in object meta: ${what[2]}`,
            { name: r.name, group: r.group, kind: r.resource }));
        }
      }
      // (an object with finalizers is only marked for deletion; it goes when a test removes it, as a finalizer's controller would)
      const held = m.get(key(r.ns, r.name));
      if (held?.metadata.finalizers?.length) {
        held.metadata.deletionTimestamp ??= now();
        return send(res, 200, put(r.resource, held));
      }
      const o = del(r.resource, r.ns, r.name);
      if (!o) return send(res, 404, status(404, 'NotFound', `${r.resource}${r.group ? `.${r.group}` : ''} "${r.name}" not found`, { name: r.name, group: r.group, kind: r.resource }));
      return send(res, 200, r.resource === 'namespaces' ? { ...o, status: { phase: 'Terminating' } } : { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: r.name, group: r.group, kind: r.resource, uid: o.metadata.uid } });
    }
    if (method === 'POST' && !r.name) {
      const body = (await readBody(req)) as Obj;
      const bad = validateBody(g.kind, body);
      const name = body?.metadata?.name ?? (body?.metadata?.generateName ? `${body.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}` : '');
      if (bad) return invalid(res, url.pathname, g.kind, name, bad.causes);
      if ((body.apiVersion && body.apiVersion !== g.version) || (body.kind && body.kind !== g.kind)) {
        return send(res, 400, status(400, 'BadRequest', `the API version in the data (${body.apiVersion}) does not match the expected API version (${g.version})`));
      }
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name.length > 253) {
        return invalid(res, url.pathname, g.kind, name, [{ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'` }]);
      }
      if (body.metadata.namespace && body.metadata.namespace !== r.ns) {
        return send(res, 400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'));
      }
      if (m.has(key(r.ns, name))) {
        return send(res, 409, status(409, 'AlreadyExists', `${r.resource}${r.group ? `.${r.group}` : ''} "${name}" already exists`, { name, group: r.group, kind: r.resource }));
      }
      const obj = structuredClone(body);
      obj.metadata = { ...obj.metadata, name, ...(r.ns ? { namespace: r.ns } : {}) };
      if (r.resource === 'pods') {
        const level = nsLevel(r.ns as string);
        const v = podSecurityViolations(level, obj.spec);
        if (v.length) return send(res, 403, status(403, 'Forbidden', `pods "${name}" is forbidden: violates PodSecurity "${level}:latest": ${v.join(', ')}`, { name, kind: 'pods' }));
        if (q.get('dryRun') !== 'All') return send(res, 403, status(403, 'Forbidden', 'the test API server only creates pods through controllers (use dryRun=All)'));
        return send(res, 201, { ...obj, apiVersion: 'v1', kind: 'Pod', status: { phase: 'Pending' } });
      }
      if (q.get('dryRun') === 'All') return send(res, 201, obj);
      let warning: Record<string, string> = {};
      if (r.resource === 'namespaces') obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': name };
      if (r.resource === 'namespaces') obj.status = { phase: 'Active' };
      if (r.resource === 'daemonsets') {
        const level = nsLevel(r.ns as string);
        const v = podSecurityViolations(level, obj.spec.template.spec);
        if (v.length) warning = { Warning: `299 - "would violate PodSecurity \\"${level}:latest\\": ${v.join(', ').replace(/"/g, '\\"')}"` };
        obj.metadata.generation = 1;
      }
      obj.metadata.managedFields = managed(null, obj, manager, g.version, now());
      const saved = put(r.resource, obj);
      if (r.resource === 'daemonsets') later(5, () => reconcile(saved));
      return send(res, 201, saved, warning);
    }
    return send(res, 405, status(405, 'MethodNotAllowed', `${method} is not supported by the test server`));
  }

  const server = createServer({ key: readFileSync(pki.key), cert: readFileSync(pki.cert), ca: readFileSync(pki.ca), requestCert: true, rejectUnauthorized: false }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, status(500, 'InternalError', String(e)));
      else res.end();
    });
  });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : protocols.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false),
  });

  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'https://x');
    requests.push(`UPGRADE ${url.pathname}${url.search}`);
    const reject = (code: number, st: Obj) => {
      socket.end(`HTTP/1.1 ${code} ${code === 401 ? 'Unauthorized' : code === 403 ? 'Forbidden' : code === 404 ? 'Not Found' : code >= 500 ? 'Internal Server Error' : 'Bad Request'}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(st)}`);
    };
    const user = authenticate(req);
    if (!user) return reject(401, status(401, 'Unauthorized', 'Unauthorized'));
    const r = route(url.pathname);
    if (!r || r.resource !== 'pods' || r.sub !== 'exec' || !r.ns || !r.name) return reject(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const denied = forbidden(user, 'create', 'pods', '', 'exec', r.ns, r.name);
    if (denied) return reject(403, status(403, 'Forbidden', denied));
    const pod = store.get('pods')?.get(key(r.ns, r.name));
    if (!pod) return reject(404, status(404, 'NotFound', `pods "${r.name}" not found`));
    if (pod.status?.phase !== 'Running') return reject(400, status(400, 'BadRequest', `pod ${r.name} does not have a host assigned or is not running`));
    const node = nodes.find((n) => n.name === pod.spec.nodeName) as FakeNode;
    const refusal = execRefusals.get(node.name);
    if (refusal) return reject(refusal, status(refusal, 'InternalError', `error dialing backend: kubelet on ${node.name} refused (test hook)`));
    const command = url.searchParams.getAll('command');
    const tty = url.searchParams.get('tty') === 'true';
    const tmp = podTmp(pod);
    mkdirSync(tmp, { recursive: true });
    wss.handleUpgrade(req, socket, head, (ws) => runExec(ws, node, key(r.ns, r.name as string), command, tty, tmp));
  });

  /** Runs an exec in the node's network namespace; TMPDIR stands in for the container's own /tmp. */
  function runExec(ws: WebSocket, node: FakeNode, podKey: string, command: string[], tty: boolean, tmp: string): void {
    const env = { ...process.env, TMPDIR: tmp } as Record<string, string>;
    const v5 = ws.protocol === 'v5.channel.k8s.io';
    const set = execs.get(podKey) ?? new Set();
    execs.set(podKey, set);
    const sockets = execSockets.get(node.name) ?? new Set();
    execSockets.set(node.name, sockets);
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    let pending = 0;
    const out = (ch: number, d: Buffer | string, onPaused?: (p: boolean) => void) => {
      if (ws.readyState !== ws.OPEN) return;
      pending++;
      ws.send(Buffer.concat([Buffer.from([ch]), Buffer.isBuffer(d) ? d : Buffer.from(d)]), () => {
        pending--;
        if (pending < 16) onPaused?.(false);
      });
      if (pending > 64) onPaused?.(true);
    };
    const finish = (code: number | null) => {
      const st = code === 0
        ? { metadata: {}, status: 'Success' }
        : { metadata: {}, status: 'Failure', message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code ?? 137}`, reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(code ?? 137) }] } };
      if (ws.readyState === ws.OPEN) {
        ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(st))]), () => ws.close(1000));
      }
    };
    if (tty) {
      const p = pty.spawn('ip', ['netns', 'exec', node.ns, ...command], { name: 'xterm', cols: 80, rows: 24, env });
      set.add(p);
      p.onData((d) => out(1, d));
      p.onExit(({ exitCode }) => {
        set.delete(p);
        finish(exitCode);
      });
      ws.on('message', (data: Buffer) => {
        if (data[0] === 0) p.write(data.subarray(1).toString('utf8'));
        else if (data[0] === 4) {
          // why: the API server decodes this case-insensitively; client-node sends lower-case keys.
          const s = JSON.parse(data.subarray(1).toString('utf8')) as Record<string, number>;
          const w = s.Width ?? s.width;
          const h = s.Height ?? s.height;
          if (w && h) p.resize(w, h);
        }
      });
      ws.on('close', () => killExec(p));
      return;
    }
    const child = spawn('ip', ['netns', 'exec', node.ns, ...command], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
    set.add(child);
    child.stdin.on('error', () => undefined);
    const pause = (p: boolean) => (p ? child.stdout.pause() : child.stdout.resume());
    child.stdout.on('data', (d: Buffer) => out(1, d, pause));
    child.stderr.on('data', (d: Buffer) => out(2, d));
    child.on('error', (e) => out(2, String(e)));
    child.on('close', (code, signal) => {
      set.delete(child);
      finish(signal ? null : code);
    });
    ws.on('message', (data: Buffer) => {
      if (data[0] === 0) child.stdin.write(data.subarray(1));
      else if (data[0] === 255 && data[1] === 0 && v5) child.stdin.end();
    });
    ws.on('close', () => {
      // why: like a kubelet whose stream went away: stdin ends, output has nowhere to go.
      child.stdin.end();
      child.stdout.destroy();
      child.stderr.destroy();
    });
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const api: K8sApi = {
    url, podTmpRoot: join(dir, 'pods'), caFile: pki.ca, clientCert: { cert: pki.clientCert, key: pki.clientKey, user: 'cert-user' }, execPlugin, nodes, deny, requests, rejected,
    setPsaDefault(level) {
      psaDefault = level;
    },
    put(kind, obj) {
      return put(kind, structuredClone(obj));
    },
    remove(kind, ns, name) {
      del(kind, ns, name);
    },
    list(kind, ns) {
      return [...(store.get(kind)?.values() ?? [])].filter((o) => !ns || o.metadata.namespace === ns);
    },
    kubeconfig(d, user, extra = {}) {
      const ctx = extra.context ?? `tsk-${user}`;
      const u = user === 'token'
        ? `    token: ${extra.token ?? 'tsk-admin-token'}`
        : user === 'cert'
          ? `    client-certificate: ${pki.clientCert}\n    client-key: ${pki.clientKey}`
          : `    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ${execPlugin}\n      interactiveMode: Never`;
      const f = join(d, `kubeconfig-${ctx}`);
      writeFileSync(f, [
        'apiVersion: v1', 'kind: Config', `current-context: ${ctx}`,
        'clusters:', `- name: ${ctx}-cluster`, '  cluster:', `    server: ${url}`, `    certificate-authority: ${pki.ca}`,
        'users:', `- name: ${ctx}-user`, '  user:', u,
        'contexts:', `- name: ${ctx}`, '  context:', `    cluster: ${ctx}-cluster`, `    user: ${ctx}-user`, '',
      ].join('\n'));
      return f;
    },
    slowWatches(ms) {
      watchDelayMs = ms;
    },
    skewClock(ms) {
      clockOffsetMs = ms;
    },
    holdRequests(fn) {
      hold = fn;
    },
    dropExec(node) {
      const open = [...(execSockets.get(node) ?? [])];
      for (const ws of open) ws.terminate();
      return open.length;
    },
    refuseExec(node, code) {
      if (code === null) execRefusals.delete(node);
      else execRefusals.set(node, code);
    },
    setNodeReady(name, ready = KUBELET_READY) {
      const n = nodes.find((x) => x.name === name) as FakeNode;
      const o = nodeObj(name);
      // (the node controller's taint: not-ready for False, unreachable for Unknown)
      const taint = ready.status === 'True' ? null : { key: `node.kubernetes.io/${ready.status === 'False' ? 'not-ready' : 'unreachable'}`, effect: 'NoSchedule', timeAdded: now() };
      const others = (o.spec.taints ?? []).filter((t: Obj) => !/^node\.kubernetes\.io\/(not-ready|unreachable)$/.test(t.key));
      const taints = taint ? [...others, taint] : others;
      n.taints = taints.length ? taints : undefined;
      o.spec = { ...o.spec, ...(taints.length ? { taints } : {}) };
      if (!taints.length) delete o.spec.taints;
      o.status.conditions = [readyCondition(ready), ...o.status.conditions.filter((c: Obj) => c.type !== 'Ready')];
      put('nodes', o);
    },
    stallKubelet(name, stalled) {
      (nodes.find((x) => x.name === name) as FakeNode).stalled = stalled;
    },
    fillNode(name, full) {
      const n = nodes.find((x) => x.name === name) as FakeNode;
      const others = nodes.length - 1;
      n.full = typeof full === 'string' ? full : full
        ? `0/${nodes.length} nodes are available: 1 Insufficient memory${others ? `, ${others} node(s) didn't match Pod's node affinity/selector` : ''}. preemption: 0/${nodes.length} nodes are available: 1 No preemption victims found for incoming pod${others ? `, ${others} Preemption is not helpful for scheduling` : ''}.`
        : undefined;
      if (!full) for (const retry of retries.get(name)?.splice(0) ?? []) later(5, retry);
    },
    async restart(downMs) {
      const port = (server.address() as AddressInfo).port;
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise((r) => setTimeout(r, downMs));
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const set of execs.values()) for (const p of set) killExec(p);
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      cleanupNetns(opts.id);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return api;
}
