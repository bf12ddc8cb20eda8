// How a TCP connection went, in words: the app's flow table and detail and the CLI's flows table say it the same way.
import type { TcpState, TcpSummary } from './flow.js';

/** The states of a connection that failed or was cut: the ones the flow tables mark. */
export const FAILED_TCP_STATES: readonly TcpState[] = ['refused', 'no-reply', 'reset'];

/** True for a connection that failed or was cut (refused, no reply, reset). */
export function failedConnection(tcp: TcpSummary | null | undefined): tcp is TcpSummary {
  return !!tcp && FAILED_TCP_STATES.includes(tcp.state);
}

/** The state in a few words and in a sentence. */
export function tcpStateText(tcp: TcpSummary): { short: string; long: string } {
  switch (tcp.state) {
    case 'no-reply': return { short: 'no reply', long: 'the client\'s SYN got no answer' };
    case 'refused': return { short: 'refused', long: 'the server answered the SYN with a RST: nothing listens on the port, or a firewall refuses' };
    case 'established': return { short: 'established', long: 'handshake completed; not closed yet' };
    case 'closing': return { short: 'closing', long: 'one side sent its FIN' };
    case 'closed': return { short: 'closed', long: 'both sides sent their FIN' };
    case 'reset': return { short: `reset by ${tcp.resetBy ?? 'a side'}`, long: `the ${tcp.resetBy ?? 'connection'} sent a RST, aborting the connection` };
    case 'midstream': return { short: 'midstream', long: 'the capture began after the handshake' };
  }
}
