// `npm start` where Electron cannot run (no display here, no Electron binary): one line saying why,
// then the same UI in web mode on 127.0.0.1 with a token URL that really serves the app.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureRendererBuilt } from './support.js';

const home = mkdtempSync(join(tmpdir(), 'tsu-start-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('npm start fallback', () => {
  it('explains in one line why Electron cannot start and serves web mode', async () => {
    ensureRendererBuilt();
    if (!existsSync(join(process.cwd(), 'dist', 'src', 'server', 'index.js'))) execFileSync('npm', ['run', 'build:core'], { stdio: 'inherit' });
    const env: NodeJS.ProcessEnv = { ...process.env, TAPSCOPE_HOME: home };
    delete env.DISPLAY;
    delete env.WAYLAND_DISPLAY;
    const child = spawn(process.execPath, ['scripts/start.mjs'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const rl = createInterface({ input: child.stdout });
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no URL printed: ${lines.join('\n')}`)), 30_000);
      rl.on('line', (l) => {
        lines.push(l);
        if (l.startsWith('http://')) {
          clearTimeout(t);
          resolve(l);
        }
      });
      child.once('exit', (code) => reject(new Error(`start.mjs exited ${code}: ${lines.join('\n')}`)));
    });
    try {
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^Electron cannot start here \((no display|Electron binary not downloaded)( \/ .+)?\); serving the same UI in web mode$/);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32,}$/);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Tapscope</title>');
      expect((await fetch(url.replace(/\?token=.*/, ''))).status).toBe(403);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
