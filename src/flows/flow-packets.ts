// A flow's packets, one row each, as Wireshark's packet list shows a TCP stream (`tcp.stream eq N`): time,
// direction, flags, relative sequence and acknowledgment numbers, payload length, and what is notable about a
// segment (a retransmission, a keep-alive, bytes missing before it). The TLS hooks' decrypted records of the flow
// are rows too, where they came. The capture files are read again, every block with its flow id
// (readWithFlowIds, as Follow stream and the pcapng export read them).
import type { FlowPacketRow, FlowPackets } from '../api/contract.js';
import type { Flow } from '../model/flow.js';
import { parseExportedPdu, tlsAttrsOf } from '../pcapng/exported-pdu.js';
import { LINKTYPE_WIRESHARK_UPPER_PDU } from '../pcapng/types.js';
import { decodePacket, PROTO_TCP, TCP_ACK, TCP_FIN, TCP_SYN } from './decode.js';
import { readWithFlowIds, type CaptureFile } from './load.js';
import { normalizeIp } from './node-meta.js';
import { outOfOrder } from './tcp-order.js';

/** Rows given at most (the flow's packets are counted on past it). */
export const PACKETS_LIMIT = 10_000;

/** TCP flag names by bit, lowest first: Wireshark's order in its Info column ("FIN, PSH, ACK"). */
const FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];

/** "SYN, ACK" for the flags byte; "<None>" for none, as Wireshark writes it. */
export function tcpFlagsText(flags: number): string {
  const names: string[] = [];
  for (let i = 0; i < 8; i++) if (flags & (1 << i)) names.push(FLAG_NAMES[i]!);
  return names.length > 0 ? names.join(', ') : '<None>';
}

/**
 * One direction of a TCP flow: its numbers are told relative to base; next: the byte after the highest seen;
 * whole: the byte after those seen without a hole before them; acked: the highest acknowledgment the other direction
 * sent for it (-1: none yet).
 */
interface SeqState { base: number; next: number; whole: number; acked: number; /** when `next` last moved on (ms) */ nextAt: number }

export async function flowPackets(files: CaptureFile[], flow: Flow, limit = PACKETS_LIMIT): Promise<FlowPackets> {
  const rows: FlowPacketRow[] = [];
  let total = 0;
  let records = 0;
  const tcp: Record<'c2s' | 's2c', SeqState | null> = { c2s: null, s2c: null };
  const isClient = (ip: string, port: number): boolean => port === flow.src.port && ip === flow.src.ip;
  await readWithFlowIds(files, (b, id, file) => {
    if (id !== flow.id || (b.type !== 'epb' && b.type !== 'spb')) return;
    total++;
    const at = { file: files.indexOf(file), offset: b.offset };
    if (b.iface.linkType === LINKTYPE_WIRESHARK_UPPER_PDU) {
      records++;
      if (rows.length >= limit) return;
      const pdu = parseExportedPdu(b.data);
      if (!pdu?.src) return;
      const a = tlsAttrsOf(b.comments);
      const who = [a?.comm, a?.pid ? `pid ${a.pid}` : undefined].filter(Boolean).join(' ');
      rows.push({
        n: total, ts: b.tsMs, dir: isClient(normalizeIp(pdu.src.ip), pdu.src.port) ? 'c2s' : 's2c', kind: 'record',
        len: pdu.payload.length, payload: pdu.payload.length, flags: null, seq: null, ack: null,
        info: `decrypted${a?.fn ? ` by ${a.fn}` : ''}${a?.lib ? ` (${a.lib})` : ''}${who ? `, ${who}` : ''}`, ...at,
      });
      return;
    }
    const d = decodePacket(b.iface.linkType, b.data);
    if (!d) return;
    // (a fragment after a datagram's first names no ports: its direction is its addresses', as Wireshark lists it "Fragmented
    // IP protocol")
    const later = d.fragment && !d.firstFragment;
    const dir = (later ? d.src === flow.src.ip && (d.dst !== flow.src.ip || flow.src.port === flow.dst.port) : isClient(d.src, d.srcPort)) ? 'c2s' : 's2c';
    let row: FlowPacketRow = {
      n: total, ts: b.tsMs, dir, kind: 'packet', len: b.origLen, payload: later ? d.fragEnd - d.fragStart : d.payloadLen, flags: null, seq: null, ack: null,
      info: later ? `IP fragment (offset ${d.fragOffset}${d.moreFragments ? '' : ', last'})` : d.fragment ? 'IP fragment (first)' : '', ...at,
    };
    if (d.proto === PROTO_TCP && !later) row = { ...row, ...tcpRow(tcp, dir, d.seq, d.ack, d.tcpFlags, d.payloadLen, b.tsMs) };
    // (past the limit the sequence state still follows the flow, for nothing but the count)
    if (rows.length < limit) rows.push(row);
  });
  return { rows, total, records, truncated: total > rows.length };
}

/**
 * A TCP segment's flags, relative numbers and notes; updates the sequence state. The notes are a subset of
 * Wireshark's TCP analysis, with its names: a retransmission (spurious when the peer had acknowledged the bytes
 * already), a keep-alive, a previous segment not captured, an ACKed unseen segment.
 */
function tcpRow(
  tcp: Record<'c2s' | 's2c', SeqState | null>, dir: 'c2s' | 's2c', seq: number, ack: number, flags: number, len: number, ts: number,
): Pick<FlowPacketRow, 'flags' | 'seq' | 'ack' | 'info'> {
  const syn = (flags & TCP_SYN) !== 0;
  const fin = (flags & TCP_FIN) !== 0;
  const hasAck = (flags & TCP_ACK) !== 0;
  // why these bases: Wireshark's. Numbers count from the direction's initial sequence number (its SYN's); without
  // the SYN, from one before the first byte seen (so that byte is 1); the other direction's, from one before what
  // this one acknowledges, until it is seen itself
  let st = tcp[dir];
  // (a SYN sent again, its number the same, is a retransmission of the first: the direction's state stays)
  if (syn && !(st && st.base === seq)) st = tcp[dir] = { base: seq, next: seq, whole: seq, acked: st?.acked ?? -1, nextAt: ts };
  else st ??= tcp[dir] = { base: (seq - 1) >>> 0, next: seq, whole: seq, acked: -1, nextAt: ts };
  const peer = dir === 'c2s' ? 's2c' : 'c2s';
  const other = tcp[peer] ?? (hasAck ? (tcp[peer] = { base: (ack - 1) >>> 0, next: ack, whole: ack, acked: -1, nextAt: ts }) : null);
  const notes: string[] = [];
  const span = len + (syn ? 1 : 0) + (fin ? 1 : 0);
  const ahead = (seq - st.next) | 0;
  if (ahead > 0 && (len > 0 || fin)) notes.push('previous segment not captured');
  else if (ahead === -1 && len <= 1 && !syn && !fin) notes.push('keep-alive');
  else if (ahead < 0 && span > 0) {
    const spurious = st.acked >= 0 && ((seq + span - st.acked) | 0) <= 0;
    notes.push(spurious ? 'spurious retransmission' : !syn && outOfOrder(ahead, span, ts - st.nextAt) ? 'out-of-order' : 'retransmission');
  }
  if (((seq + span - st.next) | 0) > 0) {
    st.next = (seq + span) >>> 0;
    st.nextAt = ts;
  }
  if (((seq - st.whole) | 0) <= 0 && ((seq + span - st.whole) | 0) > 0) st.whole = (seq + span) >>> 0;
  if (hasAck && other) {
    // (once said, the acknowledged bytes count as seen: the next acknowledgment beyond them is said again)
    if (((ack - other.whole) | 0) > 0) {
      notes.push('ACKed unseen segment');
      other.whole = ack;
    }
    if (other.acked < 0 || ((ack - other.acked) | 0) > 0) other.acked = ack;
  }
  return {
    flags: tcpFlagsText(flags),
    seq: (seq - st.base) >>> 0,
    ack: hasAck && other ? (ack - other.base) >>> 0 : 0,
    info: notes.join(', '),
  };
}
