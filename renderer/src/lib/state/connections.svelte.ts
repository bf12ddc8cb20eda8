// Connections that failed or were cut in the session being looked at: how many TCP flows were refused, got no
// reply, or were reset (the filter language's tcp.state), as the core's analyzer keeps them (tcpStates), shown in
// the header, where a click lists them with the filter. Asked again as a live capture goes on, at most once a second.
import type { TcpState } from '../../../../src/model/flow.js';
import { getApi } from '../api.js';

export interface ConnProblem {
  state: Extract<TcpState, 'refused' | 'no-reply' | 'reset'>;
  /** the header's words */
  label: string;
  /** the filter that lists them */
  filter: string;
  title: string;
}

export const CONN_PROBLEMS: readonly ConnProblem[] = [
  { state: 'refused', label: 'refused', filter: 'tcp.state == "refused"', title: 'TCP connections refused: the SYN answered by a RST (nothing listens on the port, or a firewall refuses)' },
  { state: 'reset', label: 'reset', filter: 'tcp.state == "reset"', title: 'TCP connections aborted by a RST after the handshake' },
  { state: 'no-reply', label: 'no reply', filter: 'tcp.state == "no-reply"', title: 'TCP connections whose SYN got no answer' },
];

const EVERY_MS = 1000;

export class ConnectionsState {
  /** by state, for `sessionId`; null until counted */
  counts = $state<{ sessionId: string; by: Record<string, number> } | null>(null);
  private last = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private asked = 0;

  /** Counts them for the session (again), now or, in a live capture, at most once every EVERY_MS. */
  refresh(sessionId: string, live: boolean): void {
    if (this.counts && this.counts.sessionId !== sessionId) this.counts = null;
    const wait = live ? this.last + EVERY_MS - Date.now() : 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; void this.count(sessionId); }, Math.max(0, wait));
  }

  private async count(sessionId: string): Promise<void> {
    this.last = Date.now();
    const ask = ++this.asked;
    const by = await getApi().tcpStates({ sessionId }).catch(() => null);
    if (ask !== this.asked || !by) return;
    this.counts = { sessionId, by };
  }
}

export const connections = new ConnectionsState();
