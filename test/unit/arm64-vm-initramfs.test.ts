// The arm64 VM harness's pure parts: the cpio "newc" writer against hand-computed bytes, the ELF NEEDED reader
// and the sysroot closure on this machine's own binaries, and the console parsing of exported files. That the
// kernel boots the archive is test/integration/arm64-vm.test.ts.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNewc } from '../lib/cpio-newc.js';
import { elfNeeded } from '../lib/elf-needed.js';
import { guestSysrootFiles, parseExitCode, parseExports } from '../lib/arm64-vm.js';

/** One newc header from its 13 field values, written out by hand (each 8 hex digits). */
function header(fields: { ino: string; mode: string; nlink: string; filesize: string; rdev?: [string, string]; namesize: string }): string {
  const [rmaj, rmin] = fields.rdev ?? ['00000000', '00000000'];
  return '070701' + fields.ino + fields.mode + '00000000' + '00000000' + fields.nlink + '00000000' + fields.filesize
    + '00000000' + '00000000' + rmaj + rmin + fields.namesize + '00000000';
}
const TRAILER = header({ ino: '00000000', mode: '00000000', nlink: '00000001', filesize: '00000000', namesize: '0000000b' })
  + 'TRAILER!!!\0' + '\0'.repeat(3);

describe('cpio newc writer', () => {
  it('writes a file as the 110-byte header, the NUL-terminated name, the data, each padded to 4 bytes, then the trailer', () => {
    const archive = encodeNewc([{ type: 'file', path: '/init', data: Buffer.from('echo\n'), mode: 0o755 }]);
    // mode 0o100755 = 0x81ed; name "init\0" is 5 bytes: 110 + 5 = 115, padded to 116; data 5 bytes padded to 8
    const expected = header({ ino: '00000001', mode: '000081ed', nlink: '00000001', filesize: '00000005', namesize: '00000005' })
      + 'init\0' + '\0' + 'echo\n' + '\0\0\0' + TRAILER;
    expect(archive.toString('latin1')).toBe(expected);
    expect(archive.length % 4).toBe(0);
  });

  it('writes directories, symlinks (the target as data) and character devices', () => {
    const archive = encodeNewc([
      { type: 'dir', path: 'dev' },
      { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { type: 'symlink', path: 'lib/ld.so', target: '../x/ld.so' },
    ]).toString('latin1');
    const expected = header({ ino: '00000001', mode: '000041ed', nlink: '00000002', filesize: '00000000', namesize: '00000004' })
      + 'dev\0' + '\0\0'
      + header({ ino: '00000002', mode: '00002180', nlink: '00000001', filesize: '00000000', rdev: ['00000005', '00000001'], namesize: '0000000c' })
      + 'dev/console\0' + '\0\0'
      + header({ ino: '00000003', mode: '0000a1ff', nlink: '00000001', filesize: '0000000a', namesize: '0000000a' })
      + 'lib/ld.so\0' + '' + '../x/ld.so' + '\0\0'
      + TRAILER;
    expect(archive).toBe(expected);
  });

  it('refuses paths that would leave the archive root', () => {
    expect(() => encodeNewc([{ type: 'dir', path: 'a/../../etc' }])).toThrow(/bad member path/);
    expect(() => encodeNewc([{ type: 'dir', path: '/' }])).toThrow(/bad member path/);
  });
});

describe('ELF NEEDED reader', () => {
  it('lists the libraries of a dynamic executable like readelf -d', () => {
    expect(elfNeeded(readFileSync('/bin/sh'))).toContain('libc.so.6');
  });

  it('says what it cannot read', () => {
    expect(() => elfNeeded(Buffer.from('#!/bin/sh\n'))).toThrow(/not an ELF file/);
    const elf32 = Buffer.alloc(64);
    elf32.write('\x7fELF\x01\x01', 'latin1');
    expect(() => elfNeeded(elf32)).toThrow(/only ELF64 little-endian/);
  });
});

describe('sysroot closure', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'tsu-sysroot-'));
    mkdirSync(join(root, 'bin'));
    copyFileSync('/bin/sh', join(root, 'bin/sh'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('names the missing soname and who needs it', () => {
    expect(() => guestSysrootFiles(root, ['bin/sh'])).toThrow(/libc\.so\.6, needed by \/bin\/sh, is in none of/);
  });

  it('follows NEEDED through libraries and symlinks (absolute ones inside the sysroot)', () => {
    mkdirSync(join(root, 'lib'));
    mkdirSync(join(root, 'real'));
    copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', join(root, 'real/libc.so.6'));
    symlinkSync('/real/libc.so.6', join(root, 'lib/libc.so.6'));
    expect(() => guestSysrootFiles(root, ['bin/sh'])).toThrow(/ld-linux-x86-64\.so\.2, needed by \/real\/libc\.so\.6/);
    copyFileSync('/lib64/ld-linux-x86-64.so.2', join(root, 'lib/ld-linux-x86-64.so.2'));
    expect(guestSysrootFiles(root, ['bin/sh'])).toEqual(['bin/sh', 'lib/ld-linux-x86-64.so.2', 'lib/libc.so.6', 'real/libc.so.6']);
  });

  it('says which file is missing', () => {
    expect(() => guestSysrootFiles(root, ['etc/ssl/openssl.cnf'])).toThrow(/\/etc\/ssl\/openssl\.cnf is missing/);
  });
});

describe('console parsing', () => {
  const bytes = Buffer.from([...Array(256).keys(), ...Array(100).fill(0x0a)]);
  const b64Lines = bytes.toString('base64').match(/.{1,76}/g)!;
  const exportOf = (name: string, size: number, lines: string[]) => [`===TAPSCOPE-EXPORT ${name} ${size}===`, ...lines, '===TAPSCOPE-END==='];

  it('returns exported files by name, byte for byte, also after output without a final newline', () => {
    const console = ['boot', 'partial line' + exportOf('a.bin', bytes.length, b64Lines)[0], ...exportOf('a.bin', bytes.length, b64Lines).slice(1),
      ...exportOf('empty', 0, []), '===TAPSCOPE-EXIT 0==='].join('\n');
    const exported = parseExports(console);
    expect([...exported.keys()]).toEqual(['a.bin', 'empty']);
    expect(exported.get('a.bin')!.equals(bytes)).toBe(true);
    expect(exported.get('empty')!.length).toBe(0);
  });

  it('rejects an export cut short or of the wrong size', () => {
    expect(() => parseExports(exportOf('a.bin', bytes.length, b64Lines).slice(0, -1).join('\n'))).toThrow(/ends before/);
    expect(() => parseExports(exportOf('a.bin', bytes.length, b64Lines.slice(1)).join('\n'))).toThrow(/sent 356 bytes, 299 arrived/);
  });

  it('reads the exit status, or null when the script never returned', () => {
    expect(parseExitCode('x\n===TAPSCOPE-EXIT 42===\n[ 2.2] reboot: Power down\n')).toBe(42);
    expect(parseExitCode('Kernel panic - not syncing\n')).toBeNull();
  });
});
