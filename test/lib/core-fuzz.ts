// Mutated captures through the whole core, as a session and the CLI read them: analysis (with and without details),
// the flows' JSON lines, the per-library breakdown, the three exports, Follow stream and the packet list. Bad input
// must give a TapscopeError or nothing at all; any other exception, an export the reader cannot read back or JSON
// that does not parse is a failure. Mostly packet contents are changed (their headers, payloads, the hooks' records),
// sometimes any byte (block framing, options, comments). Seeded, so a failure replays. The suite runs a short smoke
// (test/unit/core-fuzz-smoke.test.ts); test/bench/core-fuzz.ts runs it for minutes.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeFiles } from '../../src/flows/load.js';
import { FlowJsonLines } from '../../src/model/flow-json.js';
import { libraryBreakdown } from '../../src/flows/libraries.js';
import { exportCapture } from '../../src/export/index.js';
import { followStream } from '../../src/flows/follow-stream.js';
import { flowPackets } from '../../src/flows/flow-packets.js';
import { isTapscopeError } from '../../src/errors.js';
import { parseBuffer } from '../../src/pcapng/reader.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
/**
 * The captures the fuzz starts from. ebpf-lo-hooks.pcapng is the helper's eBPF capture of loopback (Nov 2026): curl
 * over HTTP/2 and HTTP/1.1 to a Node HTTPS server, plain HTTP, gnutls-cli and Python, with the hooks' records.
 */
export const FUZZ_INPUTS = ['pcapng/ebpf-lo-hooks.pcapng', 'pcapng/loopback-mix.pcapng', 'pcapng/dtls-loopback.pcap', 'dissect/clienthellos.pcap']
  .map((p) => join(FIX, p));

export interface FuzzFailure {
  /** what was being done: analyze, json, libraries, export har, follow, ... */
  step: string;
  input: string;
  error: string;
  /** the mutated capture */
  capture: Buffer;
}

export interface FuzzResult {
  iterations: number;
  /** distinct failures (by step and the error's first lines) */
  failures: FuzzFailure[];
  /** how the iterations ended: 'ok', or a TapscopeError's code and the step that gave it; with counts */
  outcomes: Map<string, number>;
}

/** xorshift32: small, seeded, good enough to scatter mutations */
function rng(seed: number): (n: number) => number {
  let x = seed || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Where each packet's data lies in a capture file ([offset, length]); none when it does not parse. */
function packetRegions(buf: Buffer): [number, number][] {
  const out: [number, number][] = [];
  try {
    for (const b of parseBuffer(buf)) {
      // (a packet's data is a view of the file's bytes, where they lie whole)
      if (b.type === 'epb' && b.data.buffer === buf.buffer) out.push([b.data.byteOffset - buf.byteOffset, b.data.length]);
    }
  } catch {
    // (an input that does not parse is mutated anywhere)
  }
  return out;
}

/** One mutated capture through every reader; throws what is not a TapscopeError (step.at says where). */
async function exercise(path: string, dir: string, step: { at: string }): Promise<void> {
  for (const details of [false, true]) {
    step.at = `analyze (details ${details})`;
    const { analyzer } = await analyzeFiles([{ path }], { details });
    const flows = analyzer.flows();
    step.at = 'json';
    const lines = new FlowJsonLines();
    await lines.addAll(flows, (chunk) => {
      for (const l of chunk.toString('utf8').split('\n')) if (l) JSON.parse(l);
      lines.reuse(chunk);
    });
    step.at = 'libraries';
    libraryBreakdown(flows);
    if (!details) continue;
    for (const format of ['har', 'json', 'pcapng'] as const) {
      step.at = `export ${format}`;
      const out = join(dir, `fuzz-export.${format}`);
      await exportCapture([{ path }], analyzer, { format, out });
      const written = readFileSync(out);
      if (format === 'pcapng') parseBuffer(written);
      else if (format === 'har') JSON.parse(written.toString('utf8'));
      else for (const l of written.toString('utf8').split('\n')) if (l) JSON.parse(l);
    }
    for (const f of flows.slice(0, 6)) {
      step.at = `follow ${f.transport} ${f.app}`;
      await followStream([{ path }], f);
      step.at = `packets ${f.transport} ${f.app}`;
      await flowPackets([{ path }], f);
    }
  }
}

/**
 * Mutates the `inputs` (capture files) at random, `iterations` times or for `seconds`, whichever ends first, and
 * feeds each mutant to the core (its file written in `dir`).
 */
export async function fuzzCore(opts: { inputs: string[]; seed: number; dir: string; iterations?: number; seconds?: number }): Promise<FuzzResult> {
  const rnd = rng(opts.seed);
  const sources = opts.inputs.map((p) => {
    const buf = readFileSync(p);
    return { path: p, buf, regions: packetRegions(buf) };
  });
  const until = opts.seconds === undefined ? Infinity : Date.now() + opts.seconds * 1000;
  const max = opts.iterations ?? Infinity;
  const failures: FuzzFailure[] = [];
  const outcomes = new Map<string, number>();
  const seen = new Set<string>();
  const path = join(opts.dir, 'fuzz-input.pcapng');
  let i = 0;
  for (; i < max && Date.now() < until; i++) {
    const src = sources[rnd(sources.length)]!;
    const b = Buffer.from(src.buf);
    for (let m = 1 + rnd(12); m > 0; m--) {
      if (src.regions.length > 0 && rnd(10) < 9) {
        const [at, len] = src.regions[rnd(src.regions.length)]!;
        if (len > 0) b[at + rnd(len)] = rnd(4) === 0 ? 0xff : rnd(256);
      } else {
        b[rnd(b.length)] = rnd(256);
      }
    }
    writeFileSync(path, b);
    const step = { at: '' };
    let outcome = 'ok';
    try {
      await exercise(path, opts.dir, step);
    } catch (e) {
      if (isTapscopeError(e)) {
        outcome = `${e.code} (${step.at.split(' ')[0]})`;
      } else {
        outcome = 'failure';
        const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
        const key = `${step.at.split(' ')[0]} ${error.split('\n').slice(0, 3).join(' ')}`;
        if (!seen.has(key)) {
          seen.add(key);
          failures.push({ step: step.at, input: src.path, error, capture: b });
        }
      }
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  return { iterations: i, failures, outcomes };
}
