// Shared set-up for the UI tests: make sure the renderer is built, start web mode on a service, open
// Chromium on it, and collect page errors so a test fails on any uncaught renderer exception.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startWebServer, type ApiService, type WebServer } from '../../src/server/index.js';
import { launchBrowser } from './browser.js';

export function ensureRendererBuilt(): void {
  if (existsSync(join(process.cwd(), 'dist', 'renderer', 'index.html'))) return;
  execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'error'], { stdio: 'inherit' });
}

export interface UiHarness {
  server: WebServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  pageErrors: string[];
  close(): Promise<void>;
}

export async function openUi(service: ApiService, opts: { colorScheme?: 'light' | 'dark'; openSessionId?: string } = {}): Promise<UiHarness> {
  ensureRendererBuilt();
  const uploadDir = mkdtempSync(join(tmpdir(), 'tsu-uploads-'));
  const server = await startWebServer(opts.openSessionId ? { service, uploadDir, openSessionId: opts.openSessionId } : { service, uploadDir });
  const browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: opts.colorScheme ?? 'light', acceptDownloads: true });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url);
  return {
    server,
    browser,
    context,
    page,
    pageErrors,
    async close() {
      await browser.close().catch(() => undefined);
      await server.close();
      rmSync(uploadDir, { recursive: true, force: true });
    },
  };
}
