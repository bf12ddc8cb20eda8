// Analyzes capture files (one per node stream, or one multi-section file) into an Analyzer, tolerating a
// truncated tail (a capture that was killed mid-write) with a note instead of an error.
import { readBlocks } from '../pcapng/reader.js';
import { Analyzer, type AnalyzerOptions } from './analyzer.js';
import { gapNote } from './node-meta.js';

export interface CaptureFile {
  path: string;
  /** Node name for every section of the file; omitted: taken from the file's own records. */
  node?: string;
}

export interface LoadedCapture {
  analyzer: Analyzer;
  notes: string[];
  bytes: number;
}

export async function analyzeFiles(files: CaptureFile[], options: AnalyzerOptions = {}): Promise<LoadedCapture> {
  const analyzer = new Analyzer(options);
  const notes: string[] = [];
  let bytes = 0;
  for (const f of files) {
    const sink = analyzer.sinks(f.node);
    const res = await readBlocks(f.path, sink.block, { tolerateTruncatedTail: true, onPacket: sink.packet, onRecord: sink.record });
    bytes += res.bytes;
    if (res.truncated) {
      notes.push(`${f.path} ends inside a block at offset ${res.truncated.offset} (the capture was interrupted); the last ${res.truncated.pending} bytes were ignored and every complete block before them was read`);
    }
  }
  for (const [node, meta] of analyzer.nodes) for (const g of meta.gaps) notes.push(gapNote(node, g));
  return { analyzer, notes, bytes };
}
