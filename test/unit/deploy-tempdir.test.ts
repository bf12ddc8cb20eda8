// The helper's temp dir on a node (MKTEMP_SCRIPT, run for real here): a dir where programs cannot run is passed over,
// saying why, and when no dir will do, the error names the place, the reasons and what to do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MKTEMP_SCRIPT, madeTempDir } from '../../src/targets/deploy.js';
import { isTapscopeError } from '../../src/errors.js';

let noexec: string;

beforeAll(() => {
  noexec = mkdtempSync(join(tmpdir(), 'tsc-noexec-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'noexec,size=1m', 'tmpfs', noexec]);
});

afterAll(() => {
  spawnSync('umount', [noexec]);
  rmSync(noexec, { recursive: true, force: true });
});

const run = (env: NodeJS.ProcessEnv) => {
  const r = spawnSync('sh', ['-c', MKTEMP_SCRIPT], { env: { PATH: process.env.PATH, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
};

describe('madeTempDir', () => {
  it('takes the next dir when TMPDIR is mounted noexec, and says why it passed it over', () => {
    const { dir, passedOver } = madeTempDir(run({ TMPDIR: noexec, HOME: '/nonexistent' }), 'in pod p', 'advice');
    try {
      expect(dir).toMatch(/^\/var\/tmp\/tapscope\.\w{8}$/);
      expect(passedOver).toEqual([`${noexec} is mounted noexec: programs cannot run from it`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails naming the place, every reason and the advice when no dir will do; without reasons, with the script\'s own words', () => {
    const e = (() => {
      try {
        return madeTempDir({ code: 1, stdout: Buffer.alloc(0), stderr: 'tapscope: /tmp is mounted noexec: programs cannot run from it\ntapscope: /var/tmp: cannot write (no space left?)\n' }, 'in pod p', 'Use another image.');
      } catch (x) {
        return x;
      }
    })();
    expect(isTapscopeError(e, 'E_HELPER_MISSING')).toBe(true);
    expect((e as Error).message).toBe('Could not find a temp dir in pod p the helper can run from: /tmp is mounted noexec: programs cannot run from it; /var/tmp: cannot write (no space left?). Use another image.');
    expect(() => madeTempDir({ code: 127, stdout: Buffer.alloc(0), stderr: 'sh: 1: mktemp: not found\n' }, 'on n1', 'x')).toThrow('Could not create a temp dir on n1: sh: 1: mktemp: not found.');
    expect(() => madeTempDir({ code: null, stdout: Buffer.alloc(0), stderr: '' }, 'on n1', 'x')).toThrow('Could not create a temp dir on n1: mktemp was killed.');
  });
});
