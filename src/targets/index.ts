// Parses a target URI (local | ssh://[user@]host[:port] | k8s://CONTEXT[/NODE]) and builds its CaptureTarget.
// SSH and Kubernetes targets are loaded lazily: their dependencies (ssh2, client-node) cost start-up time.
import { TapscopeError } from '../errors.js';
import { createLocalTarget } from './local.js';
import type { CaptureTarget, PromptFn } from './target.js';

export interface TargetOptions {
  prompt?: PromptFn;
  acceptNewHostKey?: boolean;
  helperPath?: string;
  /** local only: run the helper in this network namespace (test/dev knob, see local.ts). */
  netns?: string | null;
  /** Kubernetes only: the pod image (for air-gapped mirrors), the namespace, kubeconfig path(s). */
  image?: string;
  namespace?: string;
  kubeconfig?: string;
}

export type ParsedTargetUri =
  | { kind: 'local' }
  | { kind: 'ssh'; user: string | null; host: string; port: number | null }
  | { kind: 'k8s'; context: string; node: string | null };

export function parseTargetUri(uri: string): ParsedTargetUri {
  const u = uri.trim();
  if (u === '' || u === 'local' || u === 'local://') return { kind: 'local' };
  let m = /^ssh:\/\/(?:([^@/\s]+)@)?(\[[0-9a-fA-F:.]+\]|[^:/@\s]+)(?::(\d{1,5}))?\/?$/.exec(u);
  if (m) {
    const port = m[3] !== undefined ? Number(m[3]) : null;
    if (port !== null && (port < 1 || port > 65535)) throw new TapscopeError('E_TARGET_INVALID', `port ${port} in '${uri}' is out of range (1-65535)`);
    return { kind: 'ssh', user: m[1] ?? null, host: (m[2] ?? '').replace(/^\[|\]$/g, ''), port };
  }
  m = /^k8s:\/\/([^/\s]+)(?:\/([^/\s]+))?\/?$/.exec(u);
  if (m) return { kind: 'k8s', context: decodeURIComponent(m[1] ?? ''), node: m[2] ? decodeURIComponent(m[2]) : null };
  throw new TapscopeError('E_TARGET_INVALID', `'${uri}' is not a target; use local, ssh://[user@]host[:port] or k8s://CONTEXT[/NODE]`);
}

type Factory = (uri: string, opts: TargetOptions) => CaptureTarget | Promise<CaptureTarget>;

async function loadFactory(spec: string, name: string, what: string): Promise<Factory> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (e) {
    throw new TapscopeError('E_TARGET_INVALID', `${what} targets are not available in this build (${(e as Error).message})`);
  }
  const f = mod[name];
  if (typeof f !== 'function') throw new TapscopeError('E_TARGET_INVALID', `${what} targets are not available in this build (${spec} has no ${name})`);
  return f as Factory;
}

export async function createTarget(uri: string, opts: TargetOptions = {}): Promise<CaptureTarget> {
  const parsed = parseTargetUri(uri);
  switch (parsed.kind) {
    case 'local':
      return createLocalTarget({ helperPath: opts.helperPath, netns: opts.netns, prompt: opts.prompt });
    case 'ssh': {
      // why: specifiers in variables keep this module loadable (and typecheckable) while a target is absent.
      const f = await loadFactory('./ssh.js', 'createSshTarget', 'SSH');
      return f(uri, opts);
    }
    case 'k8s': {
      const f = await loadFactory('./k8s/index.js', 'createK8sTarget', 'Kubernetes');
      return f(uri, opts);
    }
  }
}
