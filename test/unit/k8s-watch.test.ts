// keepWatching (src/targets/k8s/watch.ts) against a small HTTP server that ends the first watch and holds the next
// one open: a stop that comes while the watch is being opened again must close that new watch too, and nothing it
// streams may reach the session.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { keepWatching } from '../../src/targets/k8s/watch.js';

let server: Server | null = null;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
});

async function until<T>(what: string, f: () => T | undefined, ms = 5000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    const v = f();
    if (v) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('keepWatching', () => {
  it('closes a watch that was being opened again when it is stopped, and passes on nothing from it', async () => {
    const watches: Array<{ req: IncomingMessage; res: ServerResponse; url: string; closed: boolean }> = [];
    server = createServer((req, res) => {
      const w = { req, res, url: req.url ?? '', closed: false };
      res.on('close', () => (w.closed = true));
      watches.push(w);
      // the first watch the server ends at once (as at its timeout); the next one it holds before answering (a slow link)
      if (watches.length === 1) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end();
      }
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
    });
    const seen: string[] = [];
    const unwatch = await keepWatching<{ metadata: { name: string } }>(kc, '/api/v1/nodes', { fieldSelector: 'metadata.name=n1' }, '42', (type, o) => seen.push(`${type} ${o.metadata.name}`));
    const reopened = await until('the watch opened again', () => watches[1]);
    expect(watches[0]!.url).toBe('/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dn1&resourceVersion=42');
    // (opened again at the current state: the first version may have been compacted away)
    expect(reopened.url).toBe('/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dn1');
    unwatch();
    reopened.res.writeHead(200, { 'Content-Type': 'application/json' });
    reopened.res.write(`${JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'n1' } } })}\n`);
    await until('the re-opened watch closed by the client', () => reopened.closed, 3000);
    expect(seen).toEqual([]);
    // and it is not opened a third time
    await new Promise((r) => setTimeout(r, 800));
    expect(watches).toHaveLength(2);
  });
});
