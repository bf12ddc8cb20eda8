// The objects Tapscope creates in a cluster: its namespace, a ServiceAccount without API rights, and a
// DaemonSet of idle host-network pods restricted to the chosen nodes, into which the helper is delivered
// and run through exec. All carry the managed-by and session labels that stop() and `clean` select on; the
// DaemonSet also carries the heartbeat its running session refreshes, by which `clean` tells a running session from
// a leftover. The heartbeat is judged by the API server's clock, which stamps each change of it (its managedFields
// entry's time), not by the clocks of the machines that write and read it.
import type { V1DaemonSet, V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { PSA_LABEL } from './errors.js';

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'tapscope';
export const SESSION_LABEL = 'tapscope.dev/session';
/** On namespaces Tapscope created (and so may delete). */
export const CREATED_NS_LABEL = 'tapscope.dev/created-namespace';
export const MANAGED_SELECTOR = `${MANAGED_BY}=${MANAGED_BY_VALUE}`;
/** How often a running session refreshes its heartbeat, unless told otherwise (K8sTargetOptions.heartbeatMs). */
export const HEARTBEAT_MS = 20_000;
/**
 * On a session's DaemonSet: when the session last said it is running (ISO 8601, its machine's clock). Each refresh
 * changes it, so the server stamps the change in its own clock (server-time.ts): that stamp is what `clean` reads.
 */
export const HEARTBEAT_ANNOTATION = 'tapscope.dev/heartbeat';
/** The field manager of heartbeat refreshes: the managedFields entry that owns the heartbeat names it. */
export const HEARTBEAT_MANAGER = 'tapscope-heartbeat';
/**
 * On a namespace Tapscope made: the session that last chose to run in it (set at creation, or when a session takes up
 * one another session made). A session starting there claims it before it makes its objects, so that `clean` or the
 * session that made it does not delete it between: a recent claim keeps it, and a claim after they looked changes its
 * resourceVersion, which their delete's precondition then refuses.
 */
export const CLAIM_ANNOTATION = 'tapscope.dev/claimed-by';
/** How often that session says so, in seconds: `clean` judges the heartbeat by the writer's interval, not its own. */
export const HEARTBEAT_INTERVAL_ANNOTATION = 'tapscope.dev/heartbeat-interval-seconds';
/** Who started the session (user@host), for the person deciding whether to remove it. */
export const STARTED_BY_ANNOTATION = 'tapscope.dev/started-by';
export const DEFAULT_IMAGE = 'busybox:1.36';
export const CONTAINER = 'helper';

export function sessionLabels(session: string): Record<string, string> {
  return { [MANAGED_BY]: MANAGED_BY_VALUE, [SESSION_LABEL]: session, 'app.kubernetes.io/name': 'tapscope-helper' };
}

export function namespaceManifest(name: string, session: string): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    // why: the capture pods use host namespaces; in a namespace Tapscope owns, it says so to Pod Security admission.
    metadata: { name, labels: { ...sessionLabels(session), [CREATED_NS_LABEL]: 'true', [PSA_LABEL]: 'privileged' }, annotations: { [CLAIM_ANNOTATION]: session } },
  };
}

/** A JSON Patch by which `session` claims namespace `ns` (see CLAIM_ANNOTATION), keeping its other annotations. */
export function claimPatch(ns: V1Namespace, session: string): Array<{ op: 'add'; path: string; value: unknown }> {
  return ns.metadata?.annotations
    ? [{ op: 'add', path: `/metadata/annotations/${pointer(CLAIM_ANNOTATION)}`, value: session }]
    : [{ op: 'add', path: '/metadata/annotations', value: { [CLAIM_ANNOTATION]: session } }];
}

/** A JSON Pointer reference token (RFC 6901): `~` and `/` escaped. */
function pointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function serviceAccountManifest(name: string, namespace: string, session: string): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, namespace, labels: sessionLabels(session) },
    automountServiceAccountToken: false,
  };
}

/**
 * Capabilities of the capture container, and why each is needed:
 * - NET_RAW: AF_PACKET sockets (the packet path of every mode).
 * - NET_ADMIN: promiscuous mode and packet-socket/TC filter setup on host interfaces.
 * - BPF: create maps and load programs (kernel 5.8+ split this out of SYS_ADMIN).
 * - PERFMON: perf_event_open for uprobes and tracepoints and reading their ringbuf.
 * - SYS_PTRACE: read /proc/PID/maps and /proc/PID/root of other processes to find TLS libraries.
 * - SYS_RESOURCE: raise RLIMIT_MEMLOCK for BPF maps on kernels before 5.11.
 * Not SYS_ADMIN: nothing in the capture path needs it on 5.8+ kernels; the interactive host shell,
 * which must enter PID 1's namespaces, runs in a separate privileged pod only when asked for.
 */
export const CAPTURE_CAPABILITIES = ['NET_RAW', 'NET_ADMIN', 'BPF', 'PERFMON', 'SYS_PTRACE', 'SYS_RESOURCE'];

export interface DaemonSetSpec {
  name: string;
  namespace: string;
  session: string;
  serviceAccount: string;
  image: string;
  nodes: string[];
  /** The host-shell variant: privileged, for nsenter into PID 1. */
  shell?: boolean;
  heartbeat: { at: Date; intervalMs: number; startedBy: string };
}

function podSpec(o: DaemonSetSpec): NonNullable<V1Pod['spec']> {
  return {
    serviceAccountName: o.serviceAccount,
    automountServiceAccountToken: false,
    hostNetwork: true,
    hostPID: true,
    dnsPolicy: 'ClusterFirstWithHostNet',
    terminationGracePeriodSeconds: 2,
    tolerations: [{ operator: 'Exists' }],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: o.nodes }] }],
        },
      },
    },
    containers: [{
      name: CONTAINER,
      image: o.image,
      // why: an idle container; the helper is delivered and started through exec, so the image stays stock.
      command: ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'],
      securityContext: o.shell
        ? { privileged: true }
        : { privileged: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: CAPTURE_CAPABILITIES } },
      resources: { requests: { cpu: '20m', memory: '32Mi' }, limits: { memory: '512Mi' } },
      ...(o.shell ? {} : { volumeMounts: [{ name: 'tracefs', mountPath: '/sys/kernel/tracing', readOnly: true }] }),
    }],
    // why: tracepoint ids are read from tracefs, which container runtimes do not mount.
    ...(o.shell ? {} : { volumes: [{ name: 'tracefs', hostPath: { path: '/sys/kernel/tracing', type: 'DirectoryOrCreate' } }] }),
  };
}

export function daemonSetManifest(o: DaemonSetSpec): V1DaemonSet {
  const labels = sessionLabels(o.session);
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {
      name: o.name, namespace: o.namespace, labels,
      annotations: {
        [HEARTBEAT_ANNOTATION]: o.heartbeat.at.toISOString(),
        [HEARTBEAT_INTERVAL_ANNOTATION]: String(o.heartbeat.intervalMs / 1000),
        [STARTED_BY_ANNOTATION]: o.heartbeat.startedBy,
      },
    },
    spec: {
      selector: { matchLabels: { [SESSION_LABEL]: o.session, 'app.kubernetes.io/name': 'tapscope-helper' } },
      template: { metadata: { labels }, spec: podSpec(o) },
    },
  };
}

/** A JSON Patch that refreshes a session's heartbeat. */
export function heartbeatPatch(at: Date): Array<{ op: 'add'; path: string; value: string }> {
  return [{ op: 'add', path: `/metadata/annotations/${pointer(HEARTBEAT_ANNOTATION)}`, value: at.toISOString() }];
}

/** The pod a DaemonSet would create, for a dry-run admission check. */
export function dryRunPod(o: DaemonSetSpec): V1Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${o.name}-admission-check`, namespace: o.namespace, labels: sessionLabels(o.session) }, spec: podSpec(o) };
}
