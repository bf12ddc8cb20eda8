// KeyLogFollower: a key log read as clients append to it — complete lines only, a file emptied or replaced read again
// from its start, bad lines refused at the start and noted later (the lines after them still read).
import { appendFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyLogFollower } from '../../src/service/keylog-follower.js';
import { isTapscopeError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tapscope-keylog-follower-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const line = (label: string, n: number): string => `${label} ${n.toString(16).padStart(64, '0')} ${'ab'.repeat(32)}`;

function follower(path: string): { f: KeyLogFollower; got: string[]; problems: string[] } {
  const got: string[] = [];
  const problems: string[] = [];
  const f = new KeyLogFollower(path, (text) => got.push(...text.split('\n')), (m) => problems.push(m));
  return { f, got, problems };
}

describe('KeyLogFollower', () => {
  it('takes complete lines as they are written; a line being written waits for its newline', () => {
    const path = join(dir, 'grow.log');
    writeFileSync(path, `# a comment\n${line('CLIENT_TRAFFIC_SECRET_0', 1)}\n`);
    const { f, got, problems } = follower(path);
    f.start();
    expect(got).toEqual([line('CLIENT_TRAFFIC_SECRET_0', 1)]);
    const next = line('SERVER_TRAFFIC_SECRET_0', 1);
    appendFileSync(path, next.slice(0, 40));
    f.poll();
    expect(got).toHaveLength(1);
    appendFileSync(path, `${next.slice(40)}\r\n`);
    f.poll();
    expect(got).toEqual([line('CLIENT_TRAFFIC_SECRET_0', 1), next]);
    f.poll();
    expect(got).toHaveLength(2);
    // (emptied and written again, as a new SSLKEYLOGFILE of the same name: read from its start)
    truncateSync(path, 0);
    f.poll();
    writeFileSync(path, `${line('CLIENT_TRAFFIC_SECRET_0', 2)}\n`);
    f.stop();
    expect(got[2]).toBe(line('CLIENT_TRAFFIC_SECRET_0', 2));
    expect(problems).toEqual([]);
  });

  it('refuses at the start a missing file or a bad line (with its number); later, a bad line is noted and the next ones read', () => {
    const missing = follower(join(dir, 'nope.log'));
    expect(() => missing.f.start()).toThrow(/no such key log/);
    const badPath = join(dir, 'bad.log');
    writeFileSync(badPath, `${line('CLIENT_RANDOM', 1).slice(0, 100)}\n`);
    const bad = follower(badPath);
    let err: unknown;
    try {
      bad.f.start();
    } catch (e) {
      err = e;
    }
    expect(isTapscopeError(err, 'E_KEYLOG')).toBe(true);
    expect(bad.got).toEqual([]);

    const path = join(dir, 'later.log');
    writeFileSync(path, '');
    const { f, got, problems } = follower(path);
    f.start();
    appendFileSync(path, `${line('CLIENT_TRAFFIC_SECRET_0', 3)}\nCLIENT_TRAFFIC_SECRET_0 zz yy\n${line('SERVER_TRAFFIC_SECRET_0', 3)}\n`);
    f.stop();
    expect(got).toEqual([line('CLIENT_TRAFFIC_SECRET_0', 3), line('SERVER_TRAFFIC_SECRET_0', 3)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/later\.log: line 2 is not a key log line/);
  });
});
