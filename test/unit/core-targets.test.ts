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

describe('the helper\'s flags', () => {
  it('passes the capture filter as one argument, on this machine and quoted whole for a remote shell', async () => {
    const { helperArgs, runCommandLine } = await import('../../src/targets/deploy.js');
    const filter = "tcp port 443 and (host 10.0.0.5 or net fd00::/8) and not port 22";
    expect(helperArgs({ mode: 'auto', ifaces: ['eth0'], filter })).toEqual(['--mode', 'auto', '--iface', 'eth0', '--filter', filter]);
    expect(helperArgs({ mode: 'auto', ifaces: [], filter: '' })).toEqual(['--mode', 'auto']);
    expect(helperArgs({ mode: 'auto', ifaces: [], keyLogs: ['/tmp/a b.log', '/k'] })).toEqual(['--mode', 'auto', '--keylog', '/tmp/a b.log', '--keylog', '/k']);
    const { spawnSync } = await import('node:child_process');
    // the SSH command line, run by a shell whose "helper" prints its arguments one per line
    const line = runCommandLine('/nonexistent', helperArgs({ mode: 'ebpf', ifaces: [], filter }));
    const tail = line.slice(line.indexOf('/nonexistent') + '/nonexistent'.length).replace(/^'/, '');
    const script = `printf '%s\\n'${tail}`;
    expect(spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout.split('\n').slice(0, 4)).toEqual(['--mode', 'ebpf', '--filter', filter]);
    const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tsc-flags-'));
    try {
      const helper = join(dir, 'tapscope-helper');
      writeFileSync(helper, '');
      const argv = new LocalTarget({ helperPath: helper }).command({ mode: 'afpacket', ifaces: [], filter: 'udp port 53' });
      expect(argv.slice(argv.indexOf(helper))).toEqual([helper, '--mode', 'afpacket', '--filter', 'udp port 53']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('checking a capture filter before the capture', () => {
  it('compiles it with this machine\'s helper and says libpcap\'s complaint; says when it cannot check here', async () => {
    const { checkCaptureFilter } = await import('../../src/targets/capture-filter.js');
    expect(await checkCaptureFilter('tcp port 443 and not host 10.0.0.5')).toEqual({ ok: true });
    expect(await checkCaptureFilter('  ')).toEqual({ ok: true });
    expect(await checkCaptureFilter('tcp port')).toEqual({ ok: false, message: "can't parse filter expression: syntax error" });
    expect(await checkCaptureFilter('ether host 1:2:3:4:5:6')).toMatchObject({ ok: false, message: expect.stringMatching(/ethernet addresses supported only on/) });
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tsc-cfcheck-'));
    try {
      // a helper that cannot run here: not checked, and the message says the nodes will
      const broken = join(dir, 'tapscope-helper');
      writeFileSync(broken, 'not a program', { mode: 0o644 });
      expect(await checkCaptureFilter('tcp port', broken)).toMatchObject({ ok: null, message: expect.stringMatching(/each node's helper checks it when the capture starts$/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('chosen pods', () => {
  it('reads NAMESPACE/NAME or NAME in the context\'s namespace, and filters on the pods\' addresses within the user\'s filter', async () => {
    const { parsePodName, podFilter } = await import('../../src/targets/k8s/pod-scope.js');
    expect(parsePodName('shop/web-7d9f5c6b8-x2x9k', 'default')).toEqual({ namespace: 'shop', name: 'web-7d9f5c6b8-x2x9k' });
    expect(parsePodName(' db-0 ', 'team-a')).toEqual({ namespace: 'team-a', name: 'db-0' });
    for (const bad of ['a/b/c', 'Shop/web', '/web', 'shop/', 'we b']) {
      let e: unknown;
      try { parsePodName(bad, 'default'); } catch (x) { e = x; }
      expect(isTapscopeError(e, 'E_USAGE'), bad).toBe(true);
    }
    expect(podFilter(['10.1.2.3'])).toBe('host 10.1.2.3');
    expect(podFilter(['10.1.2.3', 'fd00::3'], ' tcp port 443 or udp ')).toBe('(host 10.1.2.3 or host fd00::3) and (tcp port 443 or udp)');
    const { parseCommand } = await import('../../src/cli/args.js');
    expect(parseCommand(['capture', '--target', 'k8s://prod', '--pod', 'shop/web', '--pod', 'db-0', '--out', 'x'])).toMatchObject({ pods: ['shop/web', 'db-0'] });
    expect(() => parseCommand(['capture', '--pod', 'shop/web', '--out', 'x'])).toThrow(/--pod needs a Kubernetes target/);
  });
});

describe('helpers by architecture', () => {
  it('gives x86-64 and aarch64 machines their own build, an explicit path only to x86-64, and none to another architecture', async () => {
    const { HelperSet } = await import('../../src/targets/deploy.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tsc-helpers-'));
    const saved = { x: process.env.TAPSCOPE_HELPER, a: process.env.TAPSCOPE_HELPER_ARM64 };
    try {
      delete process.env.TAPSCOPE_HELPER;
      delete process.env.TAPSCOPE_HELPER_ARM64;
      const explicit = join(dir, 'x64-helper');
      writeFileSync(explicit, 'x64 stand-in');
      const set = new HelperSet(explicit);
      expect(set.for('x86_64')?.path).toBe(explicit);
      expect(set.for(null)?.path).toBe(explicit);
      // the built aarch64 helper (ELF machine 183), not the explicit x86-64 one
      const arm = set.for('aarch64')!;
      expect(arm.path).toMatch(/resources\/helper\/linux-arm64\/tapscope-helper$/);
      expect(arm.data.readUInt16LE(18)).toBe(183);
      expect(set.for('arm64')).toBe(arm);
      expect(set.for('s390x')).toBeNull();
      // $TAPSCOPE_HELPER_ARM64 names another aarch64 helper
      const other = join(dir, 'arm64-helper');
      writeFileSync(other, 'arm64 stand-in');
      process.env.TAPSCOPE_HELPER_ARM64 = other;
      expect(new HelperSet(explicit).for('aarch64')?.data.toString()).toBe('arm64 stand-in');
    } finally {
      if (saved.x === undefined) delete process.env.TAPSCOPE_HELPER; else process.env.TAPSCOPE_HELPER = saved.x;
      if (saved.a === undefined) delete process.env.TAPSCOPE_HELPER_ARM64; else process.env.TAPSCOPE_HELPER_ARM64 = saved.a;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the target picker (review I: 14)', () => {
  it('lists the hosts of files ~/.ssh/config Includes (globs, relative to ~/.ssh, nested), not only its own', async () => {
    const { mkdirSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { CoreService } = await import('../../src/service/core-service.js');
    const { SessionStore } = await import('../../src/store/session-store.js');
    const home = mkdtempSync(join(tmpdir(), 'tsc-picker-'));
    const saved = { HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG };
    try {
      mkdirSync(join(home, '.ssh', 'config.d'), { recursive: true });
      writeFileSync(join(home, '.ssh', 'config'), 'Include config.d/*\nHost direct1\n  HostName 10.0.0.1\nHost *\n  User root\n');
      writeFileSync(join(home, '.ssh', 'config.d', 'work'), 'Host prod-db prod-web\n  HostName 10.0.0.2\nInclude ~/.ssh/more\nMatch host x\n  Port 2\n');
      writeFileSync(join(home, '.ssh', 'more'), 'Host nested\n  HostName 10.0.0.3\nHost direct1\n  Port 2222\n');
      process.env.HOME = home;
      process.env.KUBECONFIG = join(home, 'no-kubeconfig');
      const svc = new CoreService({ store: new SessionStore(join(home, 'sessions')) });
      const ssh = (await svc.listTargets()).filter((t) => t.kind === 'ssh').map((t) => t.uri);
      expect(ssh).toEqual(['ssh://prod-db', 'ssh://prod-web', 'ssh://nested', 'ssh://direct1']);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(home, { recursive: true, force: true });
    }
  });
});
