// What a detail tab reads from a session's capture for one flow (Follow stream, the packet list): read when the tab
// shows a flow it has not read, or on Reload, with the flow's packets and exchanges at the time, so that a live
// capture's tab can say what came since instead of reading the whole capture again by itself. Read again, once, when
// the session's files change under it (a live capture's end merges its nodes' files: the packet rows' file and offset
// name places in the files that were).
export interface Read<T> {
  flowId: string;
  /** the session's files when it was read (sessionFiles()) */
  files: string;
  packets: number;
  exchanges: number;
  value: T | null;
  error: string | null;
}

export class FlowRead<T> {
  current = $state<Read<T> | null>(null);

  constructor(private readonly call: (sessionId: string, flowId: string) => Promise<T>) {}

  /** Reads the flow's content from the capture (again); what was read before for it stays shown until then. */
  read(sessionId: string, flow: { id: string; packets: number; http: unknown[] }, files: string): void {
    const asked = { flowId: flow.id, files, packets: flow.packets, exchanges: flow.http.length };
    this.current = { ...asked, value: this.current?.flowId === flow.id ? this.current.value : null, error: null };
    this.call(sessionId, flow.id).then(
      (value) => { if (this.current?.flowId === flow.id) this.current = { ...asked, value, error: null }; },
      (e: unknown) => { if (this.current?.flowId === flow.id) this.current = { ...asked, value: null, error: (e as Error).message ?? String(e) }; },
    );
  }

  /** Whether it holds (or is reading) this flow's content, read from these files. */
  has(flowId: string, files: string): boolean {
    return this.current?.flowId === flowId && this.current.files === files;
  }

  /** In a live capture: the flow's packets since it was read, when packets or exchanges came since (else null). */
  since(live: boolean, flow: { id: string; packets: number; http: unknown[] }): { packets: number } | null {
    const c = this.current;
    return live && c?.flowId === flow.id && (flow.packets !== c.packets || flow.http.length !== c.exchanges)
      ? { packets: Math.max(0, flow.packets - c.packets) } : null;
  }
}

/** Names a session's capture files as they are: a live capture's (its nodes' own files) and the saved one's differ. */
export function sessionFiles(s: { id: string; live: boolean; file: string }): string {
  return `${s.id} ${s.live ? 'live' : 'saved'} ${s.file}`;
}
