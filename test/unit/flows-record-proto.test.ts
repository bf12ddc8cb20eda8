// A decrypted record's protocol tag against its bytes. The helper tags a TLS object's records http2 once it saw the
// preface written; a server's next connection may get the same object's memory, so its HTTP/1.1 response came tagged
// http2 (seen with a Node HTTPS server, HTTP/2 for one curl and then HTTP/1.1 for the next, in the fixture's eBPF
// capture of loopback). The bytes decide: every exchange there has its response.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { analyzeFiles } from '../../src/flows/load.js';

const FIX = join(import.meta.dirname, '../fixtures/pcapng/ebpf-lo-hooks.pcapng');

describe('decrypted records whose protocol tag their bytes contradict', () => {
  it('an HTTP/1.1 response tagged http2 is read as HTTP/1.1', async () => {
    const { analyzer } = await analyzeFiles([{ path: FIX }]);
    const tls = analyzer.flows().filter((f) => f.tls && f.http.length > 0);
    // (curl over HTTP/2 and over HTTP/1.1, three of each, and Python over HTTP/1.1)
    expect(tls.map((f) => f.http[0]!.path).sort()).toEqual(['/h1/1', '/h1/2', '/h1/3', '/h2/1', '/h2/2', '/h2/3', '/py']);
    for (const f of tls) expect(f.http, f.http[0]!.path ?? f.id).toEqual([expect.objectContaining({ method: 'GET', status: 200 })]);
    const h1 = tls.find((f) => f.http[0]!.path === '/h1/2')!;
    expect(analyzer.exchangesOf(h1.id)[0]!.responseBody).toBe('hello /h1/2');
  });
});
