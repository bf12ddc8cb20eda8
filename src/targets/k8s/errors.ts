// Turns Kubernetes client failures into TapscopeErrors a person can act on: unreachable API server,
// rejected credentials, RBAC denials naming the verb and resource, and Pod Security admission refusals
// naming the namespace label that would allow the capture pods.
import { TapscopeError } from '../../errors.js';

interface StatusBody { message?: string; reason?: string; code?: number; details?: { kind?: string; group?: string; name?: string; causes?: Array<{ reason?: string }> } }

function statusOf(e: unknown): { code: number | null; body: StatusBody | null } {
  const any = e as { code?: unknown; body?: unknown };
  const code = typeof any?.code === 'number' ? any.code : null;
  let body: StatusBody | null = null;
  if (typeof any?.body === 'string') {
    try {
      body = JSON.parse(any.body) as StatusBody;
    } catch {
      body = { message: any.body };
    }
  } else if (any?.body && typeof any.body === 'object') body = any.body as StatusBody;
  return { code, body };
}

export const PSA_LABEL = 'pod-security.kubernetes.io/enforce';

export function psaAdvice(namespace: string): string {
  return `Capture pods need host namespaces and capabilities: allow them in namespace "${namespace}" with the label ${PSA_LABEL}=privileged ` +
    `(kubectl label namespace ${namespace} ${PSA_LABEL}=privileged --overwrite), or choose a namespace that has it.`;
}

/** Parses RBAC's "User "u" cannot VERB resource "R" in API group "G" in the namespace "N"" wording. */
export function describeForbidden(message: string): string | null {
  const m = /cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)"| at the cluster scope)?/.exec(message);
  if (!m) return null;
  const [, verb, resource, group, ns] = m;
  return `cannot ${verb} ${resource}${group ? `.${group}` : ''} ${ns ? `in namespace ${ns}` : 'at cluster scope'}`;
}

/** A message in one line (no raw newline in the middle of an error), without its trailing period. */
export function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim().replace(/\.$/, '');
}

export function k8sError(e: unknown, what: string, ctx: { context: string; namespace?: string; user?: string | null }): TapscopeError {
  if (e instanceof TapscopeError) return e;
  const { code, body } = statusOf(e);
  const msg = body?.message ?? (e instanceof Error ? e.message : String(e));
  if (code === null) {
    const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
    const detail = oneLine(cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e)));
    return new TapscopeError('E_TARGET_UNREACHABLE',
      `Cannot reach the API server of context "${ctx.context}" while trying to ${what}: ${detail}. Check the cluster address, VPN or proxy-url.`, { cause: detail });
  }
  if (code === 401) {
    return new TapscopeError('E_AUTH_FAILED',
      `The API server of context "${ctx.context}" rejected the credentials${ctx.user ? ` of user "${ctx.user}"` : ''} (401 Unauthorized) while trying to ${what}. Refresh the token or log in again (e.g. your cloud CLI's get-credentials).`);
  }
  if (code === 403 && /violates PodSecurity/.test(msg)) {
    return new TapscopeError('E_K8S_ADMISSION', `Pod Security admission refused the capture pods: ${msg}. ${psaAdvice(ctx.namespace ?? 'tapscope')}`, { status: body });
  }
  // (the NamespaceLifecycle admission plugin's refusal is no missing permission: the namespace is being deleted)
  if (code === 403 && body?.details?.causes?.some((c) => c.reason === 'NamespaceTerminating')) {
    return new TapscopeError('E_TARGET_INVALID',
      `Could not ${what}: the namespace is being deleted (\`tapscope clean\`, a session that made it ending, or kubectl). Try again once it is gone, or choose another namespace with --namespace. (API server said: ${msg})`, { status: body });
  }
  if (code === 403) {
    const d = describeForbidden(msg);
    return new TapscopeError('E_K8S_FORBIDDEN',
      `Not allowed to ${what}: ${d ?? msg}. Ask a cluster admin for that permission (RBAC), or use a context that has it. (API server said: ${msg})`, { status: body });
  }
  return new TapscopeError(code === 404 ? 'E_TARGET_INVALID' : 'E_INTERNAL', `Could not ${what} (HTTP ${code}): ${msg}`, { status: body });
}
