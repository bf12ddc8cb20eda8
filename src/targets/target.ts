// The CaptureTarget contract: one interface for "this machine", SSH hosts and Kubernetes clusters.
// A target deploys the helper on its nodes, streams each node's pcapng back, and cleans up after itself.
import type { Readable } from 'node:stream';
import type { TapscopeErrorCode } from '../errors.js';
import type { PodRef } from '../model/flow.js';

export type CaptureMode = 'auto' | 'ebpf' | 'afpacket';
export type TargetKind = 'local' | 'ssh' | 'k8s';

/** A pod a Kubernetes capture can be narrowed to (CaptureOptions.pods). */
export interface PodChoice {
  namespace: string;
  name: string;
  /** null while it is not scheduled */
  node: string | null;
  ips: string[];
  /** on its node's network: it cannot be captured apart from its node */
  hostNetwork: boolean;
  phase: string | null;
}

export interface NodeInfo {
  name: string;
  ready: boolean;
  kernel: string | null;
  arch: string | null;
  address?: string | null;
  /**
   * What this build's helper for the node's architecture captures (set by the core's listNodes): eBPF mode where
   * the kernel allows it (else AF_PACKET), or nothing (no helper for the architecture)
   */
  capture?: 'ebpf' | null;
  /** What stands in the way of capturing on the node (its preflight), when asked for (listNodes' `check`) */
  check?: NodeCheck;
}

export interface CaptureOptions {
  mode: CaptureMode;
  /** Interface names; empty means all. */
  ifaces: string[];
  /** Seconds; undefined runs until stop(). */
  duration?: number;
  snaplen?: number;
  /**
   * A capture filter in tcpdump syntax, applied by the helper on each node to the IP packets and to the decrypted
   * records (by their connection); undefined or empty captures everything.
   */
  filter?: string;
  /**
   * Pods to capture (`NAMESPACE/NAME`; Kubernetes targets only): the capture runs on their nodes (not `nodes`) and
   * keeps their addresses' traffic, narrowed by `filter` when given.
   */
  pods?: string[];
  /** Node names to capture on; undefined means every node of the target. */
  nodes?: string[];
  /**
   * TLS key logs (SSLKEYLOGFILE paths) on each node, followed there by the helper while it captures: the lines clients
   * append come in the stream as decryption secrets blocks, and the connections they are for are decrypted. At most
   * MAX_NODE_KEY_LOGS.
   */
  keyLogs?: string[];
}

/** How many key logs a helper follows on its node (its MAX_KEYLOGS, native/util.h). */
export const MAX_NODE_KEY_LOGS = 8;

export type NodePhase =
  | 'preflight' | 'deploying' | 'scheduled' | 'pulling' | 'running' | 'streaming'
  | 'reconnecting' | 'stopping' | 'stopped' | 'failed';

export interface NodeStatus {
  node: string;
  phase: NodePhase;
  message?: string;
  error?: { code: TapscopeErrorCode; message: string };
}

export interface PreflightReport {
  node: string;
  arch: string | null;
  kernel: string | null;
  btf: boolean | null;
  privileged: 'root' | 'sudo' | 'sudo-password' | 'none';
  helperVersion: string | null;
  problems: string[];
}

/** A node's preflight beside its NodeInfo. */
export type NodeCheck = Pick<PreflightReport, 'btf' | 'privileged' | 'helperVersion' | 'problems'>;

/** A gap in a node's stream (connection lost and resumed): the session marks it. */
export interface StreamGap {
  node: string;
  fromMs: number;
  toMs: number | null;
  reason: string;
}

export interface CaptureHandlers {
  onStatus(status: NodeStatus): void;
  /** Called once per (re)started helper stream of a node: the helper's pcapng bytes. */
  onStream(node: string, stream: Readable): void;
  onGap?(gap: StreamGap): void;
}

export interface CaptureHandle {
  /** Stops every node's helper and removes everything deployed. Idempotent. */
  stop(): Promise<void>;
  /** Settles when every node has stopped (by stop(), duration or failure). */
  readonly done: Promise<void>;
  /** Human-readable notes for the session, e.g. "the SSH connection carrying the stream is excluded". */
  readonly notes: string[];
  /**
   * Kubernetes targets: the pod (or Service) that owns an IP, from a live watch of the cluster, for
   * `flow.pod`. Returns null for unknown IPs and for host-network pods (their IP is the node's).
   * A key `container:<id>` names a container id (as the helper reads it from a process's cgroup):
   * that resolves host-network pods too.
   */
  enrich?: (key: string) => PodRef | null;
}

/**
 * What CaptureTarget.start() rejects with when its signal was aborted: the start was cancelled and cleaned up.
 * `removed` says what was removed (for one line to a person), `left` what may still be there (empty when none).
 * why not a TapscopeError: being cancelled is not a failure of the target; the caller asked for it.
 */
export class StartCancelled extends Error {
  constructor(readonly target: string, readonly removed: string, readonly left: string[]) {
    super(`The capture start on ${target} was cancelled: ${removed}${left.length ? `; may be left: ${left.join(', ')}` : ''}.`);
    this.name = 'AbortError';
  }
}

export function isStartCancelled(e: unknown): e is StartCancelled {
  return e instanceof StartCancelled;
}

/** Rejects when `signal` aborts (never settles without one); for racing a start's steps against a cancel. */
export function abortedPromise(signal: AbortSignal | undefined): Promise<never> {
  const p = new Promise<never>((_, reject) => {
    if (!signal) return;
    const fire = () => reject(signal.reason ?? new Error('aborted'));
    if (signal.aborted) fire();
    else signal.addEventListener('abort', fire, { once: true });
  });
  // (a rejection nobody races for is no unhandled rejection)
  p.catch(() => undefined);
  return p;
}

export interface ShellChannel {
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  onData(cb: (data: Buffer) => void): () => void;
  onExit(cb: (code: number | null) => void): () => void;
  close(): void;
}

/** Questions a target may need a person to answer (host keys, passwords, passphrases). */
export interface Prompt {
  kind: 'host-key' | 'password' | 'passphrase' | 'keyboard-interactive' | 'sudo-password';
  message: string;
  fingerprint?: string;
  echo?: boolean;
}
export type PromptFn = (prompt: Prompt) => Promise<string | boolean | null>;

export interface CaptureTarget {
  readonly kind: TargetKind;
  /** The URI the user gave: local, ssh://user@host:port, k8s://context[/node] */
  readonly uri: string;
  listNodes(): Promise<NodeInfo[]>;
  /** The pods a capture can be narrowed to (Kubernetes targets). */
  listPods?(): Promise<PodChoice[]>;
  preflight(nodes?: string[]): Promise<PreflightReport[]>;
  /**
   * Deploys and starts the capture. Aborting `signal` before it resolves cancels the start: what was deployed so far is
   * removed (as stop() would), and it rejects with StartCancelled saying what was removed and what may be left.
   */
  start(options: CaptureOptions, handlers: CaptureHandlers, signal?: AbortSignal): Promise<CaptureHandle>;
  openShell(node: string): Promise<ShellChannel>;
  /** Releases connections; does not stop running captures started through start(). */
  close(): Promise<void>;
}
