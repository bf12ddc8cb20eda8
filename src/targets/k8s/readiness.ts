// Whether a capture pod can start, read as kubectl shows it: a node whose kubelet has stopped posting status
// (Ready=Unknown) runs no new pod, and a pod the scheduler refused (PodScheduled=False) for anything but room never
// gets a node. Either ends that node's wait at once with the cluster's own reason, instead of the ready timeout's guess.
// A pod refused for want of room (Insufficient memory) is retried by the scheduler as pods end, so its wait goes on,
// saying why. A node that is Ready=False may still start the capture pod: see kubeletGone.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { oneLine } from './errors.js';

function reasonText(reason: string | undefined, message: string | undefined): string {
  // (kubelet and scheduler messages may end in a period or span lines; they go inside a sentence here)
  return [reason, message === undefined ? undefined : oneLine(message)].filter(Boolean).join(': ');
}

/** "NotReady (KubeletNotReady: container runtime is down)" for a node whose Ready condition is not True; null when it is. */
export function notReady(node: V1Node): string | null {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return null;
  if (!ready) return 'NotReady (it reports no Ready condition)';
  return `NotReady (${reasonText(ready.reason, ready.message) || `Ready is ${ready.status}`})`;
}

/**
 * Whether the node's kubelet is gone: Ready is Unknown (the node controller's "Kubelet stopped posting node status"), so
 * nothing starts a pod there.
 * why not Ready=False too: the kubelet is there and still starts host-network pods while the pod network is down
 * (KubeletNotReady: container runtime network not ready, NetworkPluginNotReady), and the capture pod is one, tolerating
 * every taint; a broken pod network is a main reason to capture on a node. Whether its pod starts, the pod wait says.
 */
export function kubeletGone(node: V1Node): boolean {
  return node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'Unknown';
}

/**
 * The node a DaemonSet pod is for: the one it is bound to or, before the scheduler binds it, the one node its
 * affinity names (the DaemonSet controller gives each pod a `metadata.name In [node]` term of its own).
 */
export function podNode(pod: V1Pod): string | null {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const names = new Set(terms.flatMap((t) => t.matchFields ?? [])
    .filter((f) => f.key === 'metadata.name' && f.operator === 'In').flatMap((f) => f.values ?? []));
  return names.size === 1 ? [...names][0]! : null;
}

/** The scheduler's refusal of a pod ("Unschedulable: 0/6 nodes are available: 1 Insufficient memory, ..."), or null. */
export function unschedulable(pod: V1Pod): string | null {
  const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'False');
  return c ? reasonText(c.reason, c.message) || 'not schedulable' : null;
}

/**
 * Whether a scheduler refusal (unschedulable's) is for want of room on the pod's node alone ("1 Insufficient memory",
 * "1 Too many pods"), which the scheduler retries as pods end and free it. Its other nodes' "didn't match Pod's node
 * affinity/selector" are the DaemonSet's pinning, not a reason. Anything else, or a message not read, is final.
 */
export function waitsForRoom(refusal: string): boolean {
  const m = /nodes are available: (.*?)(?:\.\s+preemption:|\.?$)/.exec(refusal);
  if (!m) return false;
  const reasons = m[1]!.split(/,\s*/).filter((r) => !/^\d+ node\(s\) didn't match Pod's node affinity\/selector$/.test(r));
  return reasons.length > 0 && reasons.every((r) => /^\d+ (Insufficient [\w./-]+|Too many pods)$/.test(r));
}
