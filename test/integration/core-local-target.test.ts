// The local target with the real helper: options become helper flags, and a helper failure surfaces as a
// failed node status carrying the helper's own words.
import { describe, it, expect } from 'vitest';
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
