// test/lib/child-output.ts: waiting for a line from a real child process.
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { watchOutput } from '../lib/child-output.js';

const node = (script: string) => spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });

describe('watchOutput', () => {
  it('resolves once the text came, across chunks and on either stream watched', async () => {
    const child = node("process.stdout.write('rea'); setTimeout(() => process.stderr.write('dy\\n'), 100); setTimeout(() => console.log('later'), 300)");
    const w = watchOutput(child, ['stdout', 'stderr'], 'the child');
    await w.waitFor('ready', 5000);
    expect(w.text()).toBe('ready\n');
    await w.waitFor('later', 5000);
    // (text already seen resolves at once)
    await w.waitFor('ready', 1);
  });

  it('rejects with the output when the child exits without printing it', async () => {
    const child = node("console.log('starting'); process.exit(3)");
    const w = watchOutput(child, ['stdout'], 'the child');
    await expect(w.waitFor('ready', 5000)).rejects.toThrow("the child exited (3) before printing 'ready': starting");
  });

  it('rejects after its time, and leaves a stream it does not watch out', async () => {
    const child = node("console.error('ready'); setTimeout(() => {}, 2000)");
    const w = watchOutput(child, ['stdout'], 'the child');
    await expect(w.waitFor('ready', 300)).rejects.toThrow("the child did not print 'ready' in 300 ms");
    child.kill();
  });
});
