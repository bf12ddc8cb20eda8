// The local target with the real helper: options become helper flags, and a helper failure surfaces as a
// failed node status carrying the helper's own words.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { LocalTarget } from '../../src/targets/local.js';
import type { NodeStatus } from '../../src/targets/target.js';

describe('local target with the real helper', () => {
  it('reports a helper that cannot capture as a failed node with its reason', async () => {
    const t = new LocalTarget();
    const statuses: NodeStatus[] = [];
    const h = await t.start({ mode: 'afpacket', ifaces: ['tsc-nosuchdev0'], duration: 2 }, {
      onStatus: (s) => statuses.push(s),
      onStream: (_node, s) => { s.resume(); },
    });
    await h.done;
    const failed = statuses.find((s) => s.phase === 'failed');
    expect(failed?.error?.code).toBe('E_HELPER_EXITED');
    expect(failed?.error?.message).toMatch(/no such interface: tsc-nosuchdev0/);
    expect(statuses[0]!.phase).toBe('preflight');
    await h.stop();
  });

  it('passes mode, interfaces and duration to the helper', () => {
    const argv = new LocalTarget({ netns: 'tsc-example' }).command({ mode: 'ebpf', ifaces: ['eth0', 'lo'], duration: 5, snaplen: 128 });
    expect(argv.slice(0, 4)).toEqual(['ip', 'netns', 'exec', 'tsc-example']);
    expect(argv.slice(5)).toEqual(['--mode', 'ebpf', '--iface', 'eth0', '--iface', 'lo', '--duration', '5', '--snaplen', '128']);
  });
});

describe('local target, the pkexec stop and failure paths', () => {
  it('stops the helper by closing its output, and says so', async () => {
    // why: pkexec itself needs a polkit agent; here the helper runs directly (we are root) with the pkexec
    // stop path, which must not rely on signals
    const t = new LocalTarget({ privilege: { via: 'pkexec', prefix: [] }, netns: null });
    const statuses: NodeStatus[] = [];
    let bytes = 0;
    let streaming!: () => void;
    const started = new Promise<void>((r) => { streaming = r; });
    const h = await t.start({ mode: 'afpacket', ifaces: ['lo'] }, {
      onStatus: (s) => { statuses.push(s); if (s.phase === 'streaming') streaming(); },
      onStream: (_node, s) => { s.on('data', (d: Buffer) => { bytes += d.length; }); s.on('error', () => {}); },
    });
    await started;
    await h.stop();
    const phases = statuses.map((s) => s.phase);
    expect(phases).toContain('stopped');
    expect(phases).not.toContain('failed');
    expect(statuses.find((s) => s.phase === 'running')?.message).toMatch(/pkexec/);
    expect(statuses.find((s) => s.phase === 'stopping')?.message).toMatch(/closing its output/);
    expect(bytes).toBeGreaterThan(0);
  }, 20_000);

  it('turns pkexec exit 126/127 (no polkit agent, dismissed) into E_SUDO_REQUIRED naming sudo and pkexec', async () => {
    for (const code of [126, 127]) {
      // a process that exits as pkexec does when no agent can authenticate
      const t = new LocalTarget({ privilege: { via: 'pkexec', prefix: ['sh', '-c', `exit ${code}`, 'pkexec'] }, netns: null });
      const statuses: NodeStatus[] = [];
      const h = await t.start({ mode: 'afpacket', ifaces: ['lo'] }, { onStatus: (s) => statuses.push(s), onStream: (_n, s) => { s.resume(); } });
      await h.done;
      const failed = statuses.find((s) => s.phase === 'failed');
      expect(failed?.error?.code).toBe('E_SUDO_REQUIRED');
      expect(failed?.error?.message).toMatch(new RegExp(`exit ${code}`));
      expect(failed?.error?.message).toMatch(/sudo/);
      expect(failed?.error?.message).toMatch(/pkexec/);
    }
  });
});

describe('local target, a helper that does not stop', () => {
  /**
   * Runs `script` as the helper (through `prefix`, sudo or none) with a stop grace of 0.3 s, stops it once it says it is
   * capturing, and returns the node's 'stopped' status.
   * why `exec` in the scripts: the shell becomes the sleep, which keeps the ignored signals; a child of the shell would
   * hold the output pipe open after the shell's kill
   */
  async function stopStubborn(script: string, via: 'root' | 'sudo' = 'root'): Promise<NodeStatus | undefined> {
    const dir = mkdtempSync(join(tmpdir(), 'tsc-stubborn-'));
    const helper = join(dir, 'helper');
    writeFileSync(helper, script, { mode: 0o755 });
    try {
      const prefix = via === 'sudo' ? ['sudo', '-n'] : [];
      const t = new LocalTarget({ helperPath: helper, privilege: { via, prefix }, netns: null, stopGraceMs: 300 });
      const statuses: NodeStatus[] = [];
      let streaming!: () => void;
      const started = new Promise<void>((r) => { streaming = r; });
      const h = await t.start({ mode: 'afpacket', ifaces: ['lo'] }, {
        onStatus: (s) => { statuses.push(s); if (s.phase === 'streaming') streaming(); },
        onStream: (_node, s) => { s.resume(); },
      });
      await started;
      await h.stop();
      return statuses.find((s) => s.phase === 'stopped');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('kills it after the grace and says its last packets and statistics are missing, not a clean stop', async () => {
    const stopped = await stopStubborn("#!/bin/sh\ntrap '' INT\necho capturing >&2\nexec sleep 30\n");
    expect(stopped?.error?.code).toBe('E_HELPER_EXITED');
    expect(stopped?.message).toMatch(/did not stop within 0.3 s of SIGINT and was killed: the packets it had not yet written and its final statistics are missing/);
  }, 20_000);

  it('says nothing of a helper killed after its output ended (its stream is whole: it was detaching its eBPF probes)', async () => {
    const stopped = await stopStubborn("#!/bin/sh\ntrap '' INT\necho capturing >&2\nexec 1>&-\nexec sleep 30\n");
    expect(stopped).toBeDefined();
    expect(stopped?.error).toBeUndefined();
  }, 20_000);

  it('kills it through sudo when it runs under sudo (a SIGKILL to sudo alone left it running, and the stop waiting)', async () => {
    try {
      // (-a: a name of its own, to find it by)
      const stopped = await stopStubborn("#!/bin/bash\ntrap '' INT TERM\necho capturing >&2\nexec -a tsc-stubborn-under-sudo sleep 30\n", 'sudo');
      expect(stopped?.message).toMatch(/was killed/);
      expect(spawnSync('pgrep', ['-f', 'tsc-stubborn-under-sudo']).status).toBe(1);
    } finally {
      spawnSync('pkill', ['-KILL', '-f', 'tsc-stubborn-under-sudo']);
    }
  }, 20_000);
});
