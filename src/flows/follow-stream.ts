// "Follow stream", as in Wireshark: one flow's payload in the order it crossed, client and server turns apart.
// The capture files are read again, every packet with its flow id (readWithFlowIds, as the pcapng export reads
// them), so the flow's packets are found without an index. TCP retransmissions
// are left out (a segment before the direction's next expected byte). When the flow's TLS hooks captured its
// plaintext, the decrypted records are the stream (Wireshark's "Follow TLS stream"); else the wire's payload.
// When both ends are hooked, each direction is taken from the end that recorded it first, as the analyzer does:
// the client's write and the server's read carry the same bytes. A connection that switched to TLS in place
// (STARTTLS, a proxy's CONNECT, a database's TLS request, a PROXY protocol header) shows its plain prelude from the wire first.
import { parseExportedPdu, recordWritten, tlsAttrsOf } from '../pcapng/exported-pdu.js';
import { LINKTYPE_WIRESHARK_UPPER_PDU } from '../pcapng/types.js';
import type { Flow } from '../model/flow.js';
import { decodePacket, PROTO_TCP } from './decode.js';
import type { FlowStream, StreamChunk } from '../api/contract.js';
import { readWithFlowIds, type CaptureFile } from './load.js';
import { normalizeIp } from './node-meta.js';
import { tlsStartInPlace } from '../dissect/starttls.js';

export const FOLLOW_LIMIT = 256 * 1024;

interface Piece { dir: 'c2s' | 's2c'; ts: number; data: Buffer; beforeTls?: true }

/** bytes of each direction's first wire payload read for where TLS began (the analyzer's dissection limit) */
const PRELUDE_LOOK = 64 * 1024;

/** The wire pieces before TLS began in place, cut where it began; none when the flow did not switch in place. */
function preludeOf(wire: Piece[]): Piece[] {
  const first = (dir: 'c2s' | 's2c'): Buffer => {
    const parts: Buffer[] = [];
    let n = 0;
    for (const p of wire) {
      if (p.dir !== dir || n >= PRELUDE_LOOK) continue;
      parts.push(p.data);
      n += p.data.length;
    }
    return Buffer.concat(parts, n);
  };
  const at = tlsStartInPlace(first('c2s'), first('s2c'));
  if (!at) return [];
  const left = { c2s: at.client, s2c: at.server };
  const out: Piece[] = [];
  for (const p of wire) {
    const n = Math.min(left[p.dir], p.data.length);
    if (n === 0) continue;
    left[p.dir] -= n;
    out.push({ dir: p.dir, ts: p.ts, data: p.data.subarray(0, n), beforeTls: true });
  }
  return out;
}

export async function followStream(files: CaptureFile[], flow: Flow, limit = FOLLOW_LIMIT): Promise<FlowStream> {
  const wire: Piece[] = [];
  const decrypted: Piece[] = [];
  // per direction: the next TCP sequence number expected (retransmissions end before it)
  const next = { c2s: -1, s2c: -1 };
  // per direction: which end's records it is taken from (the first to record it)
  const feeder: { c2s?: boolean; s2c?: boolean } = {};
  const isClient = (ip: string, port: number): boolean => port === flow.src.port && ip === flow.src.ip;
  await readWithFlowIds(files, (b, id) => {
    if (id !== flow.id || (b.type !== 'epb' && b.type !== 'spb')) return;
    if (b.iface.linkType === LINKTYPE_WIRESHARK_UPPER_PDU) {
      const pdu = parseExportedPdu(b.data);
      if (!pdu || !pdu.src || pdu.payload.length === 0) return;
      // (a dual-stack socket's record names an IPv4 end as ::ffff:a.b.c.d)
      const dir = isClient(normalizeIp(pdu.src.ip), pdu.src.port) ? 'c2s' : 's2c';
      // the recording end is the client when it wrote a c2s record or read an s2c one
      const byClient = recordWritten(tlsAttrsOf(b.comments), b.flags) === (dir === 'c2s');
      if ((feeder[dir] ??= byClient) !== byClient) return;
      decrypted.push({ dir, ts: b.tsMs, data: Buffer.from(pdu.payload) });
      return;
    }
    const d = decodePacket(b.iface.linkType, b.data);
    if (!d || d.payloadEnd <= d.payloadStart) return;
    const dir = isClient(d.src, d.srcPort) ? 'c2s' : 's2c';
    let data = d.payload;
    if (d.proto === PROTO_TCP) {
      const expected = next[dir];
      const skip = expected < 0 ? 0 : seqDiff(expected, d.seq);
      if (skip >= data.length) return;
      if (skip > 0) data = data.subarray(skip);
      next[dir] = (d.seq + skip + data.length) >>> 0;
    }
    wire.push({ dir, ts: b.tsMs, data: Buffer.from(data) });
  });
  const pieces = decrypted.length > 0 ? [...preludeOf(wire), ...decrypted] : wire;
  const chunks: StreamChunk[] = [];
  let bytes = 0;
  let truncated = false;
  let cur: { dir: 'c2s' | 's2c'; ts: number; parts: Buffer[]; beforeTls?: true } | null = null;
  const close = (): void => {
    if (cur) chunks.push({ dir: cur.dir, ts: cur.ts, hex: Buffer.concat(cur.parts).toString('hex'), ...(cur.beforeTls ? { beforeTls: true as const } : {}) });
    cur = null;
  };
  for (const p of pieces) {
    let data = p.data;
    if (bytes + data.length > limit) {
      data = data.subarray(0, limit - bytes);
      truncated = true;
    }
    if (data.length > 0) {
      if (!cur || cur.dir !== p.dir || cur.beforeTls !== p.beforeTls) {
        close();
        cur = { dir: p.dir, ts: p.ts, parts: [], ...(p.beforeTls ? { beforeTls: true as const } : {}) };
      }
      cur.parts.push(data);
      bytes += data.length;
    }
    if (truncated) break;
  }
  close();
  return { chunks, source: pieces.length === 0 ? null : decrypted.length > 0 ? 'decrypted' : 'wire', bytes, truncated };
}

/** How far `seq` lies before `expected`, in sequence space (0 when it is at or after it). */
function seqDiff(expected: number, seq: number): number {
  const d = (expected - seq) | 0;
  return d > 0 ? d : 0;
}
