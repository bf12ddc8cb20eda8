// A short run of test/lib/core-fuzz.ts (test/bench/core-fuzz.ts runs it for minutes): mutated captures, a real eBPF
// capture's among them (hooks' records, connection records, processes), through every reader of the core.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FUZZ_INPUTS, fuzzCore } from '../lib/core-fuzz.js';

const dir = mkdtempSync(join(tmpdir(), 'tsc-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the core on mutated captures (fuzz smoke)', () => {
  it('gives TapscopeErrors or flows, never another exception, and exports that read back', async () => {
    const r = await fuzzCore({ inputs: FUZZ_INPUTS, seed: 20261128, dir, iterations: 80 });
    expect(r.failures.map((f) => `${f.step} (${f.input}): ${f.error}`)).toEqual([]);
    expect(r.iterations).toBe(80);
    // (most mutants still read: the fuzz reaches the analysis, not only the parser's errors)
    expect(r.outcomes.get('ok') ?? 0).toBeGreaterThan(40);
  }, 120_000);
});
