// Enrichment: a live map from IP address to the pod (or Service) that owns it, kept by list+watch of pods
// and services across the cluster, so the core can fill `flow.pod`. Host-network pods are left out: their
// IP is the node's and names nothing more specific.
import { CoreV1Api, Watch, type KubeConfig, type V1Pod, type V1Service } from '@kubernetes/client-node';
import type { PodRef } from '../../model/flow.js';

/** Names the workload of a pod from its owner: Deployment (through its ReplicaSet), DaemonSet, StatefulSet, Job... */
export function workloadOf(pod: V1Pod): string | null {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (!owner) return null;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return `Deployment/${owner.name.slice(0, -hash.length - 1)}`;
  return `${owner.kind}/${owner.name}`;
}

/** Prefix of PodIndex keys that name a container id rather than an IP address. */
export const CONTAINER_KEY = 'container:';

export class PodIndex {
  private readonly pods = new Map<string, { key: string; ref: PodRef }>();
  private readonly services = new Map<string, { key: string; ref: PodRef }>();
  /** container id (hex, without the runtime's `containerd://` scheme) -> pod; hostNetwork pods too */
  private readonly containers = new Map<string, { key: string; ref: PodRef }>();
  private readonly aborts: AbortController[] = [];
  private stopped = false;
  /** Why the index is incomplete (e.g. RBAC), for the session notes. */
  problems: string[] = [];

  constructor(private readonly kc: KubeConfig) {}

  /** `key` is an IP address, or `container:<id>` for a container id the helper read from a process's cgroup. */
  lookup(key: string): PodRef | null {
    if (key.startsWith(CONTAINER_KEY)) return this.containers.get(key.slice(CONTAINER_KEY.length))?.ref ?? null;
    return this.pods.get(key)?.ref ?? this.services.get(key)?.ref ?? null;
  }

  get size(): number {
    return this.pods.size + this.services.size;
  }

  /** Resolves once both initial lists are in (or failed, with a problem recorded). */
  async start(): Promise<void> {
    await Promise.all([
      this.follow<V1Pod>('/api/v1/pods', 'pods', (type, p) => this.onPod(type, p)),
      this.follow<V1Service>('/api/v1/services', 'services', (type, s) => this.onService(type, s)),
    ]);
  }

  stop(): void {
    this.stopped = true;
    for (const a of this.aborts) a.abort();
  }

  private onPod(type: string, p: V1Pod): void {
    const key = `${p.metadata?.namespace}/${p.metadata?.name}`;
    for (const [ip, v] of this.pods) if (v.key === key) this.pods.delete(ip);
    for (const [id, v] of this.containers) if (v.key === key) this.containers.delete(id);
    if (type === 'DELETED') return;
    const ref: PodRef = { namespace: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '', workload: workloadOf(p), node: p.spec?.nodeName ?? null };
    const statuses = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? []), ...(p.status?.ephemeralContainerStatuses ?? [])];
    for (const c of statuses) {
      const id = c.containerID?.replace(/^[a-z0-9-]+:\/\//, '');
      if (id) this.containers.set(id, { key, ref });
    }
    // why: a hostNetwork pod shares the node's address; only its container ids say which flows are its own
    if (p.spec?.hostNetwork) return;
    const ips = new Set([p.status?.podIP, ...(p.status?.podIPs ?? []).map((x) => x.ip)].filter((x): x is string => !!x));
    for (const ip of ips) this.pods.set(ip, { key, ref });
  }

  private onService(type: string, s: V1Service): void {
    const key = `${s.metadata?.namespace}/${s.metadata?.name}`;
    for (const [ip, v] of this.services) if (v.key === key) this.services.delete(ip);
    if (type === 'DELETED') return;
    const ref: PodRef = { namespace: s.metadata?.namespace ?? '', name: s.metadata?.name ?? '', workload: `Service/${s.metadata?.name ?? ''}`, node: null };
    for (const ip of s.spec?.clusterIPs ?? [s.spec?.clusterIP]) if (ip && ip !== 'None') this.services.set(ip, { key, ref });
  }

  /** List then watch from the list's resourceVersion; re-list when the watch ends. */
  private async follow<T extends { metadata?: { resourceVersion?: string } }>(path: string, what: string, on: (type: string, o: T) => void): Promise<void> {
    let rv: string;
    try {
      const res = await fetchList<T>(this.kc, path);
      for (const o of res.items) on('ADDED', o);
      rv = res.resourceVersion;
    } catch (e) {
      this.problems.push(`Pod names are not shown: listing ${what} across the cluster failed (${e instanceof Error ? e.message : String(e)}).`);
      return;
    }
    const loop = async (from: string): Promise<void> => {
      if (this.stopped) return;
      const w = new Watch(this.kc);
      const ac = await w.watch(path, { resourceVersion: from, allowWatchBookmarks: false }, (type, obj: T) => {
        if (obj?.metadata?.resourceVersion) from = obj.metadata.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') on(type, obj);
      }, (err: unknown) => {
        if (this.stopped) return;
        // why: after an error the resourceVersion may be too old (410 Gone): list again, then watch.
        setTimeout(() => void (err ? this.follow(path, what, on) : loop(from)).catch(() => undefined), 1000).unref();
      });
      this.aborts.push(ac);
    };
    await loop(rv).catch((e: unknown) => this.problems.push(`Watching ${what} failed: ${String(e)}`));
  }
}

async function fetchList<T>(kc: KubeConfig, path: string): Promise<{ items: T[]; resourceVersion: string }> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = path.endsWith('/pods') ? await core.listPodForAllNamespaces() : await core.listServiceForAllNamespaces();
  return { items: list.items as unknown as T[], resourceVersion: list.metadata?.resourceVersion ?? '0' };
}
