// The API server's clock, for judging how old a session's marks are. The machine that wrote a heartbeat, the one that
// reads it and the server can each be minutes apart (a laptop's clock, a VM's after suspend): comparing the writer's
// timestamp with the reader's clock let a cleaner whose clock ran ahead delete running sessions. The server stamps
// every change of a field in its own clock (the managedFields entry of the field's manager), and gives its clock with
// every response (the Date header), so both ends of the comparison are the server's.
import type { V1ObjectMeta } from '@kubernetes/client-node';

/** The server's clock at a response (its Date header, whole seconds); null when it sent none or one not a date. */
export function serverNow(headers: Record<string, string> | undefined): number | null {
  const d = Date.parse(headers?.date ?? '');
  return Number.isNaN(d) ? null : d;
}

/**
 * When annotation `key` of `o` last changed, in the server's clock (whole seconds): the time of the managedFields entry
 * that owns it (the server moves a field to the manager that changes it, and stamps that entry). Null when no entry
 * owns it: a server that keeps no managedFields, or an object made otherwise.
 */
export function annotationChangedAt(o: { metadata?: V1ObjectMeta }, key: string): number | null {
  let at: number | null = null;
  for (const e of o.metadata?.managedFields ?? []) {
    const owned = (e.fieldsV1 as Record<string, Record<string, Record<string, unknown>>> | undefined)?.['f:metadata']?.['f:annotations']?.[`f:${key}`];
    const t = e.time ? new Date(e.time).getTime() : NaN;
    if (owned !== undefined && !Number.isNaN(t) && (at === null || t > at)) at = t;
  }
  return at;
}
