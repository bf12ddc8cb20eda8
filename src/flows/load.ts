// Analyzes capture files (one per node stream, or one multi-section file) into an Analyzer, tolerating a
// truncated tail (a capture that was killed mid-write) with a note instead of an error.
import { TapscopeError } from '../errors.js';
import { readBlocks } from '../pcapng/reader.js';
import type { PcapngBlock } from '../pcapng/types.js';
import { Analyzer, type AnalyzerOptions } from './analyzer.js';
import { cutStreamNote, gapNote, lossNote } from './node-meta.js';

export interface CaptureFile {
  path: string;
  /** Node name for every section of the file; omitted: taken from the file's own records. */
  node?: string;
}

/** A file whose reading stopped at a malformed block (see damageError). */
export interface DamagedFile {
  path: string;
  /** the malformed block's offset */
  offset: number;
  /** what is wrong with it, ending "at offset N" */
  message: string;
  /** where the next section begins, where reading went on (the bytes between are skipped); absent: nothing after it was read */
  resumedAt?: number;
}

export interface LoadedCapture {
  analyzer: Analyzer;
  /** truncated tails and stream gaps: the capture is whole up to them */
  notes: string[];
  /** files damaged in the middle: analyzed up to the damage, and on from the next section after it if there is one */
  damaged: DamagedFile[];
  bytes: number;
}

export async function analyzeFiles(files: CaptureFile[], options: AnalyzerOptions = {}): Promise<LoadedCapture> {
  const analyzer = new Analyzer(options);
  const notes: string[] = [];
  const damaged: DamagedFile[] = [];
  let bytes = 0;
  for (const f of files) {
    const sink = analyzer.sinks(f.node);
    // why tolerate damage: a block damaged in the middle of a capture (a disk error, a bad copy) must not take
    // the flows before it with it; they are analyzed, as tshark shows the packets before it, and the damage is
    // reported (the other files, other nodes' streams, are read whole)
    const res = await readBlocks(f.path, sink.block, { tolerateTruncatedTail: true, tolerateDamage: true, onPacket: sink.packet, onRecord: sink.record });
    bytes += res.bytes;
    for (const d of res.skipped) damaged.push({ path: f.path, offset: Number(d.error.details?.offset), message: d.error.message, resumedAt: d.resumedAt });
    if (res.damaged) damaged.push({ path: f.path, offset: Number(res.damaged.details?.offset ?? res.bytes), message: res.damaged.message });
    if (res.truncated) {
      notes.push(`${f.path} ends inside a block at offset ${res.truncated.offset} (the capture was interrupted); the last ${res.truncated.pending} bytes were ignored and every complete block before them was read`);
    }
  }
  // (a capture whose helper followed key logs on its node: the connections still waiting for secrets at its end give up,
  // each saying why)
  if (analyzer.followsKeyLog) analyzer.stopFollowingKeyLog();
  // (the HTTP messages still in flight when the capture ended: taken as they are, see endCapture)
  analyzer.endCapture();
  for (const [node, meta] of analyzer.nodes) {
    for (const g of meta.gaps) notes.push(gapNote(node, g));
    // (the capture's losses, as its helper counted them: every command that reads the file says them, not only the capture)
    meta.endStream();
    for (const startNs of meta.cutStreams) notes.push(cutStreamNote(node, startNs));
    const loss = lossNote(node, meta);
    if (loss) notes.push(loss);
  }
  notes.push(...analyzer.keyLogProblems);
  return { analyzer, notes, damaged, bytes };
}

/** How a damaged file was read, for a session's notes and the CLI's error. */
export function damageNote(d: DamagedFile): string {
  if (d.resumedAt !== undefined) {
    return `${d.path} is damaged: ${d.message}; the ${d.resumedAt - d.offset} bytes from there to the section that begins at offset ${d.resumedAt} were skipped, and reading went on there`;
  }
  return `${d.path} is damaged: ${d.message}; it was read up to that block, nothing from it on`;
}

/** The CLI's error for damaged files, given after what was read from them was printed or exported. */
export function damageError(damaged: DamagedFile[]): TapscopeError | null {
  if (damaged.length === 0) return null;
  return new TapscopeError('E_PCAPNG_MALFORMED', damaged.map(damageNote).join('; '), { offset: damaged[0]!.offset, path: damaged[0]!.path });
}

/**
 * Reads capture files again, handing each block with the flow id the analysis gives its packet or record (null for
 * other blocks): a second Analyzer, since ids are derived from the packets, so no per-packet index is kept. `onFile`
 * is told before each file is read. A damaged block or a cut tail ends a file as in analyzeFiles. The pcapng
 * export and Follow stream read a session this way.
 *
 * A record the analysis keeps for a flow still to come (a DTLS server's, read before its connection's first
 * datagram: the helper writes packets up to 50 ms after the records of the same moment) is handed on when its flow
 * comes, with that flow's id, just before the block that made the flow; one no flow came for, at the end of its file
 * with null.
 */
export async function readWithFlowIds(
  files: CaptureFile[], onBlock: (b: PcapngBlock, flowId: string | null, file: CaptureFile) => void, onFile?: (file: CaptureFile) => void,
): Promise<void> {
  let matched: string | null = null;
  let kept = -1;
  // (the kept records' blocks, copies: a block's data is a view of the reader's buffer, read into again)
  const held = new Map<number, PcapngBlock>();
  const settled: [PcapngBlock, string | null][] = [];
  const tracker = new Analyzer({
    details: false,
    onPacket: (_b, id, k) => { matched = id; kept = k; },
    onRecordSettled: (k, id) => {
      const b = held.get(k);
      if (b === undefined) return;
      held.delete(k);
      settled.push([b, id]);
    },
  });
  for (const f of files) {
    onFile?.(f);
    const feed = tracker.stream(f.node);
    await readBlocks(f.path, (b: PcapngBlock) => {
      matched = null;
      kept = -1;
      feed(b);
      for (const [late, id] of settled.splice(0)) onBlock(late, id, f);
      if (kept >= 0 && b.type === 'epb') held.set(kept, { ...b, data: Buffer.from(b.data) });
      else onBlock(b, matched, f);
    }, { tolerateTruncatedTail: true, tolerateDamage: true });
    // (the records held for packets that did not come make their flows, as at the analysis's end)
    tracker.placeHeldRecords();
    for (const [late, id] of settled.splice(0)) onBlock(late, id, f);
    // (its interfaces are this file's section's: they go before the next file's)
    for (const b of held.values()) onBlock(b, null, f);
    held.clear();
  }
}
