// Secret header values in the helper's process records (a command line such as curl -H 'Authorization: ...')
// are masked in pcapng exports too; the records stay valid JSON that tapscope reads back.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import { exportBothWays } from './export-capture.js';
import { parseBuffer } from '../../src/pcapng/index.js';

const CMDLINE = 'curl -H Authorization: Bearer cmdline-secret -H "cookie:\tsid=\\"quoted\\"" https://r.test/x';

describe('process records in pcapng exports', () => {
  let tmp: string;
  beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsr-rec-')); });
  afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('masks header values in command lines, keeps other records as they were', async () => {
    const b = new CaptureBuilder();
    b.record({ t: 'proc', pid: 77, ppid: 1, comm: 'curl', exe: '/usr/bin/curl', cmdline: CMDLINE, cgroup: null, alive: true });
    b.record({ t: 'proc', pid: 78, ppid: 1, comm: 'wget', exe: '/usr/bin/wget', cmdline: 'wget https://r.test/cookies', cgroup: null, alive: true });
    tcpConversation(b, { ip: '10.232.12.1', port: 43000 }, { ip: '10.232.12.2', port: 80 }, [Buffer.from('GET / HTTP/1.1\r\nHost: r.test\r\n\r\n')], []);
    const { redacted: out, all } = await exportBothWays(b, tmp, 'p');
    const cmdlines = (path: string) => parseBuffer(readFileSync(path)).flatMap((x) => (x.type === 'custom' && x.json?.t === 'proc' ? [String(x.json.cmdline)] : []));
    expect(cmdlines(out)).toEqual([`curl -H Authorization: ${'x'.repeat(CMDLINE.length - 'curl -H Authorization: '.length)}`, 'wget https://r.test/cookies']);
    expect(readFileSync(out).includes('cmdline-secret')).toBe(false);
    expect(cmdlines(all)).toEqual([CMDLINE, 'wget https://r.test/cookies']);
  });
});
