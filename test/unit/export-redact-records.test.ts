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

  it('masks credentials given as options or in URLs: curl -b/-u (as curl leaves them), --cookie=, wget --password=, mysql -p, redis-cli -a, -D...password=, user:password@ and token@', async () => {
    // (curl blanks its -u argument with spaces in its own command line; the -b after it is still there)
    const lines = [
      'curl -s -o /dev/null http://10.99.0.1:8080/live -u                 -b sid=CMDCOOKIE',
      'curl -sbsid=ATTACHED --cookie=c=LONGCOOKIE --oauth2-bearer BEARERTOKEN https://bob:URLPASS@r.test/x',
      'wget --password=WGETPASS --http-user=bob https://r.test/',
      'python3 -u serve.py --port 8080',
      // (the shell's -H'Authorization: ...' joined to its option: the header's value, not an option's)
      'curl -HAuthorization: Bearer HEADERTOKEN https://r.test/',
      'mysql -uroot -pMYSQLPASS shop',
      'redis-cli -a REDISPASS ping',
      'java -Ddb.password=JAVAPASS -jar app.jar',
      'git clone https://GITTOKEN@r.test/repo',
      'docker run -p 8080:80 nginx',
    ];
    const b = new CaptureBuilder();
    lines.forEach((cmdline, i) => b.record({ t: 'proc', pid: 90 + i, ppid: 1, comm: 'p', exe: null, cmdline, cgroup: null, alive: true }));
    tcpConversation(b, { ip: '10.232.12.1', port: 43001 }, { ip: '10.232.12.2', port: 80 }, [Buffer.from('GET / HTTP/1.1\r\nHost: r.test\r\n\r\n')], []);
    const { redacted: out, all } = await exportBothWays(b, tmp, 'opts');
    const cmdlines = (path: string) => parseBuffer(readFileSync(path)).flatMap((x) => (x.type === 'custom' && x.json?.t === 'proc' ? [String(x.json.cmdline)] : []));
    expect(cmdlines(out)).toEqual([
      'curl -s -o /dev/null http://10.99.0.1:8080/live -u                 -b xxxxxxxxxxxxx',
      'curl -sbxxxxxxxxxxxx --cookie=xxxxxxxxxxxx --oauth2-bearer xxxxxxxxxxx https://bob:xxxxxxx@r.test/x',
      'wget --password=xxxxxxxx --http-user=bob https://r.test/',
      'python3 -u serve.py --port 8080',
      `curl -HAuthorization: ${'x'.repeat('Bearer HEADERTOKEN https://r.test/'.length)}`,
      'mysql -uroot -pxxxxxxxxx shop',
      'redis-cli -a xxxxxxxxx ping',
      'java -Ddb.password=xxxxxxxx -jar app.jar',
      'git clone https://xxxxxxxx@r.test/repo',
      'docker run -p 8080:80 nginx',
    ]);
    const text = readFileSync(out).toString('latin1');
    expect(['CMDCOOKIE', 'ATTACHED', 'LONGCOOKIE', 'BEARERTOKEN', 'URLPASS', 'WGETPASS', 'HEADERTOKEN', 'MYSQLPASS', 'REDISPASS', 'JAVAPASS', 'GITTOKEN'].filter((x) => text.includes(x))).toEqual([]);
    expect(cmdlines(all)).toEqual(lines);
  });
});
