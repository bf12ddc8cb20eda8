// The local target's privilege decision: root, passwordless sudo, pkexec in a graphical session, else
// E_SUDO_REQUIRED naming every way; and the $PATH lookup that finds pkexec.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decidePrivilege, findOnPath } from '../../src/targets/local.js';

const PK = '/usr/bin/pkexec';

describe('decidePrivilege', () => {
  const table: { name: string; uid: number | null; sudoOk: boolean; pkexecPath: string | null; env: Record<string, string | undefined>; via: string; prefix?: string[]; says?: RegExp }[] = [
    { name: 'root runs directly', uid: 0, sudoOk: false, pkexecPath: PK, env: { DISPLAY: ':0' }, via: 'root', prefix: [] },
    { name: 'root wins over sudo', uid: 0, sudoOk: true, pkexecPath: null, env: {}, via: 'root', prefix: [] },
    { name: 'passwordless sudo', uid: 1000, sudoOk: true, pkexecPath: PK, env: { DISPLAY: ':0' }, via: 'sudo', prefix: ['sudo', '-n'] },
    { name: 'pkexec under X11', uid: 1000, sudoOk: false, pkexecPath: PK, env: { DISPLAY: ':0' }, via: 'pkexec', prefix: [PK] },
    { name: 'pkexec under Wayland', uid: 1000, sudoOk: false, pkexecPath: PK, env: { WAYLAND_DISPLAY: 'wayland-0' }, via: 'pkexec', prefix: [PK] },
    { name: 'no uid (not POSIX) still tries pkexec', uid: null, sudoOk: false, pkexecPath: PK, env: { DISPLAY: ':1' }, via: 'pkexec', prefix: [PK] },
    { name: 'pkexec without a graphical session', uid: 1000, sudoOk: false, pkexecPath: PK, env: { DISPLAY: '' }, via: 'none', says: /no graphical session/ },
    { name: 'no pkexec installed', uid: 1000, sudoOk: false, pkexecPath: null, env: { DISPLAY: ':0' }, via: 'none', says: /pkexec is not installed/ },
  ];
  for (const row of table) {
    it(row.name, () => {
      const p = decidePrivilege(row);
      expect(p.via).toBe(row.via);
      if (p.via === 'none') {
        expect(p.message).toMatch(row.says!);
        expect(p.message).toMatch(/sudo/);
        expect(p.message).toMatch(/pkexec/);
      } else {
        expect(p.prefix).toEqual(row.prefix);
      }
    });
  }
});

describe('findOnPath', () => {
  it('finds the first executable of that name and skips non-executable ones', () => {
    const a = mkdtempSync(join(tmpdir(), 'tsc-path-a-'));
    const b = mkdtempSync(join(tmpdir(), 'tsc-path-b-'));
    try {
      writeFileSync(join(a, 'pkexec'), '#!/bin/sh\n');
      chmodSync(join(a, 'pkexec'), 0o644);
      writeFileSync(join(b, 'pkexec'), '#!/bin/sh\n');
      chmodSync(join(b, 'pkexec'), 0o755);
      expect(findOnPath('pkexec', `${a}:${b}`)).toBe(join(b, 'pkexec'));
      expect(findOnPath('pkexec', a)).toBeNull();
      expect(findOnPath('pkexec', '')).toBeNull();
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
  });
});
