// The Kubernetes capture target: nodes of a kubeconfig context. A capture creates (in its own namespace,
// default `tapscope`) a ServiceAccount and a DaemonSet of idle host-network pods on the chosen nodes,
// delivers the helper into each pod through exec, runs it through exec and streams its stdout back;
// stop() removes every object it created and checks that nothing labelled with the session remains. While it runs,
// the session refreshes a heartbeat on its DaemonSet, so that `tapscope clean` (clean.ts) leaves it alone.
// Pod and Service IPs seen in the capture are resolved through a live pod index (handle.enrich).
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { PassThrough } from 'node:stream';
import {
  AppsV1Api, AuthorizationV1Api, CoreV1Api, type KubeConfig, type V1Namespace, type V1Node, type V1Pod,
} from '@kubernetes/client-node';
import { TapscopeError, isTapscopeError } from '../../errors.js';
import type { PodRef } from '../../model/flow.js';
import {
  CompleteBlocks, HelperSet, MKTEMP_SCRIPT, builtHelper, checkUploadDigest, durationElapsed, helperArgs, helperVersion, killScript, madeTempDir,
  onLines, remainingDuration, runArgv, STOP_GRACE_MS, stopOverrunNote, uploadScript, type HelperBinary,
} from '../deploy.js';
import { retryWithBackoff, type Backoff } from '../retry.js';
import {
  StartCancelled, abortedPromise,
  type CaptureHandle, type CaptureHandlers, type CaptureOptions, type CaptureTarget, type NodeInfo, type NodePhase, type PodChoice, type PreflightReport,
  type PromptFn, type ShellChannel,
} from '../target.js';
import { PSA_LABEL, describeForbidden, k8sError, psaAdvice } from './errors.js';
import { execCollect, execStream, type ExecStream } from './exec.js';
import { kubeConfigFor, kubeconfigFiles, mergeKubeconfigs } from './kubeconfig.js';
import {
  CONTAINER, CREATED_NS_LABEL, DEFAULT_IMAGE, HEARTBEAT_MANAGER, HEARTBEAT_MS, MANAGED_BY, MANAGED_BY_VALUE, MANAGED_SELECTOR, SESSION_LABEL, claimPatch,
  daemonSetManifest, dryRunPod, heartbeatPatch, namespaceManifest, serviceAccountManifest, type DaemonSetSpec,
} from './manifests.js';
import { MISSED_BEATS, claimOf } from './clean.js';
import { serverNow } from './server-time.js';
import { PodIndex } from './pod-index.js';
import { podAddresses, podScope, type PodScope } from './pod-scope.js';
import { kubeletGone, notReady, podNode, unschedulable, waitsForRoom } from './readiness.js';
import { keepWatching } from './watch.js';

export { PodIndex } from './pod-index.js';
export { cleanK8s, type CleanResult } from './clean.js';

export interface K8sTargetOptions {
  prompt?: PromptFn;
  /** A kubeconfig path, or several in KUBECONFIG syntax. */
  kubeconfig?: string;
  image?: string;
  namespace?: string;
  helperPath?: string;
  /** How long a node may take from DaemonSet creation to a running pod. Default 120 s. */
  readyTimeoutMs?: number;
  /** Resuming a node's lost exec stream: first delay, cap, and when to give up (ms). Defaults 500, 8000, 120000. */
  reconnect?: Backoff;
  /** How often a running session refreshes its DaemonSet's heartbeat (ms); `clean` leaves it alone for 3 of them. Default 20 s. */
  heartbeatMs?: number;
}

const DEFAULT_RECONNECT: Required<Backoff> = { first: 500, max: 8000, giveUpMs: 120_000 };

/** `k8s://CONTEXT[/NODE]`; an empty context means current-context. */
export function parseK8sUri(uri: string): { context: string | null; node: string | null } {
  const m = /^k8s:\/\/([^/]*)(?:\/([^/]+))?\/?$/.exec(uri);
  if (!m) throw new TapscopeError('E_TARGET_INVALID', `Not a Kubernetes target: "${uri}". Use k8s://CONTEXT or k8s://CONTEXT/NODE.`);
  return { context: m[1] ? decodeURIComponent(m[1]) : null, node: m[2] ? decodeURIComponent(m[2]) : null };
}

function archName(a: string | undefined): string | null {
  return a === 'amd64' ? 'x86_64' : a === 'arm64' ? 'aarch64' : a ?? null;
}

function nodeInfo(n: V1Node): NodeInfo {
  return {
    name: n.metadata?.name ?? '',
    ready: notReady(n) === null,
    kernel: n.status?.nodeInfo?.kernelVersion ?? null,
    arch: archName(n.status?.nodeInfo?.architecture),
    address: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? null,
  };
}

/** The kubelet API endpoints of a node (its addresses, the kubelet's port): the API server reaches the node's
 *  exec streams there, so the helper's own output crosses these connections. */
export function kubeletEndpoints(n: V1Node): string[] {
  const port = n.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 10250;
  const ips = (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => a.address);
  return [...new Set(ips)].map((ip) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** How long a session starting waits for a namespace being deleted to go, before it makes it again. */
const NAMESPACE_GONE_MS = 60_000;

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** user@host of this process, for the person who finds the session's DaemonSet (and for `clean`). */
function startedBy(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // (no passwd entry for this uid, as in a container run with a random one: $USER, if set, says who)
  }
  return `${user}@${hostname()}`;
}

/** Shared by capture and shell sessions: the objects of one session and how to remove them. */
class Deployment {
  readonly name: string;
  createdNs = false;
  private created: Array<'sa' | 'ds'> = [];
  /** The DaemonSet's resourceVersion at creation: the pod watch starts there, so it sees every pod change. */
  private createdAt: string | undefined;
  /** The next heartbeat, until remove(). */
  private beating: NodeJS.Timeout | null = null;
  private heartbeatRefused = false;
  /** Told once, with why, when the heartbeat may not be refreshed (RBAC): `clean` would then take the session for a leftover. */
  onHeartbeatRefused: ((why: string) => void) | null = null;
  /** Told, with why, when the namespace another session made may not be claimed (RBAC): see claim(). */
  onClaimRefused: ((why: string) => void) | null = null;

  constructor(
    readonly kc: KubeConfig,
    readonly ctx: { context: string; namespace: string; user: string | null },
    readonly session: string,
    private readonly heartbeatMs: number,
  ) {
    this.name = `tapscope-${session}`;
  }

  get core(): CoreV1Api {
    return this.kc.makeApiClient(CoreV1Api);
  }

  get apps(): AppsV1Api {
    return this.kc.makeApiClient(AppsV1Api);
  }

  private err(e: unknown, what: string): TapscopeError {
    return k8sError(e, what, this.ctx);
  }

  /** Why a call failed, in a few words: for a refusal, the permission it lacked ("cannot delete serviceaccounts in namespace x"). */
  private why(e: unknown, what: string): string {
    const te = this.err(e, what);
    return te.code === 'E_K8S_FORBIDDEN' ? describeForbidden(te.message) ?? te.message : te.message;
  }

  async create(spec: Omit<DaemonSetSpec, 'name' | 'namespace' | 'session' | 'serviceAccount' | 'heartbeat'>): Promise<void> {
    const ns = this.ctx.namespace;
    const full: DaemonSetSpec = {
      ...spec, name: this.name, namespace: ns, session: this.session, serviceAccount: this.name,
      heartbeat: { at: new Date(), intervalMs: this.heartbeatMs, startedBy: startedBy() },
    };
    try {
      // why: as kubectl apply, creating objects in a namespace needs no right to read the namespace itself. A user who
      // may not get namespaces at cluster scope (an admin-prepared namespace) goes on with the namespace's Pod Security
      // level unknown: the dry-run pod below meets admission anyway.
      let readForbidden = false;
      let existing = await this.core.readNamespace({ name: ns }).catch((e: unknown) => {
        const status = (e as { code?: number }).code;
        if (status === 404) return null;
        if (status === 403) {
          readForbidden = true;
          return null;
        }
        throw this.err(e, `read namespace ${ns}`);
      });
      if (existing) {
        const level = existing.metadata?.labels?.[PSA_LABEL];
        if (level && level !== 'privileged') {
          throw new TapscopeError('E_K8S_ADMISSION', `Namespace "${ns}" enforces Pod Security level "${level}", which refuses the capture pods. ${psaAdvice(ns)}`);
        }
        // (one another Tapscope made, which its maker or `clean` may be deleting: claimed first, see CLAIM_ANNOTATION)
        if (existing.metadata?.labels?.[CREATED_NS_LABEL] === 'true') existing = await this.claim(existing);
      }
      if (!existing) {
        // (409 AlreadyExists: it is there, created meanwhile or unreadable to us; 403 after a refused read: we may
        // neither read nor create it, so it may be there: the ServiceAccount's creation says)
        const made = await this.core.createNamespace({ body: namespaceManifest(ns, this.session) }).then(() => true, (e: unknown) => {
          const status = (e as { code?: number }).code;
          if (status === 409 || (status === 403 && readForbidden)) return false;
          throw this.err(e, `create namespaces (namespace ${ns})`);
        });
        this.createdNs = made;
      }
      await this.core.createNamespacedServiceAccount({ namespace: ns, body: serviceAccountManifest(this.name, ns, this.session) }).catch((e: unknown) => {
        if (readForbidden && (e as { code?: number }).code === 404) {
          throw new TapscopeError('E_K8S_FORBIDDEN',
            `Namespace "${ns}" does not exist, and this context may neither read nor create namespaces. Ask a cluster admin to create it (with the label ${PSA_LABEL}=privileged), or choose an existing namespace with --namespace.`);
        }
        throw this.err(e, `create serviceaccounts in namespace ${ns}`);
      });
      this.created.push('sa');
      // why: a dry-run pod goes through Pod Security admission now, so a refusal is an error with the
      // reason instead of a DaemonSet that silently never gets pods.
      await this.core.createNamespacedPod({ namespace: ns, body: dryRunPod(full), dryRun: 'All' }).catch((e: unknown) => {
        const te = this.err(e, `create pods in namespace ${ns}`);
        if (te.code === 'E_K8S_ADMISSION') throw te;
      });
      const ds = await this.apps.createNamespacedDaemonSet({ namespace: ns, body: daemonSetManifest(full) }).catch((e: unknown) => {
        throw this.err(e, `create daemonsets.apps in namespace ${ns}`);
      });
      this.created.push('ds');
      this.createdAt = ds.metadata?.resourceVersion;
      this.keepAlive();
    } catch (e) {
      await this.remove().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Claims namespace `ns`, which another session made, for this one (CLAIM_ANNOTATION); null when it is gone or going
   * (deleted by its maker or `clean` before the claim: waited for, to be made again). Without the right to patch it,
   * it is used unclaimed.
   */
  private async claim(ns: V1Namespace): Promise<V1Namespace | null> {
    const name = ns.metadata?.name ?? '';
    const claimed = ns.metadata?.deletionTimestamp ? ns : await this.core.patchNamespace({ name, body: claimPatch(ns, this.session) }).catch((e: unknown) => {
      const status = (e as { code?: number }).code;
      if (status === 404) return null;
      if (status === 403) {
        this.onClaimRefused?.(this.why(e, `patch namespaces (namespace ${name})`));
        return ns;
      }
      throw this.err(e, `patch namespaces (namespace ${name})`);
    });
    if (!claimed?.metadata?.deletionTimestamp) return claimed;
    for (const end = Date.now() + NAMESPACE_GONE_MS; Date.now() < end; await sleep(500)) {
      const gone = await this.core.readNamespace({ name }).then(() => false, (e: unknown) => {
        if ((e as { code?: number }).code === 404) return true;
        throw this.err(e, `read namespace ${name}`);
      });
      if (gone) return null;
    }
    throw new TapscopeError('E_TARGET_INVALID',
      `Namespace "${name}" is being deleted (\`tapscope clean\`, a session that made it ending, or kubectl), and was still there after ${NAMESPACE_GONE_MS / 1000} s. Try again once it is gone, or choose another namespace with --namespace.`);
  }

  /** Refreshes the DaemonSet's heartbeat every heartbeatMs until remove() (one at a time: a slow one delays the next). */
  private keepAlive(): void {
    this.beating = setTimeout(() => void this.beat().finally(() => this.beating && this.keepAlive()), this.heartbeatMs);
    this.beating.unref();
  }

  /**
   * Whether the DaemonSet is gone or going (deleted under the session: `tapscope clean --force`, kubectl delete; one with
   * a deletionTimestamp waits only for its pods or a finalizer, and gets no new pod); a check that fails otherwise says
   * no, and the caller goes on as before.
   */
  async isDeleted(): Promise<boolean> {
    return this.apps.readNamespacedDaemonSet({ name: this.name, namespace: this.ctx.namespace })
      .then((ds) => !!ds.metadata?.deletionTimestamp, (e: unknown) => (e as { code?: number }).code === 404);
  }

  private async beat(): Promise<void> {
    const ns = this.ctx.namespace;
    // (its own field manager: the server stamps the heartbeat's every change in that entry, which `clean` reads)
    await this.apps.patchNamespacedDaemonSet({ name: this.name, namespace: ns, body: heartbeatPatch(new Date()), fieldManager: HEARTBEAT_MANAGER }).catch((e: unknown) => {
      const code = (e as { code?: number }).code;
      // why: a deleted DaemonSet has nothing to keep alive; a heartbeat must not outlive its object
      if (code === 404 && this.beating) {
        clearTimeout(this.beating);
        this.beating = null;
      }
      // why: a refusal stays (RBAC) and is said once; anything else (an API server restart) the next beat retries
      if (code !== 403 || this.heartbeatRefused) return;
      this.heartbeatRefused = true;
      this.onHeartbeatRefused?.(this.why(e, `patch daemonsets.apps in namespace ${ns}`));
    });
  }

  /**
   * Deletes what this session created; returns what could not be confirmed gone, each with why when a delete or the
   * check was refused ("serviceaccount tapscope/x (not deleted: cannot delete serviceaccounts in namespace tapscope)").
   * Each delete is tried whatever the others did: a refused ServiceAccount delete still lets the namespace this
   * session created go, which takes the ServiceAccount with it.
   */
  async remove(): Promise<string[]> {
    const ns = this.ctx.namespace;
    if (this.beating) clearTimeout(this.beating);
    this.beating = null;
    /** object ("serviceaccount ns/name") -> why its delete failed */
    const failed = new Map<string, string>();
    const del = async (object: string, what: string, run: () => Promise<unknown>): Promise<boolean> => {
      try {
        await run();
        return true;
      } catch (e) {
        if ((e as { code?: number }).code === 404) return true;
        failed.set(object, this.why(e, what));
        return false;
      }
    };
    const created = this.created;
    this.created = [];
    if (created.includes('ds')) {
      await del(`daemonset ${ns}/${this.name}`, `delete daemonsets.apps in namespace ${ns}`,
        () => this.apps.deleteNamespacedDaemonSet({ name: this.name, namespace: ns, propagationPolicy: 'Background' }));
    }
    if (created.includes('sa')) {
      await del(`serviceaccount ${ns}/${this.name}`, `delete serviceaccounts in namespace ${ns}`,
        () => this.core.deleteNamespacedServiceAccount({ name: this.name, namespace: ns }));
    }
    let nsDeleted = false;
    if (this.createdNs) {
      try {
        nsDeleted = await this.removeNamespace(del);
      } catch (e) {
        failed.set(`namespace ${ns}`, `could not check whether other sessions use it: ${this.why(e, `read namespace ${ns} and list its sessions`)}`);
      }
    }
    const selector = `${SESSION_LABEL}=${this.session}`;
    const remaining: string[] = [];
    // (an object whose delete was refused stays, unless the namespace deletion takes it: not waited for)
    const stuck = (o: string) => failed.has(o) && !nsDeleted;
    for (let i = 0; i < 60; i++) {
      remaining.length = 0;
      let listed: [Array<{ metadata?: { name?: string } }>, Array<{ metadata?: { name?: string } }>, Array<{ metadata?: { name?: string } }>];
      try {
        listed = await Promise.all([
          this.apps.listNamespacedDaemonSet({ namespace: ns, labelSelector: selector }).then((l) => l.items),
          this.core.listNamespacedServiceAccount({ namespace: ns, labelSelector: selector }).then((l) => l.items),
          this.core.listNamespacedPod({ namespace: ns, labelSelector: selector }).then((l) => l.items),
        ]);
      } catch (e) {
        return [...failed].map(([o, w]) => `${o} (not deleted: ${w})`)
          .concat(`(could not check that the session's objects are gone: ${this.why(e, `list the session's objects in namespace ${ns}`)})`);
      }
      const [ds, sa, pods] = listed;
      for (const d of ds) remaining.push(`daemonset ${ns}/${d.metadata?.name}`);
      for (const x of sa) remaining.push(`serviceaccount ${ns}/${x.metadata?.name}`);
      for (const p of pods) remaining.push(`pod ${ns}/${p.metadata?.name}`);
      if (remaining.every(stuck)) break;
      await sleep(500);
    }
    // (the namespace is no session-labelled object the lists see; a refused delete of it is named too)
    for (const o of failed.keys()) if (o.startsWith('namespace ') && !remaining.includes(o)) remaining.push(o);
    return remaining.map((o) => (failed.has(o) ? `${o} (not deleted: ${failed.get(o)})` : o));
  }

  /**
   * Deletes the namespace this session made, unless another session uses it: one with a DaemonSet or ServiceAccount in
   * it, or one that claimed it within MISSED_BEATS heartbeats (starting, its objects not made yet). The delete's
   * precondition is the namespace as read, so a claim after the read keeps it too. Whether it was deleted.
   */
  private async removeNamespace(del: (object: string, what: string, run: () => Promise<unknown>) => Promise<boolean>): Promise<boolean> {
    const name = this.ctx.namespace;
    const read = await this.core.readNamespaceWithHttpInfo({ name }).catch((e: unknown) => {
      if ((e as { code?: number }).code === 404) return null;
      throw e;
    });
    if (!read) return true;
    const now = serverNow(read.headers) ?? Date.now();
    const claim = claimOf(read.data);
    if (claim.session !== this.session && now - claim.at <= MISSED_BEATS * HEARTBEAT_MS) return false;
    const other = (l: { items: Array<{ metadata?: { labels?: Record<string, string> } }> }) => l.items.some((o) => o.metadata?.labels?.[SESSION_LABEL] !== this.session);
    const [ds, sa] = await Promise.all([
      this.apps.listNamespacedDaemonSet({ namespace: name, labelSelector: MANAGED_SELECTOR }),
      this.core.listNamespacedServiceAccount({ namespace: name, labelSelector: MANAGED_SELECTOR }),
    ]);
    if (other(ds) || other(sa)) return false;
    const body = { preconditions: { resourceVersion: read.data.metadata?.resourceVersion } };
    let claimedMeanwhile = false;
    const deleted = await del(`namespace ${name}`, `delete namespaces (namespace ${name})`, () => this.core.deleteNamespace({ name, body }).catch((e: unknown) => {
      if ((e as { code?: number }).code !== 409) throw e;
      claimedMeanwhile = true;
    }));
    return deleted && !claimedMeanwhile;
  }

  /** Calls `on` for every change of this session's pods until the returned function is called. */
  watchPods(on: (type: string, pod: V1Pod) => void): Promise<() => void> {
    // why: the first watch starts at the DaemonSet's creation, not "now": its pods may already be past a
    // phase (pulling) by the time the watch is open.
    return keepWatching(this.kc, `/api/v1/namespaces/${this.ctx.namespace}/pods`, { labelSelector: `${SESSION_LABEL}=${this.session}` }, this.createdAt, on);
  }

  /** FailedCreate events of the DaemonSet (e.g. admission refusals at pod creation). */
  async failedCreate(): Promise<string | null> {
    const ev = await this.core.listNamespacedEvent({ namespace: this.ctx.namespace, fieldSelector: `involvedObject.name=${this.name}` }).catch(() => null);
    return ev?.items.filter((e) => e.reason === 'FailedCreate').map((e) => e.message ?? '').at(-1) ?? null;
  }
}

interface NodeRun {
  node: string;
  phase: NodePhase;
  /** The node's capture pod and whether it runs, from the watch (a replacement pod shows up here). */
  pod: string | null;
  podRunning: boolean;
  deploying: boolean;
  stream: ExecStream | null;
  dir: string | null;
  done: boolean;
  /** A resume in progress (stop waits for a try that is half-way). */
  resuming: Promise<void> | null;
  /** Temp dirs of helpers whose stream was lost: their run script removes them; make sure. */
  leftovers: Array<{ pod: string; dir: string }>;
  /** Why the node is not Ready ("NotReady (KubeletNotReady: ...)") while its kubelet still runs, from the node watch; null when Ready. */
  unready: string | null;
  /** The scheduler's refusal of its pod for want of room (waitsForRoom), while it retries; null once placed, or never refused. */
  unplaced: string | null;
  error?: TapscopeError;
}

class K8sCapture {
  private readonly nodes = new Map<string, NodeRun>();
  private readonly notes: string[] = [];
  private stopping = false;
  private stopPromise: Promise<void> | null = null;
  private unwatch: (() => void) | null = null;
  /** The node watch of the start (see onNode). */
  private unwatchNodes: (() => void) | null = null;
  private readonly index: PodIndex;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((r) => (this.resolveDone = r));
  private settled: (() => void) | null = null;
  private readonly stopSignal = new AbortController();
  private readonly startedAt = Date.now();
  /** what stop() could not confirm removed (empty: everything is gone) */
  private remaining: string[] = [];

  constructor(
    private readonly dep: Deployment,
    private readonly options: CaptureOptions,
    private readonly handlers: CaptureHandlers,
    /** each node's helper (its architecture's) */
    private readonly helpers: ReadonlyMap<string, HelperBinary>,
    private readonly image: string,
    private readonly readyTimeoutMs: number,
    nodeNames: string[],
    private readonly excludes: ReadonlyMap<string, string[]>,
    private readonly backoff: Backoff,
    /** the node listing the nodes were chosen from: its resourceVersion (the node watch starts there), and why nodes were not Ready */
    private readonly listing: { at: string | undefined; unready: ReadonlyMap<string, string> },
  ) {
    for (const n of nodeNames) {
      this.nodes.set(n, {
        node: n, phase: 'deploying', pod: null, podRunning: false, deploying: false, stream: null, dir: null, done: false, resuming: null, leftovers: [],
        unready: listing.unready.get(n) ?? null, unplaced: null,
      });
    }
    this.index = new PodIndex(dep.kc);
  }

  handle(): CaptureHandle & { enrich: (ip: string) => PodRef | null; podIndex: PodIndex } {
    return { stop: () => this.stop(), done: this.done, notes: this.notes, enrich: (ip) => this.index.lookup(ip), podIndex: this.index };
  }

  private status(n: NodeRun, phase: NodePhase, message?: string, error?: TapscopeError): void {
    n.phase = phase;
    if (phase === 'failed' || phase === 'stopped') n.done = true;
    this.handlers.onStatus({ node: n.node, phase, ...(message ? { message } : {}), ...(error ? { error: { code: error.code, message: error.message } } : {}) });
    if ([...this.nodes.values()].every((x) => x.done || x.phase === 'streaming')) this.settled?.();
    if (!this.stopping && [...this.nodes.values()].every((x) => x.done)) void this.stop();
  }

  private fail(n: NodeRun, e: TapscopeError): void {
    if (n.done) return;
    n.error = e;
    this.status(n, 'failed', e.message, e);
  }

  /**
   * Creates the session's objects and waits for every node's helper to stream (or fail). Aborting `signal` before
   * then cancels the start: everything created so far is removed as stop() does, and it rejects with StartCancelled.
   */
  async begin(signal?: AbortSignal): Promise<void> {
    const aborted = abortedPromise(signal);
    this.dep.onHeartbeatRefused = (why) => this.notes.push(`This capture cannot refresh its heartbeat on DaemonSet ${this.dep.ctx.namespace}/${this.dep.name} (${why}): \`tapscope clean\` run meanwhile takes it for a leftover and removes it. Grant that permission to keep it safe.`);
    for (const n of this.nodes.values()) this.status(n, 'deploying', `creating DaemonSet ${this.dep.ctx.namespace}/${this.dep.name}`);
    // (not raced: what a create under way makes must be known, to be removed)
    this.dep.onClaimRefused = (why) => this.notes.push(`This capture runs in namespace ${this.dep.ctx.namespace}, which another Tapscope session made, without claiming it (${why}): that session's end, or \`tapscope clean\`, may delete it, and this capture's pods with it. Grant that permission, or choose another namespace with --namespace.`);
    await this.dep.create({ image: this.image, nodes: [...this.nodes.keys()] });
    if (signal?.aborted) throw await this.cancelStart();
    this.notes.push(`Deployed DaemonSet ${this.dep.ctx.namespace}/${this.dep.name} (session ${this.dep.session}); it is removed on stop.`);
    const excluded = [...new Set([...this.excludes.values()].flat())];
    this.notes.push(excluded.length
      ? `Excluded from the capture: TCP to the kubelet API (${excluded.join(', ')}). The helper's output reaches the API server through the kubelet's exec stream on that port, so capturing it would capture itself in a loop; other kubelet API traffic on that port is excluded too.`
      : 'The nodes report no address for the kubelet API, so the exec stream carrying the helper output could not be excluded: expect its packets in the capture.');
    const allSettled = new Promise<void>((r) => (this.settled = r));
    try {
      const watching = this.dep.watchPods((type, pod) => this.onPod(type, pod));
      // why: a node whose kubelet goes away while its pod waits ends that wait at once. Without the right to watch nodes
      // the start goes on, and such a node waits out the ready timeout. One node is watched alone (field selector);
      // several in one watch from the listing they were chosen from, so it streams changes only, not every node again.
      const names = [...this.nodes.keys()];
      const nodeWatch = keepWatching<V1Node>(this.dep.kc, '/api/v1/nodes', names.length === 1 ? { fieldSelector: `metadata.name=${names[0]}` } : {},
        this.listing.at, (type, node) => this.onNode(type, node)).catch(() => () => undefined);
      // (a watch that opens after a cancel is closed at once)
      void watching.then((unwatch) => (this.stopping ? unwatch() : (this.unwatch = unwatch)), () => undefined);
      void nodeWatch.then((unwatch) => (this.stopping ? unwatch() : (this.unwatchNodes = unwatch)));
      await Promise.race([Promise.all([this.index.start().then(() => this.notes.push(...this.index.problems)), watching, nodeWatch]), aborted]);
    } catch (e) {
      if (signal?.aborted) throw await this.cancelStart();
      await this.stop();
      throw k8sError(e, 'watch pods', this.dep.ctx);
    }
    const deadline = Date.now() + this.readyTimeoutMs;
    let settled = false;
    void allSettled.then(() => (settled = true));
    while (!settled && Date.now() < deadline) {
      await Promise.race([allSettled, sleep(1000), aborted.catch(() => undefined)]);
      if (signal?.aborted) throw await this.cancelStart();
      if (settled) break;
      const failed = await this.dep.failedCreate();
      if (failed) {
        const e = /violates PodSecurity/.test(failed)
          ? new TapscopeError('E_K8S_ADMISSION', `Pod Security admission refused the capture pods: ${failed}. ${psaAdvice(this.dep.ctx.namespace)}`)
          : new TapscopeError('E_K8S_NODE_FAILED', `The DaemonSet could not create pods: ${failed}`);
        for (const n of this.nodes.values()) if (!n.pod) this.fail(n, e);
      }
    }
    this.unwatchNodes?.();
    for (const n of this.nodes.values()) {
      if (!n.done && n.phase !== 'streaming') {
        this.fail(n, new TapscopeError('E_K8S_NODE_FAILED', `Node ${n.node} did not get a running capture pod within ${Math.round(this.readyTimeoutMs / 1000)} s (last phase: ${n.phase}${n.unready ? `; the node is ${n.unready}` : ''}${n.unplaced ? `; the scheduler found no room for it: ${n.unplaced}` : ''}). Check \`kubectl -n ${this.dep.ctx.namespace} describe ds ${this.dep.name}\`.`));
      }
    }
    const runs = [...this.nodes.values()];
    if (runs.every((n) => n.phase === 'failed')) {
      await this.stop();
      const first = runs.map((n) => n.error).find(Boolean);
      throw first ?? new TapscopeError('E_K8S_NODE_FAILED', 'No node could start the capture.');
    }
  }

  /** The start was cancelled: stop and remove everything (as stop()), and say what was removed and what is left. */
  private async cancelStart(): Promise<StartCancelled> {
    // (read first: removing the namespace clears it)
    const createdNs = this.dep.createdNs;
    await this.stop();
    const { namespace: ns, context } = this.dep.ctx;
    const what = [`DaemonSet ${ns}/${this.dep.name} (and its pods)`, `ServiceAccount ${ns}/${this.dep.name}`, ...(createdNs ? [`namespace ${ns}`] : [])];
    return new StartCancelled(`k8s://${context}`, `removed ${what.join(', ')}`, this.remaining);
  }

  private onPod(type: string, pod: V1Pod): void {
    const nodeName = podNode(pod);
    const n = nodeName ? this.nodes.get(nodeName) : undefined;
    if (!n || n.done) return;
    const podName = pod.metadata?.name ?? '';
    if (!pod.spec?.nodeName) {
      // (not bound yet: only the scheduler's refusal says anything; final unless it is for want of room, see waitsForRoom)
      const refused = type !== 'DELETED' && unschedulable(pod);
      if (!refused || n.deploying || n.stream || n.resuming) return;
      if (!waitsForRoom(refused)) {
        this.fail(n, new TapscopeError('E_K8S_NODE_FAILED', `The capture pod ${podName} cannot be scheduled on ${n.node}: ${refused}.`));
      } else if (refused !== n.unplaced) {
        n.unplaced = refused;
        this.handlers.onStatus({ node: n.node, phase: n.phase, message: `no room for the capture pod on the node yet (${refused}); waiting, as the scheduler tries again when pods end` });
      }
      return;
    }
    n.unplaced = null;
    if (type === 'DELETED') {
      if (n.pod !== podName) return;
      n.pod = null;
      n.podRunning = false;
      // why: once streaming, the lost exec stream resumes in the DaemonSet's replacement pod (see resume()).
      if (!this.stopping && !n.stream && !n.resuming) this.fail(n, new TapscopeError('E_K8S_NODE_FAILED', `The capture pod ${podName} on ${n.node} was deleted.`));
      return;
    }
    const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
    const running = pod.status?.phase === 'Running' && !!pod.status?.containerStatuses?.[0]?.state?.running;
    n.pod = podName;
    n.podRunning = running;
    if (n.deploying || n.stream || n.resuming) return;
    // why: the first event may already show a later state; a pod with a node is scheduled, say so once.
    if (n.phase === 'deploying') this.status(n, 'scheduled', `pod ${podName}`);
    if (running) {
      this.status(n, 'running', `pod ${podName}`);
      n.deploying = true;
      void this.deployNode(n, podName).catch((e: unknown) => this.fail(n, k8sError(e, `run the helper in pod ${podName}`, this.dep.ctx)));
    } else if (waiting && /ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError/.test(waiting.reason ?? '')) {
      this.fail(n, new TapscopeError('E_K8S_NODE_FAILED', `Pod ${podName} on ${n.node} cannot start: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}. Set another image with --image.`));
    } else if (waiting) {
      this.status(n, 'pulling', `${waiting.reason ?? 'waiting'} (image ${this.image})`);
    } else if (n.phase !== 'scheduled') {
      this.status(n, 'scheduled', `pod ${podName}`);
    }
  }

  /**
   * A node whose kubelet goes away (Ready=Unknown) or that is deleted before its pod runs: that node's start fails at
   * once, with the node's reason. One that turns Ready=False goes on waiting (see kubeletGone), with the reason as its status.
   */
  private onNode(type: string, node: V1Node): void {
    const n = this.nodes.get(node.metadata?.name ?? '');
    if (!n || n.done || n.deploying || n.stream || n.resuming) return;
    const unready = type === 'DELETED' ? null : notReady(node);
    if (type === 'DELETED' || kubeletGone(node)) {
      this.fail(n, new TapscopeError('E_K8S_NODE_FAILED', `Node ${n.node} ${type === 'DELETED' ? 'was deleted' : `is ${unready}`}: its capture pod cannot start.`));
      return;
    }
    if (unready !== n.unready && unready) {
      this.handlers.onStatus({ node: n.node, phase: n.phase, message: `the node is ${unready}; waiting for its capture pod (a host-network pod may still start there)` });
    }
    n.unready = unready;
  }

  private async deployNode(n: NodeRun, pod: string): Promise<void> {
    const ns = this.dep.ctx.namespace;
    const kc = this.dep.kc;
    const helper = this.helpers.get(n.node)!;
    if (!n.resuming) this.status(n, 'deploying', `uploading helper (${helper.data.length} bytes)`);
    const mk = await execCollect(kc, ns, pod, CONTAINER, ['sh', '-c', MKTEMP_SCRIPT]);
    const { dir, passedOver } = madeTempDir(mk, `in pod ${pod}`,
      `The capture pod's image (--image) needs a writable /tmp, /var/tmp or /dev/shm on a mount that allows programs.`);
    // (said once: a resumed stream's new temp dir passes the same dirs over)
    if (passedOver.length && !n.resuming) this.notes.push(`${n.node}: the helper runs from ${dir} in pod ${pod}: ${passedOver.join('; ')}.`);
    n.dir = dir;
    const up = await execCollect(kc, ns, pod, CONTAINER, ['sh', '-c', uploadScript(dir, helper.data.length)], helper.data);
    checkUploadDigest(up.stdout.toString('utf8'), helper.sha256, `${n.node} (pod ${pod}):${dir}`);
    if (this.stopping) return;
    // (the helper's pod shares the node's PID namespace: the node's own files are PID 1's root there)
    const keyLogs = this.options.keyLogs?.map((p) => `/proc/1/root${p}`);
    const opts = { ...this.options, duration: remainingDuration(this.options, this.startedAt), ...(keyLogs ? { keyLogs } : {}) };
    const s = await execStream(kc, ns, pod, CONTAINER, runArgv(dir, helperArgs(opts, this.excludes.get(n.node) ?? [])));
    n.stream = s;
    const err = onLines(s.stderr, (line) => {
      if (!n.done) this.handlers.onStatus({ node: n.node, phase: n.phase, message: line });
    });
    this.handlers.onStream(n.node, s.stdout.pipe(new CompleteBlocks()));
    this.status(n, 'streaming');
    void s.exit.then(async (code) => {
      if (this.stopping || n.done) return;
      if (code === 0) return this.status(n, 'stopped');
      const lost = code === null ? `the exec stream of pod ${pod} was lost` : (await this.podGone(n, pod)) ? `the capture pod ${pod} is gone` : null;
      if (this.stopping || n.done) return;
      if (!lost) {
        this.fail(n, new TapscopeError('E_HELPER_EXITED', `The helper on ${n.node} exited with code ${code}: ${err.tail().trim().split('\n').slice(-3).join(' ') || 'no message'}`));
      } else if (durationElapsed(this.options, this.startedAt)) {
        this.status(n, 'stopped', lost);
      } else {
        n.leftovers.push({ pod, dir });
        n.resuming = this.resume(n, lost).finally(() => (n.resuming = null));
      }
    });
  }

  private async podGone(n: NodeRun, pod: string): Promise<boolean> {
    if (n.pod !== pod) return true;
    return this.dep.core.readNamespacedPod({ name: pod, namespace: this.dep.ctx.namespace }).then(() => false, (e: unknown) => (e as { code?: number }).code === 404);
  }

  /**
   * Resumes a node whose exec stream ended without a stop: re-runs the helper in the node's capture pod
   * (the DaemonSet's replacement if the pod is gone) with backoff, as a new stream, and records the gap.
   */
  private async resume(n: NodeRun, reason: string): Promise<void> {
    n.stream = null;
    n.dir = null;
    const fromMs = Date.now();
    this.handlers.onGap?.({ node: n.node, fromMs, toMs: null, reason });
    const r = await retryWithBackoff(async () => {
      if (durationElapsed(this.options, this.startedAt)) return false;
      // why: with its DaemonSet deleted the pods go and none comes back: retrying would only wait out the time budget
      if (await this.dep.isDeleted()) {
        throw new TapscopeError('E_K8S_NODE_FAILED', `the capture's DaemonSet ${this.dep.ctx.namespace}/${this.dep.name} was deleted (\`tapscope clean --force\`, or kubectl delete): its pods are gone, so the capture cannot resume`, { deleted: true });
      }
      const pod = n.podRunning ? n.pod : null;
      if (!pod) throw new TapscopeError('E_K8S_NODE_FAILED', `no running capture pod on ${n.node} yet`);
      await this.deployNode(n, pod).catch((e: unknown) => {
        // why: a try that got as far as its temp dir leaves it behind; removed with the others once resumed.
        if (n.dir) n.leftovers.push({ pod, dir: n.dir });
        n.dir = null;
        throw k8sError(e, `run the helper in pod ${pod}`, this.dep.ctx);
      });
      return true;
    }, {
      backoff: this.backoff,
      signal: this.stopSignal.signal,
      onWait: (ms, e) => this.status(n, 'reconnecting', `${reason}; retrying in ${(ms / 1000).toFixed(1)} s${e ? ` (last try: ${errorText(e)})` : ''}`),
      fatal: (e) => isTapscopeError(e) && e.details?.deleted === true,
    });
    if (r.outcome === 'stopped' || this.stopping) return;
    if (r.outcome === 'failed') {
      this.fail(n, new TapscopeError('E_K8S_NODE_FAILED',
        `Node ${n.node}: ${reason}, and resuming failed for ${Math.round((Date.now() - fromMs) / 1000)} s; last try: ${errorText(r.error)}`));
      return;
    }
    if (!r.value) return this.status(n, 'stopped', reason);
    this.handlers.onGap?.({ node: n.node, fromMs, toMs: Date.now(), reason });
    await this.removeLeftovers(n);
  }

  private async removeLeftovers(n: NodeRun): Promise<void> {
    for (const { pod, dir } of n.leftovers.splice(0)) {
      await execCollect(this.dep.kc, this.dep.ctx.namespace, pod, CONTAINER, ['sh', '-c', killScript(dir)]).catch(() => undefined);
    }
  }

  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    const runs = [...this.nodes.values()];
    // why: a resume may be half-way; let it land so its helper is stopped below like the others.
    await Promise.all(runs.map((n) => (n.resuming ? Promise.race([n.resuming, sleep(3000)]) : undefined)));
    for (const n of runs) if (n.stream && !n.done) this.handlers.onStatus({ node: n.node, phase: 'stopping' });
    await Promise.all(runs.map(async (n) => {
      if (!n.stream) return;
      n.stream.stdin.end();
      const exited = await Promise.race([n.stream.exit.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
      if (exited) return;
      const said = n.pod && n.dir
        ? await execCollect(this.dep.kc, this.dep.ctx.namespace, n.pod, CONTAINER, ['sh', '-c', killScript(n.dir)]).then((r) => r.stdout.toString('utf8'), () => null)
        : null;
      n.stream.close();
      // why: what the helper wrote after its stream was given up never arrives: the capture must not read as a clean stop
      const note = stopOverrunNote(n.node, said);
      if (note) this.notes.push(note);
    }));
    this.unwatch?.();
    this.unwatchNodes?.();
    this.index.stop();
    const remaining = await this.dep.remove().catch((e: unknown) => [`(could not remove the session's objects: ${k8sError(e, 'remove the session\'s objects', this.dep.ctx).message})`]);
    this.remaining = remaining;
    if (remaining.length) {
      // why: a refused delete is named with the permission it lacked, not left for the reader to guess from a list
      const refused = remaining.some((r) => /\(not deleted: |\(could not /.test(r));
      const clean = `\`tapscope clean --target k8s://${this.dep.ctx.context}\``;
      this.notes.push(refused
        ? `Could not remove everything this session created in the cluster: ${remaining.join('; ')}. Remove the rest with ${clean} using a context allowed to delete it (or ask a cluster admin).`
        : `Not removed yet: ${remaining.join(', ')}. Run ${clean} in a minute, once the session's heartbeat has gone stale (or now with --force).`);
    }
    for (const n of runs) if (!n.done) this.status(n, 'stopped');
    this.resolveDone();
  }
}

export class K8sTarget implements CaptureTarget {
  readonly kind = 'k8s' as const;
  readonly uri: string;
  private readonly context: string | null;
  private readonly nodeFilter: string | null;
  /** node name -> its kubelet API endpoints, from the last node listing (excluded from its capture). */
  private readonly kubelet = new Map<string, string[]>();
  /** node name -> why it is not Ready ("NotReady (KubeletNotReady: ...)"), from the last node listing; Ready nodes are not here. */
  private readonly unready = new Map<string, string>();
  /** the nodes of the last listing whose kubelet is gone (Ready=Unknown: see kubeletGone) */
  private readonly gone = new Set<string>();
  /** the resourceVersion of the last node listing */
  private listedAt: string | undefined;
  private kcCache: { kc: KubeConfig; context: string; user: string | null } | null = null;

  constructor(uri: string, private readonly opts: K8sTargetOptions) {
    this.uri = uri;
    const p = parseK8sUri(uri);
    this.context = p.context;
    this.nodeFilter = p.node;
  }

  private config(): { kc: KubeConfig; context: string; user: string | null } {
    if (!this.kcCache) {
      const merged = mergeKubeconfigs(kubeconfigFiles(this.opts.kubeconfig));
      const kc = kubeConfigFor(merged, this.context);
      this.kcCache = { kc, context: kc.getCurrentContext(), user: kc.getCurrentUser()?.name ?? null };
    }
    return this.kcCache;
  }

  get namespace(): string {
    return this.opts.namespace ?? 'tapscope';
  }

  private ctx(): { context: string; namespace: string; user: string | null } {
    const c = this.config();
    return { context: c.context, namespace: this.namespace, user: c.user };
  }

  async listNodes(): Promise<NodeInfo[]> {
    const { kc } = this.config();
    const list = await kc.makeApiClient(CoreV1Api).listNode().catch((e: unknown) => {
      throw k8sError(e, 'list nodes', this.ctx());
    });
    this.unready.clear();
    this.gone.clear();
    this.listedAt = list.metadata?.resourceVersion;
    for (const n of list.items) {
      this.kubelet.set(n.metadata?.name ?? '', kubeletEndpoints(n));
      const why = notReady(n);
      if (why) this.unready.set(n.metadata?.name ?? '', why);
      if (kubeletGone(n)) this.gone.add(n.metadata?.name ?? '');
    }
    const nodes = list.items.map(nodeInfo);
    if (this.nodeFilter) {
      const n = nodes.filter((x) => x.name === this.nodeFilter);
      if (n.length === 0) throw new TapscopeError('E_TARGET_INVALID', `Node "${this.nodeFilter}" is not in context "${this.ctx().context}". Nodes: ${nodes.map((x) => x.name).join(', ')}.`);
      return n;
    }
    return nodes;
  }

  async listPods(): Promise<PodChoice[]> {
    const { kc } = this.config();
    const list = await kc.makeApiClient(CoreV1Api).listPodForAllNamespaces().catch((e: unknown) => {
      throw k8sError(e, 'list pods', this.ctx());
    });
    return list.items
      // (not the capture's own pods)
      .filter((p) => p.metadata?.labels?.[MANAGED_BY] !== MANAGED_BY_VALUE && p.metadata?.name && p.metadata.namespace)
      .filter((p) => !this.nodeFilter || p.spec?.nodeName === this.nodeFilter)
      .map((p) => ({
        namespace: p.metadata!.namespace!, name: p.metadata!.name!, node: p.spec?.nodeName ?? null, ips: podAddresses(p),
        hostNetwork: p.spec?.hostNetwork === true, phase: p.status?.phase ?? null,
      }))
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  }

  /** The nodes asked for (all there), or else every Ready one; with the listing they come from. */
  private async chooseNodes(requested?: string[]): Promise<{ names: string[]; all: NodeInfo[] }> {
    const all = await this.listNodes();
    if (requested && requested.length > 0) {
      const unknown = requested.filter((r) => !all.some((n) => n.name === r));
      if (unknown.length) throw new TapscopeError('E_TARGET_INVALID', `Unknown node(s) ${unknown.join(', ')} in context "${this.ctx().context}". Nodes: ${all.map((n) => n.name).join(', ')}.`);
      return { names: requested, all };
    }
    const ready = all.filter((n) => n.ready).map((n) => n.name);
    if (ready.length === 0) {
      throw new TapscopeError('E_K8S_NODE_FAILED', `No ready node in context "${this.ctx().context}"${all.length ? `: ${this.notReadySaid(all.map((n) => n.name))}` : ''}.`);
    }
    return { names: ready, all };
  }

  /** "node a is NotReady (KubeletNotReady: container runtime is down); node b is ...", for those of `names` that are not Ready. */
  private notReadySaid(names: string[]): string {
    return names.filter((n) => this.unready.has(n)).map((n) => `node ${n} is ${this.unready.get(n)}`).join('; ');
  }

  /**
   * Refuses nodes asked for by name whose kubelet is gone (Ready=Unknown): no capture or shell pod would start there. Of
   * the others, those that are not Ready are said (for a note): they are tried, and the pod wait says whether their pod starts.
   */
  private refuseGone(names: string[]): string {
    const said = this.notReadySaid(names.filter((n) => this.gone.has(n)));
    if (said) {
      throw new TapscopeError('E_K8S_NODE_FAILED',
        `${said.charAt(0).toUpperCase()}${said.slice(1)}: its kubelet is not reporting, so no pod starts there. Choose other nodes, or wait until \`kubectl get nodes\` shows ${said.includes('; ') ? 'them' : 'it'} Ready.`);
    }
    return this.notReadySaid(names);
  }

  async preflight(nodes?: string[]): Promise<PreflightReport[]> {
    const { names, all } = await this.chooseNodes(nodes);
    const { kc } = this.config();
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const ns = this.namespace;
    // The permissions a capture uses, as Deployment.create/remove and the exec streams use them: create and delete its
    // DaemonSet and ServiceAccount, watch its pods and exec into them, and list what it created to check it is gone.
    const checks: Array<[string, string, string, string | undefined]> = [
      ['create', 'apps', 'daemonsets', undefined], ['delete', 'apps', 'daemonsets', undefined], ['list', 'apps', 'daemonsets', undefined],
      ['create', '', 'serviceaccounts', undefined], ['delete', '', 'serviceaccounts', undefined], ['list', '', 'serviceaccounts', undefined],
      ['create', '', 'pods', 'exec'], ['watch', '', 'pods', undefined], ['list', '', 'pods', undefined],
    ];
    const problems: string[] = [];
    const allowed = async (verb: string, group: string, resource: string, namespace: string | undefined, subresource?: string, name?: string): Promise<boolean> => {
      const attrs = { verb, group, resource, ...(namespace ? { namespace } : {}), ...(subresource ? { subresource } : {}), ...(name ? { name } : {}) };
      const r = await authz.createSelfSubjectAccessReview({
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: attrs } },
      }).catch(() => null);
      return !(r && r.status?.allowed === false);
    };
    for (const [verb, group, resource, subresource] of checks) {
      if (!(await allowed(verb, group, resource, ns, subresource))) {
        problems.push(`RBAC: cannot ${verb} ${resource}${subresource ? `/${subresource}` : ''}${group ? `.${group}` : ''} in namespace ${ns}.`);
      }
    }
    // The namespace: one that exists needs nothing more (reading it is not required); one that does not is created and
    // deleted by the capture. Unreadable: a dry-run ServiceAccount in it says whether it exists (404: it does not).
    const core = kc.makeApiClient(CoreV1Api);
    const nsState: { exists: boolean | null; level?: string } = await core.readNamespace({ name: ns }).then(
      (n) => ({ exists: true, level: n.metadata?.labels?.[PSA_LABEL] }),
      async (e: unknown) => {
        const status = (e as { code?: number }).code;
        if (status === 404) return { exists: false };
        if (status !== 403) return { exists: null };
        const probe = serviceAccountManifest(`tapscope-check-${randomBytes(3).toString('hex')}`, ns, 'check');
        return core.createNamespacedServiceAccount({ namespace: ns, body: probe, dryRun: 'All' })
          .then(() => ({ exists: true }), (x: unknown) => ({ exists: (x as { code?: number }).code === 404 ? false : null }));
      });
    if (nsState.level && nsState.level !== 'privileged') {
      problems.push(`Namespace ${ns} enforces Pod Security level "${nsState.level}", which refuses the capture pods. ${psaAdvice(ns)}`);
    }
    if (nsState.exists === false) {
      if (!(await allowed('create', '', 'namespaces', undefined))) problems.push(`RBAC: namespace ${ns} does not exist, and this context cannot create namespaces.`);
      else if (!(await allowed('delete', '', 'namespaces', ns, undefined, ns))) problems.push(`RBAC: cannot delete namespaces (namespace ${ns}, which the capture creates).`);
    }
    // why: one run of each helper's --version, not one per node (the app checks every node of a cluster it lists)
    const versions = new Map<string, string | null>();
    const versionOf = (path: string): string | null => {
      if (!versions.has(path)) versions.set(path, helperVersion(path));
      return versions.get(path)!;
    };
    const byName = new Map(all.map((x) => [x.name, x]));
    return names.map((name) => {
      const n = byName.get(name) as NodeInfo;
      const built = builtHelper(n.arch, this.opts.helperPath);
      return {
        node: name, arch: n.arch, kernel: n.kernel, btf: null, privileged: problems.length ? 'none' : 'root', helperVersion: built ? versionOf(built) : null,
        problems: [...(n.ready ? [] : [`Node is ${this.unready.get(name) ?? 'not Ready'}.`]), ...(built ? [] : [`No helper is built for ${n.arch}.`]), ...problems],
      };
    });
  }

  async start(options: CaptureOptions, handlers: CaptureHandlers, signal?: AbortSignal): Promise<CaptureHandle & { enrich: (ip: string) => PodRef | null }> {
    // chosen pods: their nodes, and a filter on their addresses (see pod-scope.ts)
    const scope = options.pods && options.pods.length > 0 ? await this.podScope(options.pods, options.filter) : null;
    if (scope) options = { ...options, filter: scope.filter };
    const named = scope?.nodes ?? options.nodes ?? (this.nodeFilter ? [this.nodeFilter] : undefined);
    // (an empty list asks for every node, as chooseNodes takes it)
    const requested = named?.length ? named : undefined;
    const { names: chosen, all: info } = await this.chooseNodes(requested);
    // why: a node whose kubelet is gone starts no capture pod: one asked for by name is an error now (as an architecture
    // without a helper, below) rather than waited for until the ready timeout. One that is only NotReady (Ready=False: a
    // broken pod network) may still start the host-network capture pod: it is tried, with a note. Of every node, the Ready
    // ones are captured and the others named in a note.
    const tried = requested ? this.refuseGone(chosen) : '';
    const unreadyNote = requested ? '' : this.notReadySaid(info.map((n) => n.name));
    // why: each node gets the helper of its architecture; a node of one this build has none for is named instead of
    // failing with "exec format error"
    const helpers = new HelperSet(this.opts.helperPath);
    const byNode = new Map<string, HelperBinary>();
    for (const n of chosen) {
      const h = helpers.for(info.find((x) => x.name === n)?.arch ?? null);
      if (h) byNode.set(n, h);
    }
    const foreign = chosen.filter((n) => !byNode.has(n));
    const nodes = chosen.filter((n) => byNode.has(n));
    const foreignNote = foreign.length ? `Not captured: ${foreign.join(', ')} (no helper for their architecture in this build).` : null;
    if (nodes.length === 0 || (requested && foreign.length)) {
      throw new TapscopeError('E_KERNEL_UNSUPPORTED', `${foreignNote ?? 'No node to capture on.'} This build has the helper for ${helpers.architectures()} nodes only.`);
    }
    const dep = new Deployment(this.config().kc, this.ctx(), randomBytes(4).toString('hex'), this.opts.heartbeatMs ?? HEARTBEAT_MS);
    const cap = new K8sCapture(dep, options, handlers, byNode, this.opts.image ?? DEFAULT_IMAGE, this.opts.readyTimeoutMs ?? 120_000, nodes, this.kubelet,
      { ...DEFAULT_RECONNECT, ...this.opts.reconnect }, { at: this.listedAt, unready: new Map(this.unready) });
    if (signal?.aborted) throw new StartCancelled(`k8s://${this.ctx().context}`, 'nothing had been created yet', []);
    await cap.begin(signal);
    const handle = cap.handle();
    if (unreadyNote) handle.notes.push(`Not captured: ${unreadyNote}.`);
    if (tried) handle.notes.push(`Tried although not Ready: ${tried}. Its kubelet still runs, and starts host-network pods such as the capture pod while only the pod network is down.`);
    if (foreignNote) handle.notes.push(foreignNote);
    if (scope) handle.notes.push(...scope.notes);
    return handle;
  }

  private async podScope(pods: string[], filter?: string): Promise<PodScope> {
    const { kc } = this.config();
    const ctx = this.ctx();
    const scope = await podScope(kc.makeApiClient(CoreV1Api), pods, kc.getContextObject(ctx.context)?.namespace ?? 'default', ctx, filter);
    const elsewhere = this.nodeFilter ? scope.nodes.filter((n) => n !== this.nodeFilter) : [];
    if (elsewhere.length > 0) {
      throw new TapscopeError('E_TARGET_INVALID', `The pods run on ${scope.nodes.join(', ')}, not only on ${this.nodeFilter}: choose k8s://${ctx.context} to capture them.`);
    }
    return scope;
  }

  async openShell(node: string): Promise<ShellChannel> {
    await this.chooseNodes([node]);
    const unready = this.refuseGone([node]);
    const dep = new Deployment(this.config().kc, this.ctx(), `shell-${randomBytes(3).toString('hex')}`, this.opts.heartbeatMs ?? HEARTBEAT_MS);
    await dep.create({ image: this.opts.image ?? DEFAULT_IMAGE, nodes: [node], shell: true });
    // (a plain stream: the terminal's size goes on the resize channel from execStream, in order with the keys typed)
    const out = new PassThrough();
    let s: ExecStream;
    // why: every failure from here on removes the shell's DaemonSet, and so stops its heartbeat: a failed exec (pods/exec
    // refused, the pod restarted) must not leave a privileged pod that `tapscope clean` takes for a running shell
    try {
      const timeoutMs = this.opts.readyTimeoutMs ?? 120_000;
      const deadline = Date.now() + timeoutMs;
      let pod: string | null = null;
      while (!pod && Date.now() < deadline) {
        const pods = await dep.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${SESSION_LABEL}=${dep.session}` });
        pod = pods.items.find((p) => p.status?.phase === 'Running')?.metadata?.name ?? null;
        if (!pod) await sleep(200);
      }
      if (!pod) throw new TapscopeError('E_K8S_NODE_FAILED', `The shell pod on ${node} did not start within ${Math.round(timeoutMs / 1000)} s${unready ? ` (${unready})` : ''}.`);
      if (unready) out.write(`tapscope: ${unready}; the shell pod started there all the same.\r\n`);
      const shellPod = pod;
      s = await execStream(dep.kc, this.namespace, pod, CONTAINER, ['sh', '-c', HOST_SHELL], true, out).catch((x: unknown) => {
        throw k8sError(x, `create pods/exec in namespace ${this.namespace} (a shell in pod ${shellPod})`, this.ctx());
      });
    } catch (e) {
      await dep.remove().catch(() => undefined);
      throw isTapscopeError(e) ? e : k8sError(e, 'start a shell pod', this.ctx());
    }
    let cleaned: Promise<unknown> | null = null;
    const cleanup = () => (cleaned ??= dep.remove().catch(() => undefined));
    void s.exit.then(cleanup);
    return {
      write: (d) => void s.stdin.write(d),
      resize: (cols, rows) => s.resize!(cols, rows),
      onData(cb) {
        const f = (d: Buffer) => cb(d);
        out.on('data', f);
        return () => out.off('data', f);
      },
      onExit(cb) {
        let live = true;
        void s.exit.then(async (code) => {
          await cleanup();
          if (live) cb(code);
        });
        return () => {
          live = false;
        };
      },
      close: () => s.close(),
    };
  }

  async close(): Promise<void> {
    this.kcCache = null;
  }
}

/**
 * A shell in the node's own namespaces (hostPID lets us enter PID 1's). Where that is refused (a node
 * that is itself a container, a hardened runtime) it says so and falls back to the capture pod's shell.
 */
const HOST_SHELL = [
  'n="nsenter -t 1 -m -u -i -n -p --"',
  'if $n true 2>/dev/null; then exec $n sh; fi',
  'echo "tapscope: cannot enter the host namespaces of PID 1 here; this is a shell in the capture pod (host network and PIDs)." >&2',
  'exec sh',
].join('\n');

export function createK8sTarget(uri: string, opts: K8sTargetOptions = {}): K8sTarget {
  return new K8sTarget(uri, opts);
}
