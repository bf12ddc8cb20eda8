// How a TCP segment behind the highest sequence number seen is told apart, as Wireshark's TCP analysis tells it: shared
// by the flow's count (Analyzer, tcp.retransmissions) and its packet list (flow-packets.ts), which must agree.

/**
 * Wireshark's out-of-order segment: one behind the highest sequence number seen (`ahead` < 0, `span` long) that came
 * soon after the segment that set it (`since` ms: within 3 ms, Wireshark's default threshold when it has no RTT) and
 * does not end where it does. A later one, or one ending there, is a retransmission (as is a SYN sent again, whenever).
 */
export function outOfOrder(ahead: number, span: number, since: number): boolean {
  return since < OUT_OF_ORDER_MS && ahead + span !== 0;
}

const OUT_OF_ORDER_MS = 3;
