// HTTP/2 and HTTP/3 answers past the per-flow exchange cap (maxExchangesPerFlow, 200: details are kept for that many, a
// summary for up to 1,000) go to their own stream's request, as tshark pairs them. Streams answer in any order; the
// summaries past the cap were once completed in arrival order, so a long h2 or gRPC connection's statuses past 200 were
// given to the wrong requests. The captures (made by a reviewer's generator, checked against tshark 4.0.17) carry
// requests /s/N/ok (answered 200) and /s/N/missing (404), all answered in reverse order.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeCapture } from './core-packet-builder.js';
import { Analyzer } from '../../src/flows/analyzer.js';
import { parseBuffer } from '../../src/pcapng/reader.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'dissect');

function wrong(http: { path: string | null; status: number | null }[]): string[] {
  return http.filter((h) => h.status !== (h.path?.endsWith('/ok') ? 200 : 404)).map((h) => `${h.path} ${h.status}`);
}

describe('answers of streams past the exchange cap', () => {
  it('HTTP/2: each of 300 answers, in reverse order, goes to its own stream\'s request', () => {
    const [flow] = analyzeCapture(readFileSync(join(DIR, 'h2c-300-streams-reverse.pcap')), { end: true }).flows();
    expect(flow!.app).toBe('http2');
    expect(flow!.http.length).toBe(300);
    expect(wrong(flow!.http)).toEqual([]);
  });

  it('HTTP/3 (decrypted with its key log): each of 250 answers, in reverse order, goes to its own stream\'s request', () => {
    const a = new Analyzer();
    a.addKeyLog(readFileSync(join(DIR, 'h3-250-streams-reverse.keys'), 'utf8'), 'test');
    const feed = a.stream();
    for (const b of parseBuffer(readFileSync(join(DIR, 'h3-250-streams-reverse.pcap')))) feed(b);
    a.endCapture();
    const [flow] = a.flows();
    expect(flow!.http.length).toBe(250);
    expect(wrong(flow!.http)).toEqual([]);
  });

  it('with a cap of 10 exchanges, the same: 290 answers paired by their streams past it', () => {
    const a = analyzeCapture(readFileSync(join(DIR, 'h2c-300-streams-reverse.pcap')), { end: true, options: { maxExchangesPerFlow: 10 } });
    const [flow] = a.flows();
    expect(flow!.http.length).toBe(300);
    expect(wrong(flow!.http)).toEqual([]);
  });
});
