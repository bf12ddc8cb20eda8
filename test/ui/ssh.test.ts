// UI with an SSH target (a real OpenSSH sshd on 127.0.0.1 with its own keys): typing the target, the
// unknown-host-key dialog showing the real fingerprint, trusting it, the node's kernel and arch, and a
// terminal tab with a shell on that node over SSH.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { createTarget } from '../../src/targets/index.js';
import { createSshTarget } from '../../src/targets/ssh.js';
import { screenshot } from './browser.js';
import { openUi, type UiHarness } from './support.js';

let dir: string;
let sshd: ChildProcess | null = null;
let port = 0;
let service: CoreService;
let ui: UiHarness;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function keygen(path: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${String(r.stderr)}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsu-ssh-'));
  mkdirSync('/run/sshd', { recursive: true });
  keygen(join(dir, 'host_ed25519'));
  keygen(join(dir, 'id_ed25519'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id_ed25519.pub')));
  port = await freePort();
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_ed25519')}`, `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', '',
  ].join('\n'));
  writeFileSync(join(dir, 'ssh_config'), `Host 127.0.0.1\n  User root\n  IdentityFile ${join(dir, 'id_ed25519')}\n  IdentitiesOnly yes\n`);
  writeFileSync(join(dir, 'known_hosts'), '');
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`sshd did not start: ${err}`)), 10_000);
    sshd?.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Server listening')) {
        clearTimeout(t);
        resolve();
      }
    });
    sshd?.once('exit', (code) => reject(new Error(`sshd exited ${code}: ${err}`)));
  });
  service = new CoreService({
    store: new SessionStore(join(dir, 'sessions')),
    // why: the real SSH target, pointed at this test's ssh_config and an empty known_hosts.
    createTarget: (uri, o) =>
      uri.startsWith('ssh://') ? createSshTarget(uri, { ...o, sshConfigPath: join(dir, 'ssh_config'), knownHostsPath: join(dir, 'known_hosts') }) : createTarget(uri, o),
  });
  ui = await openUi(service);
});

afterAll(async () => {
  await ui?.close().catch(() => undefined);
  await service?.close().catch(() => undefined);
  sshd?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('SSH target in the UI', () => {
  it('asks about the unknown host key with its real fingerprint, then lists the node', async () => {
    const { page } = ui;
    await page.getByTestId('target-uri').fill(`ssh://root@127.0.0.1:${port}`);
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor({ timeout: 20_000 });
    const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'host_ed25519.pub')], { encoding: 'utf8' }).stdout.split(/\s+/)[1] ?? '';
    expect(fp).toMatch(/^SHA256:/);
    expect(await dialog.textContent()).toContain(fp);
    await screenshot(page, 'connect-host-key');
    await dialog.getByRole('button', { name: 'Trust and connect' }).click();
    await page.getByTestId('nodes').waitFor({ timeout: 20_000 });
    const kernel = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
    expect(await page.getByTestId('nodes').textContent()).toContain(kernel);
    expect(readFileSync(join(dir, 'known_hosts'), 'utf8')).toContain('ssh-ed25519');
  });

  it('opens a shell on the node over SSH in a terminal tab', async () => {
    const { page } = ui;
    await page.click('[data-view=terminal]');
    await page.getByRole('button', { name: 'Shell on node' }).click();
    await page.getByTestId('terminal').first().waitFor({ timeout: 20_000 });
    await page.locator('.xterm-helper-textarea').first().focus();
    await page.keyboard.type('echo over-ssh-$((20+3))\n');
    await expect.poll(async () => (await page.locator('[data-testid=terminal] .xterm-rows').first().textContent()) ?? '', { timeout: 20_000 }).toContain('over-ssh-23');
    expect(ui.pageErrors).toEqual([]);
  });
});
