// The Connect view's state: targets from the core, the chosen target's nodes, capture options, and the
// start sequence with per-node progress and failures.
import type { ApiCalls, TargetChoice } from '../../../../src/api/contract.js';
import type { CaptureFilterCheck } from '../../../../src/targets/capture-filter.js';
import type { CaptureMode, NodeInfo, PodChoice } from '../../../../src/targets/target.js';
import { getApi } from '../api.js';
import { sessions } from './sessions.svelte.js';
import { ui } from './ui.svelte.js';

/** A pod as the capture names it: `namespace/name`. */
export function podRef(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

export class ConnectState {
  targets = $state<TargetChoice[]>([]);
  targetsLoading = $state(false);
  selectedUri = $state<string | null>(null);
  nodes = $state<NodeInfo[]>([]);
  nodesLoading = $state(false);
  nodesError = $state<string | null>(null);
  chosenNodes = $state<string[]>([]);
  /** a Kubernetes target's pods, to capture only some of them */
  pods = $state<PodChoice[]>([]);
  podsError = $state<string | null>(null);
  /** `namespace/name` of the pods to capture (none: the chosen nodes' whole traffic) */
  chosenPods = $state<string[]>([]);
  mode = $state<CaptureMode>('auto');
  ifaces = $state('');
  /** tcpdump syntax, applied on the nodes; empty captures everything */
  captureFilter = $state('');
  /** this machine's helper's check of the capture filter, for the filter it was made for */
  captureFilterCheck = $state<{ filter: string; result: CaptureFilterCheck } | null>(null);
  private filterTimer: ReturnType<typeof setTimeout> | null = null;
  /** The check's complaint about the capture filter as it is now, or null. */
  captureFilterError = $derived(this.captureFilterCheck?.filter === this.captureFilter && this.captureFilterCheck.result.ok === false
    ? this.captureFilterCheck.result.message : null);
  /** TLS key logs on the nodes (absolute paths there, comma-separated), followed there by the helper */
  nodeKeyLogs = $state('');
  name = $state('');
  starting = $state(false);
  startError = $state<string | null>(null);
  /** The session the last Start created (its node progress shows under the button). */
  startedSessionId = $state<string | null>(null);
  selected = $derived(this.targets.find((t) => t.uri === this.selectedUri) ?? null);
  grouped = $derived({
    local: this.targets.filter((t) => t.kind === 'local'),
    ssh: this.targets.filter((t) => t.kind === 'ssh'),
    k8s: this.targets.filter((t) => t.kind === 'k8s'),
  });
  canStart = $derived(this.selectedUri !== null && !this.starting && this.captureFilterError === null
    && (this.nodes.length === 0 || this.chosenNodes.length > 0 || this.chosenPods.length > 0));

  async loadTargets(): Promise<void> {
    this.targetsLoading = true;
    try {
      this.targets = await getApi().listTargets();
      if (!this.selectedUri && this.targets[0]) await this.choose(this.targets[0].uri);
    } catch (e) {
      ui.error(e);
    } finally {
      this.targetsLoading = false;
    }
  }

  async choose(uri: string): Promise<void> {
    this.selectedUri = uri;
    this.nodes = [];
    this.chosenNodes = [];
    this.nodesError = null;
    this.nodesLoading = true;
    this.pods = [];
    this.chosenPods = [];
    this.podsError = null;
    if (uri.startsWith('k8s://')) void this.loadPods(uri);
    try {
      // (with their checks: the helper, root or sudo, BTF, RBAC — one connection for both)
      const nodes = await getApi().listNodes({ target: uri, check: true });
      if (this.selectedUri !== uri) return;
      this.nodes = nodes;
      // (a node this build has no helper for cannot be captured: not chosen, and its box is disabled)
      this.chosenNodes = nodes.filter((n) => n.ready && n.capture !== null).map((n) => n.name);
    } catch (e) {
      if (this.selectedUri === uri) this.nodesError = (e as Error).message;
    } finally {
      if (this.selectedUri === uri) this.nodesLoading = false;
    }
  }

  private async loadPods(uri: string): Promise<void> {
    try {
      const pods = await getApi().listPods({ target: uri });
      if (this.selectedUri === uri) this.pods = pods;
    } catch (e) {
      if (this.selectedUri === uri) this.podsError = (e as Error).message;
    }
  }

  /** A target typed by hand (ssh://user@host:port, k8s://context[/node]); kept in the list for this run. */
  async addTarget(uri: string): Promise<void> {
    const u = uri.trim();
    if (!u) return;
    if (!this.targets.some((t) => t.uri === u)) {
      const kind = u.startsWith('ssh://') ? 'ssh' : u.startsWith('k8s://') ? 'k8s' : 'local';
      this.targets = [...this.targets, { kind, uri: u, label: u.replace(/^(ssh|k8s):\/\//, ''), detail: 'added by hand' }];
    }
    await this.choose(u);
  }

  toggleNode(name: string): void {
    this.chosenNodes = this.chosenNodes.includes(name) ? this.chosenNodes.filter((n) => n !== name) : [...this.chosenNodes, name];
  }

  /** The target's pod named `namespace/name`, or undefined. */
  pod(ref: string): PodChoice | undefined {
    const r = ref.trim();
    return this.pods.find((x) => podRef(x) === r);
  }

  /** Adds a pod typed or picked as `namespace/name`; false when the target has no such pod, or it cannot be captured apart. */
  addPod(ref: string): boolean {
    const r = ref.trim();
    const p = this.pod(r);
    if (!p || !this.podCapturable(p)) return false;
    if (!this.chosenPods.includes(r)) this.chosenPods = [...this.chosenPods, r];
    return true;
  }

  removePod(ref: string): void {
    this.chosenPods = this.chosenPods.filter((p) => p !== ref);
  }

  /** A pod that runs on a node with an address of its own (hostNetwork pods share their node's). */
  podCapturable(p: PodChoice): boolean {
    return !p.hostNetwork && p.node !== null && p.ips.length > 0;
  }

  /** Checks the capture filter a moment after the last change, as it is typed. */
  captureFilterChanged(): void {
    if (this.filterTimer) clearTimeout(this.filterTimer);
    const filter = this.captureFilter;
    if (!filter.trim()) {
      this.captureFilterCheck = null;
      return;
    }
    this.filterTimer = setTimeout(() => {
      getApi().checkCaptureFilter({ filter }).then((result) => {
        if (this.captureFilter === filter) this.captureFilterCheck = { filter, result };
      }, () => undefined);
    }, 250);
  }

  /** The key log paths on the nodes, as given (separated by commas or new lines; a path may hold spaces). */
  parsedNodeKeyLogs(): string[] {
    return this.nodeKeyLogs.split(/[,\n]/).map((s) => s.trim()).filter((s) => s.length > 0);
  }

  parsedIfaces(): string[] {
    return this.ifaces.split(/[\s,]+/).filter((s) => s.length > 0);
  }

  /** What Start asks the core for, from the options as they are set. */
  captureRequest(target: string): Parameters<ApiCalls['startCapture']>[0] {
    return {
      target,
      mode: this.mode,
      ifaces: this.parsedIfaces(),
      // (pods: the capture runs on their nodes)
      ...(this.chosenPods.length > 0 ? { pods: [...this.chosenPods] } : this.nodes.length > 0 ? { nodes: [...this.chosenNodes] } : {}),
      ...(this.name.trim() ? { name: this.name.trim() } : {}),
      ...(this.captureFilter.trim() ? { captureFilter: this.captureFilter.trim() } : {}),
      ...(this.parsedNodeKeyLogs().length > 0 ? { nodeKeyLogs: this.parsedNodeKeyLogs() } : {}),
    };
  }

  async start(): Promise<string | null> {
    if (!this.selectedUri) return null;
    this.starting = true;
    this.startError = null;
    try {
      const s = await getApi().startCapture(this.captureRequest(this.selectedUri));
      sessions.upsert(s);
      sessions.currentId = s.id;
      this.startedSessionId = s.id;
      return s.id;
    } catch (e) {
      this.startError = (e as Error).message;
      return null;
    } finally {
      this.starting = false;
    }
  }
}

export const connect = new ConnectState();
