// Target URIs and the local target's checks that need no capture privileges.
import { describe, it, expect } from 'vitest';
import { parseTargetUri, createTarget } from '../../src/targets/index.js';
import { LocalTarget } from '../../src/targets/local.js';
import { isTapscopeError } from '../../src/errors.js';

describe('target URIs', () => {
  it('parses local, ssh and k8s forms', () => {
    expect(parseTargetUri('local')).toEqual({ kind: 'local' });
    expect(parseTargetUri('')).toEqual({ kind: 'local' });
    expect(parseTargetUri('ssh://host')).toEqual({ kind: 'ssh', user: null, host: 'host', port: null });
    expect(parseTargetUri('ssh://me@10.0.0.5:2222')).toEqual({ kind: 'ssh', user: 'me', host: '10.0.0.5', port: 2222 });
    expect(parseTargetUri('ssh://root@[fd00::1]:22')).toEqual({ kind: 'ssh', user: 'root', host: 'fd00::1', port: 22 });
    expect(parseTargetUri('k8s://kind-dev')).toEqual({ kind: 'k8s', context: 'kind-dev', node: null });
    expect(parseTargetUri('k8s://kind-dev/worker-1')).toEqual({ kind: 'k8s', context: 'kind-dev', node: 'worker-1' });
  });

  it('rejects anything else with E_TARGET_INVALID', async () => {
    for (const bad of ['ftp://x', 'ssh://', 'ssh://h:99999', 'k8s://', 'k8s://a/b/c', 'somehost']) {
      let e: unknown;
      try { parseTargetUri(bad); } catch (x) { e = x; }
      expect(isTapscopeError(e, 'E_TARGET_INVALID'), bad).toBe(true);
    }
    await expect(createTarget('http://x')).rejects.toMatchObject({ code: 'E_TARGET_INVALID' });
  });

  it('local target: one node named after this host, and a clear error when the helper is missing', async () => {
    const t = new LocalTarget({ helperPath: '/nonexistent/tapscope-helper' });
    const nodes = await t.listNodes();
    expect(nodes).toHaveLength(1);
    expect(nodes[0]!.ready).toBe(true);
    await expect(t.start({ mode: 'auto', ifaces: [] }, { onStatus: () => undefined, onStream: () => undefined }))
      .rejects.toMatchObject({ code: 'E_HELPER_MISSING' });
    const report = (await t.preflight())[0]!;
    expect(report.problems.join(' ')).toMatch(/helper binary not found/);
  });
});
