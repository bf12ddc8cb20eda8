// `tapscope flows FILE` on several threads. Every thread reads the whole capture (the cheap part) but keeps
// only the flows of its partition (Analyzer's `partition` option: a hash both directions of a flow share, so
// no flow is split and nothing needs merging but the order), resolves and renders them; the rendered rows
// then interleave by each flow's origin into the one-thread creation order. The output is the one-thread
// output exactly (test/unit/core-flows-fast.test.ts compares them): when partitions would differ from one thread
// (a flow id or a TLS session two of them share), the work starts over on one thread.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { TapscopeError, isTapscopeError, type TapscopeErrorCode } from '../errors.js';
import type { CaptureFile, DamagedFile } from '../flows/load.js';
import type { Flow } from '../model/flow.js';

export interface FlowsJob {
  files: CaptureFile[];
  /** JSON lines (true) or table cells (false) */
  json: boolean;
  filter: string | null;
  /** key log files (--keylog), read by each partition */
  keylogs?: string[];
}

export interface RenderedFlows {
  /** in creation order: JSON lines, or table rows */
  rows: string[] | string[][];
  /** flows before the filter */
  total: number;
  packets: number;
  notes: string[];
  /** files damaged in the middle, read up to the damage */
  damaged: DamagedFile[];
}

export interface Part {
  /** the JSON lines, each ended by a newline (one string crosses threads as one copy, not a clone per line) */
  text: string;
  /** where each JSON line ends in text (its newline) */
  ends: Uint32Array;
  /** the table rows (table output) */
  table: string[][];
  total: number;
  packets: number;
  notes: string[];
  damaged: DamagedFile[];
  origins: Float64Array;
  /** the first 13 hex digits (52 bits) of every flow's id, filtered or not: see idsCollide */
  idKeys: Float64Array;
  /** the randoms of the partition's TCP ClientHellos (53 bits each): see sessionsCross */
  sessionKeys: Float64Array;
  /** a flow's other leg (DNAT's) is another partition's (Analyzer.crossesPartitions) */
  crossed: boolean;
}

interface WorkerJob {
  tapscopeFlowsPartition: { job: FlowsJob; index: number; count: number };
}

type WorkerReply = { part: Part } | { error: { code: TapscopeErrorCode; message: string; details?: Record<string, unknown> } };

/** Analyzes and renders one partition: the flows the filter keeps, with their origins. */
export async function renderPartition(job: FlowsJob, index: number, count: number): Promise<Part> {
  const { analyzeFiles } = await import('../flows/load.js');
  const { flowRow } = await import('./flows-output.js');
  const { compileFilter } = await import('../filter/index.js');
  const pred = job.filter && job.filter.trim() ? compileFilter(job.filter) : null;
  const { readKeyLogs } = await import('../dissect/tls-keylog.js');
  const keyLog = readKeyLogs(job.keylogs ?? []);
  const { analyzer, notes, damaged } = await analyzeFiles(job.files, { partition: { index, count }, details: false, keyLog });
  const all = analyzer.flows();
  const allOrigins = analyzer.arrivalOrigins();
  const origins = new Float64Array(all.length);
  const idKeys = new Float64Array(all.length);
  const kept: Flow[] = [];
  for (let i = 0; i < all.length; i++) {
    const f = all[i]!;
    idKeys[i] = parseInt(f.id.slice(0, 13), 16);
    if (pred && !pred(f)) continue;
    origins[kept.length] = allOrigins[i]!;
    kept.push(f);
  }
  const text = job.json ? await jsonText(kept) : '';
  return {
    text, ends: lineEnds(text, job.json ? kept.length : 0), table: job.json ? [] : kept.map(flowRow), origins: origins.slice(0, kept.length), idKeys,
    sessionKeys: analyzer.sessionKeys(), crossed: analyzer.crossesPartitions(),
    total: all.length, packets: analyzer.counters.packets, notes, damaged,
  };
}

/** The flows' JSON lines as one string, from bytes written a chunk at a time (no string per flow). */
async function jsonText(flows: Flow[]): Promise<string> {
  const { FlowJsonLines } = await import('../model/flow-json.js');
  const lines = new FlowJsonLines();
  const parts: string[] = [];
  await lines.addAll(flows, (chunk) => {
    parts.push(chunk.toString('utf8'));
    lines.reuse(chunk);
  });
  return parts.join('');
}

/** Where each of `count` lines ends: JSON text holds no newline but the one after each line. */
function lineEnds(text: string, count: number): Uint32Array {
  const ends = new Uint32Array(count);
  let at = -1;
  for (let i = 0; i < count; i++) ends[i] = at = text.indexOf('\n', at + 1);
  return ends;
}

/**
 * The worker: this module. Run from the TypeScript sources (tests, `node --import tsx`), a worker does not
 * inherit tsx's loader, so it registers it first (tsx's ESM API, resolved from here) and then imports this file.
 */
function startWorker(data: WorkerJob): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(fileURLToPath(self), { workerData: data });
  const api = createRequire(self).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
  const boot = `import(${JSON.stringify(pathToFileURL(api).href)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}

function runWorker(job: FlowsJob, index: number, count: number, started: Worker[]): Promise<Part> {
  const w = startWorker({ tapscopeFlowsPartition: { job, index, count } });
  started.push(w);
  return new Promise<Part>((res, rej) => {
    w.once('message', (m: WorkerReply) => {
      if ('part' in m) res(m.part);
      else rej(new TapscopeError(m.error.code, m.error.message, m.error.details));
    });
    w.once('error', rej);
    w.once('exit', (code) => rej(new TapscopeError('E_INTERNAL', `flows worker ${index} exited (code ${code}) without a result`)));
  });
}

function row(p: Part, i: number): string | string[] {
  return p.table.length > 0 ? p.table[i]! : p.text.slice(i > 0 ? p.ends[i - 1]! + 1 : 0, p.ends[i]);
}

/** Interleaves the partitions' rows by origin: the creation order of a one-thread analysis. */
function mergeParts(parts: Part[]): RenderedFlows {
  const rows: (string | string[])[] = [];
  const at = parts.map(() => 0);
  for (;;) {
    let best = -1;
    for (let p = 0; p < parts.length; p++) {
      if (at[p]! < parts[p]!.origins.length && (best < 0 || parts[p]!.origins[at[p]!]! < parts[best]!.origins[at[best]!]!)) best = p;
    }
    if (best < 0) break;
    rows.push(row(parts[best]!, at[best]!));
    at[best]!++;
  }
  return {
    rows: rows as string[] | string[][],
    total: parts.reduce((n, p) => n + p.total, 0),
    packets: parts.reduce((n, p) => n + p.packets, 0),
    // why: every thread read the same files and saw the same truncation
    notes: parts[0]!.notes,
    damaged: parts[0]!.damaged,
  };
}

/**
 * True when two partitions may hold the same flow id. One analysis gives a flow whose id is taken the next id
 * in a chain (Analyzer.addFlow); partitions only see their own ids. Equal inputs (same tuple) share a
 * partition, so this takes a 64-bit hash collision between different tuples, but then the threads' ids would
 * differ from one thread's: the caller starts over on one thread.
 */
export function idsCollide(parts: Part[]): boolean {
  const keys = new Float64Array(parts.reduce((n, p) => n + p.idKeys.length, 0));
  let at = 0;
  for (const p of parts) {
    keys.set(p.idKeys, at);
    at += p.idKeys.length;
  }
  keys.sort();
  for (let i = 1; i < keys.length; i++) if (keys[i] === keys[i - 1]) return true;
  return false;
}

/**
 * True when two partitions saw a ClientHello with the same random, or one linked a flow to a leg of another's.
 * One analysis links two connections that carried one TLS session (NAT's legs, a relay's: Analyzer.linkSession;
 * DNAT's by its conn record: Analyzer.dnatOwner) and each takes the other's evidence; in two partitions neither
 * sees the other, so their verdicts would differ from one thread's: the caller starts over on one thread. (Keys
 * are 53 bits of 256: a chance match between two sessions only costs that start over.)
 */
export function sessionsCross(parts: Part[]): boolean {
  if (parts.some((p) => p.crossed)) return true;
  const owner = new Map<number, number>();
  for (let p = 0; p < parts.length; p++) {
    for (const k of parts[p]!.sessionKeys) {
      const seen = owner.get(k);
      if (seen !== undefined && seen !== p) return true;
      owner.set(k, p);
    }
  }
  return false;
}

/** Analyzes and renders on `threads` threads (this one and threads - 1 workers). */
export async function flowsOnThreads(job: FlowsJob, threads: number): Promise<RenderedFlows> {
  const workers: Worker[] = [];
  try {
    const others = Array.from({ length: threads - 1 }, (_, i) => runWorker(job, i + 1, threads, workers));
    const parts = await Promise.all([renderPartition(job, 0, threads), ...others]);
    return idsCollide(parts) || sessionsCross(parts) ? mergeParts([await renderPartition(job, 0, 1)]) : mergeParts(parts);
  } finally {
    // why: after a failure the other threads' work is moot; finished workers have exited already
    for (const w of workers) void w.terminate();
  }
}

async function workerMain(w: WorkerJob['tapscopeFlowsPartition']): Promise<void> {
  try {
    const part = await renderPartition(w.job, w.index, w.count);
    parentPort!.postMessage({ part } satisfies WorkerReply, [part.origins.buffer, part.idKeys.buffer, part.ends.buffer, part.sessionKeys.buffer] as ArrayBuffer[]);
  } catch (e) {
    const err = isTapscopeError(e) ? e : new TapscopeError('E_INTERNAL', e instanceof Error ? (e.stack ?? e.message) : String(e));
    parentPort!.postMessage({ error: { code: err.code, message: err.message, details: err.details } } satisfies WorkerReply);
  }
}

if (!isMainThread && (workerData as Partial<WorkerJob> | null)?.tapscopeFlowsPartition) {
  void workerMain((workerData as WorkerJob).tapscopeFlowsPartition);
}
