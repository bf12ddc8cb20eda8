// Text from the wire shown on a terminal (src/util/printable.ts, the CLI's tables, notes and errors): control characters
// are written as escapes, so a host name, path or process name a peer chose cannot drive the terminal or break a line.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { printable } from '../../src/util/printable.js';
import { table } from '../../src/cli/flows-output.js';
import { CaptureBuilder, tcpConversation } from './core-packet-builder.js';
import { fileURLToPath } from 'node:url';

describe('printable', () => {
  it('escapes C0 and C1 controls, DEL and bidirectional overrides; leaves the rest as it is', () => {
    expect(printable('evil\x1b]0;pwned\x07\x1b[2J.test')).toBe('evil\\x1b]0;pwned\\x07\\x1b[2J.test');
    expect(printable('a\tb\nc\rd\x00e\x7ff\x9bg')).toBe('a\\x09b\\x0ac\\x0dd\\x00e\\x7ff\\x9bg');
    expect(printable('gnp.\u202eexe')).toBe('gnp.\\u{202e}exe');
    expect(printable('line one\nline two\r', 'newlines')).toBe('line one\nline two\\x0d');
    expect(printable('a\tb\r\nc\x0bd\x00\u2066', 'layout')).toBe('a\tb\r\nc\\x0bd\\x00\\u{2066}');
    const fine = 'münchen.example — 日本 ✓ 10.0.0.1:443 (reset by server)';
    expect(printable(fine)).toBe(fine);
  });

  it('a table keeps its columns when a cell holds controls', () => {
    const t = table(['A', 'B'], [['x\ny', 'z'], ['\x1b[2J', 'w']]).split('\n');
    expect(t).toEqual(['A        B', 'x\\x0ay   z', '\\x1b[2J  w', '']);
  });
});

describe('the CLI on a capture whose text holds terminal controls', () => {
  it('prints the flows table and the notes without a control byte, the JSON escaped as JSON', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const dir = mkdtempSync(join(tmpdir(), 'tapscope-printable-'));
    try {
      const b = new CaptureBuilder();
      // (a helper's gap record whose reason carries a screen clear: a crafted file's)
      b.record({ t: 'gap', fromMs: 1_732_620_000_000, reason: 'lost\x1b[2J\x1b[Hbytes' });
      tcpConversation(b, { ip: '10.77.0.1', port: 40000 }, { ip: '10.78.0.1', port: 80 },
        [Buffer.from('GET /\x1b[31mred HTTP/1.1\r\nHost: evil\x1b]0;pwned\x07.test\r\n\r\n', 'latin1')], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
      const file = join(dir, 'esc.pcapng');
      writeFileSync(file, b.build());
      const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: root, env: { ...process.env, TAPSCOPE_HOME: join(dir, 'home') } });
      const t = cli(['flows', file]);
      expect(t.status).toBe(0);
      expect(t.stdout).toContain('evil\\x1b]0;pwned\\x07.test');
      expect(t.stderr).toContain('lost\\x1b[2J\\x1b[Hbytes');
      // (no control byte but the lines' ends)
      expect([...t.stdout + t.stderr].filter((c) => (c < ' ' && c !== '\n') || c === '\x7f')).toEqual([]);
      const j = cli(['flows', file, '--json']);
      expect(JSON.parse(j.stdout.split('\n')[0]!).http[0].host).toBe('evil\x1b]0;pwned\x07.test');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
