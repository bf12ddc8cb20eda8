// An HPACK bomb in a capture (h2c): a header block of 16 KB that names a 4000-byte table entry 16,000 times, 64 MB of
// headers. The flow's detail and the HAR export keep 64 KiB of them and say how many more there were; before, each
// such request was spelled out whole in the detail and the HAR.
import { describe, it, expect } from 'vitest';
import { Analyzer } from '../../src/flows/analyzer.js';
import { har } from '../../src/export/index.js';
import { H2_PREFACE, HEADER_BYTES_CAP } from '../../src/dissect/http2.js';
import { parseBuffer } from '../../src/pcapng/index.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import { SETTINGS, addNew, frame, indexed } from './export-h2-frames.js';

describe('headers past 64 KiB (HTTP/2)', () => {
  const big = 'a'.repeat(4000);
  // (request: :method GET, :path /, :scheme http, x: big into the table, then the entry again and again; answer:
  // :status 200, the same)
  const request = Buffer.concat([H2_PREFACE, SETTINGS, frame(1, 0x5, 1, Buffer.concat([indexed(2), indexed(4), indexed(6), addNew('x', big), Buffer.alloc(16_000, 0xbe)]))]);
  const answer = Buffer.concat([SETTINGS, frame(1, 0x5, 1, Buffer.concat([indexed(8), addNew('y', big), Buffer.alloc(10, 0xbe)]))]);
  const b = new CaptureBuilder();
  tcpConversation(b, { ip: '10.202.59.1', port: 43000 }, { ip: '10.202.59.2', port: 80 }, [request, null], [null, answer]);
  const a = new Analyzer();
  const feed = a.stream();
  for (const blk of parseBuffer(b.build())) feed(blk);
  const f = a.flows()[0]!;

  it('the exchange keeps 64 KiB of the request\'s headers and counts the rest; the answer, within it, is whole', () => {
    expect(f.http).toEqual([{ method: 'GET', host: null, path: '/', status: 200 }]);
    const e = a.exchangesOf(f.id)[0]!;
    expect(e.requestHeaders.reduce((n, [k, v]) => n + k.length + v.length, 0)).toBeLessThanOrEqual(HEADER_BYTES_CAP);
    expect(e.requestHeaders.length + e.requestHeadersDropped!).toBe(4 + 16_000);
    expect(e.responseHeaders).toHaveLength(1 + 1 + 10);
    expect(e.responseHeadersDropped).toBeUndefined();
  });

  it('the HAR lists the headers kept and says how many more there were', () => {
    const entries = (har([f], (id) => a.exchangesOf(id), false) as { log: { entries: { request: { headers: unknown[]; comment?: string }; response: { comment?: string } }[] } }).log.entries;
    expect(entries).toHaveLength(1);
    const e = a.exchangesOf(f.id)[0]!;
    expect(entries[0]!.request.headers).toHaveLength(e.requestHeaders.length);
    expect(entries[0]!.request.comment).toBe(`${e.requestHeadersDropped} more headers not kept: past 64 KiB of headers (HPACK/QPACK can name one table entry again and again)`);
    expect(entries[0]!.response.comment).toBeUndefined();
    expect(JSON.stringify(entries).length).toBeLessThan(2 * HEADER_BYTES_CAP + 20_000);
  });
});
