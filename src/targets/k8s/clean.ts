// `tapscope clean`: removes what Tapscope sessions left in a cluster (a crash, a quit before cleanup, a refused delete)
// and nothing that is still in use. A running session refreshes the heartbeat on its DaemonSet (manifests.ts): one
// heard from within three of its intervals is left alone, with its ServiceAccount and the namespace it runs in. A
// DaemonSet without a heartbeat was made by a Tapscope from before heartbeats: it is removed as a leftover, even if
// that Tapscope is still capturing (it cannot say so). `force` removes running sessions too.
//
// Every age is the API server's clock against itself (server-time.ts): a heartbeat by the server's stamp of its last
// change, against the server's clock when it listed it. And what changed after the listing is not removed: each
// delete has the listed resourceVersion as its precondition, so a heartbeat refreshed meanwhile, or a namespace a
// session claimed meanwhile (CLAIM_ANNOTATION), makes the server refuse it, and it is kept.
import { AppsV1Api, CoreV1Api, type V1DaemonSet, type V1Namespace, type V1ServiceAccount } from '@kubernetes/client-node';
import { k8sError } from './errors.js';
import { kubeConfigFor, kubeconfigFiles, mergeKubeconfigs } from './kubeconfig.js';
import {
  CLAIM_ANNOTATION, CREATED_NS_LABEL, HEARTBEAT_ANNOTATION, HEARTBEAT_INTERVAL_ANNOTATION, HEARTBEAT_MS, MANAGED_SELECTOR, SESSION_LABEL, STARTED_BY_ANNOTATION,
} from './manifests.js';
import { annotationChangedAt, serverNow } from './server-time.js';

export interface CleanResult {
  /** What was deleted, a DaemonSet with why it was a leftover: "daemonset tapscope/tapscope-1a2b3c4d (last heartbeat 14 min ago)". */
  removed: string[];
  /** Sessions left alone: "running capture tapscope/tapscope-1a2b3c4d (heartbeat 12 s ago, started by alice@laptop)". */
  kept: string[];
}

/** Heartbeats a session may miss before it counts as gone. */
export const MISSED_BEATS = 3;

/** "12 s", "14 min", "3 h", "2 d" */
function span(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 2 * 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/**
 * Whether a session's DaemonSet is in use at `now` (ms, the API server's clock), and what its heartbeat says. The
 * heartbeat's time is the server's stamp of its last change; without one (a server that keeps no managedFields), the
 * writer's own timestamp, in the writer's clock: one ahead of the server's counts as fresh (kept, and says so).
 */
export function liveness(ds: V1DaemonSet, now: number): { running: boolean; said: string } {
  const a = ds.metadata?.annotations ?? {};
  const by = a[STARTED_BY_ANNOTATION] ? `, started by ${a[STARTED_BY_ANNOTATION]}` : '';
  const written = Date.parse(a[HEARTBEAT_ANNOTATION] ?? '');
  if (Number.isNaN(written)) return { running: false, said: `no heartbeat: made by a Tapscope from before heartbeats${by}` };
  const stamped = annotationChangedAt(ds, HEARTBEAT_ANNOTATION);
  const interval = Number(a[HEARTBEAT_INTERVAL_ANNOTATION]) * 1000;
  // (the server's stamp and its Date header are whole seconds, taken at different moments: never "ahead")
  const age = stamped !== null ? Math.max(0, now - stamped) : now - written;
  const when = age >= 0 ? `${span(age)} ago` : `${span(-age)} ahead of the API server's clock`;
  return age <= MISSED_BEATS * (interval > 0 ? interval : HEARTBEAT_MS)
    ? { running: true, said: `heartbeat ${when}${by}` }
    : { running: false, said: `last heartbeat ${when}${by}` };
}

export interface CleanPlan {
  /**
   * resourceVersion: as listed, the delete's precondition (absent with force); session: a DaemonSet's or
   * ServiceAccount's ("namespace/session")
   */
  remove: Array<{
    kind: 'daemonset' | 'serviceaccount' | 'namespace'; namespace: string | null; name: string; said: string; resourceVersion?: string; session?: string;
  }>;
  kept: string[];
}

/**
 * When a namespace Tapscope made was last chosen by a session (the server's stamp of its claim, else its creation),
 * in the server's clock, and by which session; see CLAIM_ANNOTATION.
 */
export function claimOf(n: V1Namespace): { at: number; session: string | null; made: boolean } {
  const created = n.metadata?.creationTimestamp ? new Date(n.metadata.creationTimestamp).getTime() : 0;
  const claimed = annotationChangedAt(n, CLAIM_ANNOTATION) ?? 0;
  return { at: Math.max(created, claimed), session: n.metadata?.annotations?.[CLAIM_ANNOTATION] ?? null, made: claimed <= created };
}

/**
 * What `clean` removes of the session objects listed at `now` (the API server's clock), and which sessions it leaves
 * alone: a running one (its ServiceAccount and its namespace with it), and one starting now (a ServiceAccount younger
 * than three default heartbeats whose DaemonSet is not made yet, or a namespace made or claimed as recently).
 */
export function planClean(daemonSets: V1DaemonSet[], serviceAccounts: V1ServiceAccount[], namespaces: V1Namespace[], now: number, force: boolean): CleanPlan {
  const plan: CleanPlan = { remove: [], kept: [] };
  const sessionOf = (o: V1DaemonSet | V1ServiceAccount) => `${o.metadata?.namespace}/${o.metadata?.labels?.[SESSION_LABEL]}`;
  const kindOf = (o: V1DaemonSet | V1ServiceAccount) => (o.metadata?.labels?.[SESSION_LABEL]?.startsWith('shell-') ? 'shell' : 'capture');
  const age = (o: { metadata?: { creationTimestamp?: Date } }) => Math.max(0, now - (o.metadata?.creationTimestamp?.getTime() ?? 0));
  const young = (o: { metadata?: { creationTimestamp?: Date } }) => !force && age(o) <= MISSED_BEATS * HEARTBEAT_MS;
  const rv = (o: V1DaemonSet | V1ServiceAccount | V1Namespace) => (force ? {} : { resourceVersion: o.metadata?.resourceVersion });
  const inUse = new Set<string>();
  /** namespaces with a session in use */
  const busy = new Set<string>();
  for (const d of daemonSets) {
    const ns = d.metadata?.namespace ?? '';
    const name = d.metadata?.name ?? '';
    const life = liveness(d, now);
    if (life.running && !force) {
      plan.kept.push(`running ${kindOf(d)} ${ns}/${name} (${life.said})`);
      inUse.add(sessionOf(d));
      busy.add(ns);
    } else {
      plan.remove.push({ kind: 'daemonset', namespace: ns, name, said: life.running ? `running: ${life.said}` : life.said, session: sessionOf(d), ...rv(d) });
    }
  }
  const withDaemonSet = new Set(daemonSets.map(sessionOf));
  for (const s of serviceAccounts) {
    const ns = s.metadata?.namespace ?? '';
    const name = s.metadata?.name ?? '';
    if (inUse.has(sessionOf(s))) continue;
    if (!withDaemonSet.has(sessionOf(s)) && young(s)) {
      plan.kept.push(`starting ${kindOf(s)} ${ns}/${name} (its ServiceAccount made ${span(age(s))} ago, no DaemonSet yet)`);
      busy.add(ns);
      continue;
    }
    plan.remove.push({ kind: 'serviceaccount', namespace: ns, name, said: '', session: sessionOf(s), ...rv(s) });
  }
  for (const n of namespaces) {
    const name = n.metadata?.name ?? '';
    if (busy.has(name)) continue;
    const claim = claimOf(n);
    const since = Math.max(0, now - claim.at);
    if (!force && since <= MISSED_BEATS * HEARTBEAT_MS) {
      const what = claim.made ? 'made' : `claimed by session ${claim.session}`;
      plan.kept.push(`namespace ${name} (${what} ${span(since)} ago: a session may be starting in it)`);
      continue;
    }
    plan.remove.push({ kind: 'namespace', namespace: null, name, said: '', ...rv(n) });
  }
  return plan;
}

/** Removes what Tapscope sessions left in a cluster, selected by the managed-by label; with `force`, running sessions too. */
export async function cleanK8s(context: string, opts: { kubeconfig?: string; force?: boolean } = {}): Promise<CleanResult> {
  const merged = mergeKubeconfigs(kubeconfigFiles(opts.kubeconfig));
  const kc = kubeConfigFor(merged, context || null);
  const ctx = { context: kc.getCurrentContext(), user: kc.getCurrentUser()?.name ?? null };
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const wrap = <T>(p: Promise<T>, what: string) => p.catch((e: unknown) => {
    throw k8sError(e, what, ctx);
  });
  // why: a session stopping at the same time may delete the object first; gone is what we want.
  const gone = (p: Promise<unknown>, what: string) => wrap(p.catch((e: unknown) => {
    if ((e as { code?: number }).code !== 404) throw e;
  }), what);
  // (DaemonSets first: a session starting meanwhile has its ServiceAccount listed after, and so seen as starting)
  const ds = await wrap(apps.listDaemonSetForAllNamespacesWithHttpInfo({ labelSelector: MANAGED_SELECTOR }), 'list daemonsets.apps');
  const sas = await wrap(core.listServiceAccountForAllNamespaces({ labelSelector: MANAGED_SELECTOR }), 'list serviceaccounts');
  const nss = await wrap(core.listNamespace({ labelSelector: `${MANAGED_SELECTOR},${CREATED_NS_LABEL}=true` }), 'list namespaces');
  // (a server that sends no Date header: this machine's clock, the best left)
  const plan = planClean(ds.data.items, sas.items, nss.items, serverNow(ds.headers) ?? Date.now(), opts.force ?? false);
  const removed: string[] = [];
  const kept = [...plan.kept];
  // (a session found alive by a refused delete keeps its ServiceAccount and namespace, as a running one does)
  const alive = new Set<string>();
  for (const o of plan.remove) {
    const name = o.name;
    const namespace = o.namespace ?? '';
    if (o.session && alive.has(o.session)) continue;
    if (o.kind === 'namespace' && [...alive].some((s) => s.startsWith(`${name}/`))) continue;
    const body = o.resourceVersion ? { preconditions: { resourceVersion: o.resourceVersion } } : undefined;
    const what = `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${name}`;
    // why: 409, the precondition refused: the object changed since it was listed (a heartbeat, a claim): in use
    const del = o.kind === 'daemonset' ? apps.deleteNamespacedDaemonSet({ name, namespace, propagationPolicy: 'Background', body })
      : o.kind === 'serviceaccount' ? core.deleteNamespacedServiceAccount({ name, namespace, body })
        : core.deleteNamespace({ name, body });
    const changed = await gone(del.then(() => false, (e: unknown) => {
      if ((e as { code?: number }).code === 409) return true;
      throw e;
    }), `delete ${o.kind === 'daemonset' ? 'daemonsets.apps' : `${o.kind}s`}`);
    if (changed && o.session) alive.add(o.session);
    if (changed) kept.push(`${what} (changed while clean ran: ${o.kind === 'namespace' ? 'a session claimed it' : 'its session is alive'})`);
    else removed.push(`${what}${o.said ? ` (${o.said})` : ''}`);
  }
  return { removed, kept };
}
