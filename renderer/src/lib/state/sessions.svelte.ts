// Sessions: the list, the session being looked at, live counters per node, and export progress.
import type { NodeCounters, SessionSummary } from '../../../../src/api/contract.js';
import type { NodeStatus } from '../../../../src/targets/target.js';
import { getApi } from '../api.js';
import { ui } from './ui.svelte.js';

export interface LiveCounters {
  nodes: NodeCounters[];
  flows: number;
}

export class SessionsState {
  list = $state<SessionSummary[]>([]);
  currentId = $state<string | null>(null);
  counters = $state<Record<string, LiveCounters>>({});
  nodeStatus = $state<Record<string, Record<string, NodeStatus>>>({});
  exportProgress = $state<Record<string, { done: number; total: number }>>({});
  /** the last export's file, and the filter that narrowed it (null: the whole session) */
  lastExport = $state<{ path: string; bytes: number; format: string; filter: string | null } | null>(null);
  current = $derived(this.list.find((s) => s.id === this.currentId) ?? null);
  sorted = $derived([...this.list].sort((a, b) => b.createdAt - a.createdAt));
  /** Totals of the current session's live counters (drops summed over nodes). */
  currentTotals = $derived.by(() => {
    const c = this.currentId ? this.counters[this.currentId] : undefined;
    if (!c) return null;
    return c.nodes.reduce(
      (t, n) => ({ packets: t.packets + n.packets, bytes: t.bytes + n.bytes, drops: t.drops + n.drops, flows: c.flows }),
      { packets: 0, bytes: 0, drops: 0, flows: c.flows },
    );
  });

  upsert(s: SessionSummary): void {
    const i = this.list.findIndex((x) => x.id === s.id);
    if (i === -1) this.list = [...this.list, s];
    else this.list[i] = s;
  }

  remove(id: string): void {
    this.list = this.list.filter((s) => s.id !== id);
    if (this.currentId === id) this.currentId = null;
  }

  setCounters(sessionId: string, c: LiveCounters): void {
    this.counters[sessionId] = c;
  }

  setNodeStatus(sessionId: string, status: NodeStatus): void {
    const byNode = this.nodeStatus[sessionId] ?? {};
    byNode[status.node] = status;
    this.nodeStatus[sessionId] = { ...byNode };
  }

  async refresh(): Promise<void> {
    try {
      this.list = await getApi().listSessions();
    } catch (e) {
      ui.error(e);
    }
  }

  open(id: string): Promise<SessionSummary | null> {
    return this.makeCurrent(() => getApi().openSession({ sessionId: id }));
  }

  openFile(path: string): Promise<SessionSummary | null> {
    return this.makeCurrent(() => getApi().openFile({ path }));
  }

  /**
   * Opens a session (by id or from a file) and makes it the current one; errors become notices, and so do the
   * session's losses (a capture damaged or cut short, a stream lost and resumed), as Wireshark tells on opening a
   * damaged file: the flows shown are then not all the capture held.
   */
  private async makeCurrent(opening: () => Promise<SessionSummary>): Promise<SessionSummary | null> {
    try {
      const s = await opening();
      this.upsert(s);
      this.currentId = s.id;
      if (s.losses.length > 0) ui.notify('warn', `${s.name}: ${s.losses.join(' · ')}`);
      return s;
    } catch (e) {
      ui.error(e);
      return null;
    }
  }

  async rename(id: string, name: string): Promise<void> {
    try {
      this.upsert(await getApi().renameSession({ sessionId: id, name }));
    } catch (e) {
      ui.error(e);
    }
  }

  async delete(id: string): Promise<void> {
    try {
      await getApi().deleteSession({ sessionId: id });
      this.remove(id);
    } catch (e) {
      ui.error(e);
    }
  }

  async stop(id: string): Promise<void> {
    try {
      this.upsert(await getApi().stopCapture({ sessionId: id }));
    } catch (e) {
      ui.error(e);
    }
  }

  /**
   * Opens the session in Wireshark on this machine (a live one keeps growing there until the capture stops), or with a
   * filter the flows it accepts (one flow: `id == "..."`).
   */
  async openInWireshark(id: string, filter?: string): Promise<void> {
    try {
      const r = await getApi().openInWireshark(filter ? { sessionId: id, filter } : { sessionId: id });
      ui.notify('info', r.live ? 'Opened in Wireshark: it shows the capture from its first packet and follows it until it stops' : 'Opened in Wireshark');
    } catch (e) {
      ui.error(e);
    } finally {
      // (a saved session or a filter goes through an export, whose progress events show until it is done)
      delete this.exportProgress[id];
    }
  }

  /**
   * Adds a TLS key log file (SSLKEYLOGFILE lines) to a saved session, analyzed again with it: its connections with
   * secrets are decrypted. `path` is on the machine the core runs on (an upload's, in web mode).
   */
  async addKeyLog(id: string, path: string): Promise<boolean> {
    try {
      const r = await getApi().addKeyLog({ sessionId: id, path });
      this.upsert(r.session);
      ui.notify('info', r.session.live
        ? `Key log followed: connections are decrypted as their secrets are written (it has secrets for ${r.secrets} so far; the earlier connections are decrypted when the capture stops)`
        : `Key log added: ${r.decrypted} TLS ${r.decrypted === 1 ? 'connection' : 'connections'} decrypted (it has secrets for ${r.secrets})`);
      return true;
    } catch (e) {
      ui.error(e);
      return false;
    }
  }

  async export(id: string, format: 'pcapng' | 'har' | 'json', filter?: string): Promise<{ path: string; bytes: number } | null> {
    this.exportProgress[id] = { done: 0, total: 1 };
    try {
      const r = await getApi().exportSession(filter ? { sessionId: id, format, filter } : { sessionId: id, format });
      this.lastExport = { ...r, format, filter: filter ?? null };
      ui.notify('info', `Exported ${format.toUpperCase()}${filter ? ` of the flows matching ${filter}` : ''} to ${r.path}`);
      return r;
    } catch (e) {
      ui.error(e);
      return null;
    } finally {
      delete this.exportProgress[id];
    }
  }
}

export const sessions = new SessionsState();
