// Smoke run of the flows benchmark on a small generated capture: both tools run, and tapscope finds exactly
// the TCP conversations tshark finds. (The full run is `npm run bench`; it prints ratios, never gates.)
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFlowsBench } from '../bench/flows-bench.js';

const dir = mkdtempSync(join(tmpdir(), 'tsc-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('flows benchmark (smoke size)', () => {
  it('runs tapscope flows and tshark conv,tcp on the same capture and agrees on the TCP conversations', () => {
    const prev = process.env.BENCH_FROM_SOURCE;
    process.env.BENCH_FROM_SOURCE = '1';
    try {
      const r = runFlowsBench(6, { dir, lighter: true });
      expect(r.tapscope.code).toBe(0);
      expect(r.tshark.code).toBe(0);
      expect(r.capture.tcpFlows).toBeGreaterThan(100);
      expect(r.tapscopeTcpFlows).toBe(r.capture.tcpFlows);
      expect(r.tsharkConversations).toBe(r.capture.tcpFlows);
      expect(r.tapscope.rssMb).toBeGreaterThan(0);
      expect(r.tshark.wallS).toBeGreaterThan(0);
      expect(r.lighter!.capture.flows).toBe(r.capture.flows);
    } finally {
      if (prev === undefined) delete process.env.BENCH_FROM_SOURCE;
      else process.env.BENCH_FROM_SOURCE = prev;
    }
  });
});
