// Dev-only stand-in for the CoreService while src/service/ is being written: synthetic flows through
// the real filter language. Used for early UI iteration only; the UI tests run the real CoreService.
import { EventEmitter } from 'node:events';
import type { ApiCalls, ApiEventName, ApiEvents, FlowDetail, SessionSummary } from '../../src/api/contract.js';
import { TapscopeError } from '../../src/errors.js';
import { checkFilter, compileFilter } from '../../src/filter/index.js';
import { TLS_LIBRARIES, type Flow, type LibraryBreakdownRow } from '../../src/model/flow.js';

export function syntheticFlow(i: number, t0: number): Flow {
  const lib = TLS_LIBRARIES[i % 7] ?? 'openssl';
  const plaintext = i % 3 !== 0;
  const tls = i % 5 !== 4;
  return {
    id: `f${i}`,
    transport: 'tcp',
    src: { ip: `10.203.${(i >> 8) & 255}.${i & 255}`, port: 30000 + (i % 30000) },
    dst: { ip: '10.203.0.2', port: tls ? 443 : 80 },
    firstSeen: t0 + i * 3,
    lastSeen: t0 + i * 3 + 40,
    packets: 10 + (i % 50),
    bytes: 1000 + ((i * 7919) % 200000),
    process: { pid: 1000 + (i % 40), comm: ['curl', 'java', 'python3', 'node', 'gnutls-cli'][i % 5] ?? 'curl', exe: null },
    node: `node-${i % 3}`,
    pod: i % 4 === 0 ? { namespace: 'shop', name: `api-${i % 9}` } : null,
    app: tls ? 'tls' : 'http',
    tls: tls
      ? {
          sni: `svc-${i % 13}.example.test`, alpn: ['http/1.1'], version: 'TLS 1.3', cipher: 'TLS_AES_128_GCM_SHA256', ja3: null, ja3Hash: null, ja4: null,
          client: { library: lib, via: 'hook', confidence: 1, plaintext, reason: plaintext ? null : 'library not hookable' },
          server: null,
        }
      : null,
    http: [{ method: 'GET', host: `svc-${i % 13}.example.test`, path: `/api/items/${i}`, status: 200 }],
  };
}

export class DevService implements ApiCalls {
  private readonly events = new EventEmitter();
  private flows: Flow[];
  private session: SessionSummary;

  constructor(n = 5000) {
    const t0 = Date.now() - n * 3;
    this.flows = Array.from({ length: n }, (_, i) => syntheticFlow(i, t0));
    this.session = { id: 'dev', name: 'Synthetic session', target: 'local', mode: 'ebpf', modeReason: 'dev', createdAt: t0, endedAt: null, live: false, packets: n * 20, bytes: n * 5000, flows: n, drops: 3, nodes: ['node-0', 'node-1', 'node-2'], notes: [], file: '/tmp/dev.pcapng' };
  }
  on<E extends ApiEventName>(event: E, cb: (p: ApiEvents[E]) => void): () => void {
    const l = cb as (p: unknown) => void;
    this.events.on(event, l);
    return () => this.events.off(event, l);
  }
  async listTargets() { return [{ kind: 'local' as const, uri: 'local', label: 'This machine', detail: 'root' }, { kind: 'ssh' as const, uri: 'ssh://root@web-1', label: 'web-1' }]; }
  async listNodes() { return [{ name: 'vm', ready: true, kernel: '6.18.0', arch: 'x86_64', address: '127.0.0.1' }]; }
  async startCapture(): Promise<SessionSummary> { throw new TapscopeError('E_NOT_PERMITTED', 'dev service cannot capture'); }
  async stopCapture() { return this.session; }
  async listSessions() { return [this.session]; }
  async openSession() { return this.session; }
  async openFile() { return this.session; }
  async renameSession(r: { name: string }) { this.session = { ...this.session, name: r.name }; return this.session; }
  async deleteSession() {}
  private matching(filter?: string): Flow[] { return filter ? this.flows.filter(compileFilter(filter)) : this.flows; }
  async queryFlows(r: { filter?: string; offset: number; limit: number }) { const m = this.matching(r.filter); return { total: m.length, rows: m.slice(r.offset, r.offset + r.limit) }; }
  async flowDetail(r: { flowId: string }): Promise<FlowDetail> {
    const flow = this.flows.find((f) => f.id === r.flowId);
    if (!flow) throw new TapscopeError('E_USAGE', 'no such flow');
    return { flow, exchanges: [{ method: 'GET', host: flow.tls?.sni ?? null, path: flow.http[0]?.path ?? null, status: 200, requestHeaders: [['accept', 'application/json']], responseHeaders: [['content-type', 'application/json']], requestBody: null, responseBody: '{"ok":true,"items":[1,2,3]}', source: 'decrypted', startedAt: flow.firstSeen }], clientBytesHex: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n').toString('hex'), serverBytesHex: '' };
  }
  async libraries(r: { filter?: string }): Promise<LibraryBreakdownRow[]> {
    const by = new Map<string, LibraryBreakdownRow>();
    for (const f of this.matching(r.filter)) {
      const v = f.tls?.client;
      if (!v) continue;
      const row = by.get(v.library) ?? { library: v.library, side: 'client', flows: 0, bytes: 0, plaintextFlows: 0, reasons: {} };
      row.flows++; row.bytes += f.bytes; if (v.plaintext) row.plaintextFlows++; else if (v.reason && row.reasons) row.reasons[v.reason] = (row.reasons[v.reason] ?? 0) + 1;
      by.set(v.library, row);
    }
    return [...by.values()];
  }
  async checkFilter(r: { filter: string }) { return checkFilter(r.filter); }
  async exportSession(): Promise<{ path: string; bytes: number }> { throw new TapscopeError('E_EXPORT', 'dev service cannot export'); }
  async openShell(): Promise<{ shellId: string }> { throw new TapscopeError('E_TARGET_INVALID', 'dev service has no remote shells'); }
  async shellInput() {}
  async shellResize() {}
  async shellClose() {}
  async answerPrompt() {}
}
