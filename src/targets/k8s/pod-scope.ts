// Capturing chosen pods (`capture --pod NS/NAME`, the Connect view's pods), as `kubectl sniff` does: the capture
// runs on the nodes the pods are scheduled on, with a capture filter on the pods' addresses, so the stream carries
// the pods' traffic (and the hooks' plaintext of their connections) and not the rest of the node's.
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { TapscopeError } from '../../errors.js';
import { k8sError } from './errors.js';

export interface PodScope {
  /** the nodes the pods run on, in the order first named */
  nodes: string[];
  /** the capture filter: the pods' addresses, and the user's own filter when one was given */
  filter: string;
  /** one line per pod, for the session notes */
  notes: string[];
}

export interface PodName {
  namespace: string;
  name: string;
}

/** `NS/NAME`, or `NAME` in `defaultNamespace` (the context's, as kubectl takes it). */
export function parsePodName(ref: string, defaultNamespace: string): PodName {
  const parts = ref.trim().split('/');
  const ok = (s: string | undefined): s is string => s !== undefined && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(s) && s.length <= 253;
  if (parts.length === 1 && ok(parts[0])) return { namespace: defaultNamespace, name: parts[0] };
  if (parts.length === 2 && ok(parts[0]) && ok(parts[1])) return { namespace: parts[0], name: parts[1] };
  throw new TapscopeError('E_USAGE', `'${ref}' is not a pod: give NAMESPACE/NAME (or NAME in the context's namespace, ${defaultNamespace})`);
}

/**
 * The filter for traffic to or from any of `ips`, narrowed by the user's `filter` (tcpdump syntax) when given:
 * `(host A or host B) and (USER)`.
 */
export function podFilter(ips: string[], filter?: string): string {
  const hosts = ips.map((ip) => `host ${ip}`).join(' or ');
  const scoped = ips.length > 1 ? `(${hosts})` : hosts;
  return filter && filter.trim() ? `${scoped} and (${filter.trim()})` : scoped;
}

/** A pod's addresses (status.podIPs, else status.podIP). */
export function podAddresses(pod: V1Pod): string[] {
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => typeof ip === 'string' && ip.length > 0);
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return [...new Set(ips)];
}

/**
 * Reads each pod and tells where and how to capture it. Refused, naming the pod: one that does not exist, one not
 * scheduled or without an address yet, and one on the host's network (its address is its node's, so a filter on
 * it would be the whole node's traffic: capture the node instead, with a filter on the pod's ports).
 */
export async function podScope(
  core: CoreV1Api, refs: string[], defaultNamespace: string, ctx: { context: string; namespace?: string; user?: string | null }, filter?: string,
): Promise<PodScope> {
  const nodes: string[] = [];
  const ips: string[] = [];
  const notes: string[] = [];
  for (const ref of refs) {
    const { namespace, name } = parsePodName(ref, defaultNamespace);
    const pod = await core.readNamespacedPod({ namespace, name }).catch((e: unknown) => {
      if ((e as { code?: number }).code === 404) {
        throw new TapscopeError('E_TARGET_INVALID', `Pod ${namespace}/${name} is not in context "${ctx.context}".`);
      }
      throw k8sError(e, `get pod ${namespace}/${name}`, ctx);
    });
    const node = pod.spec?.nodeName;
    const own = podAddresses(pod);
    if (pod.spec?.hostNetwork) {
      throw new TapscopeError('E_TARGET_INVALID', `Pod ${namespace}/${name} uses its node's network (hostNetwork): its address is ${node ?? 'the node'}'s, `
        + `so its traffic cannot be told from the node's by address; capture k8s://${ctx.context}/${node ?? 'NODE'} with a capture filter on its ports.`);
    }
    if (!node || own.length === 0) {
      throw new TapscopeError('E_TARGET_INVALID', `Pod ${namespace}/${name} has ${node ? 'no address' : 'no node'} yet (phase ${pod.status?.phase ?? 'unknown'}): wait until it runs.`);
    }
    if (!nodes.includes(node)) nodes.push(node);
    ips.push(...own.filter((ip) => !ips.includes(ip)));
    notes.push(`Pod ${namespace}/${name} (${own.join(', ')}) on node ${node}: only traffic to or from its address${own.length > 1 ? 'es' : ''} is captured, `
      + 'as of the capture\'s start (a pod restarted with a new address is not followed).');
  }
  return { nodes, filter: podFilter(ips, filter), notes };
}
