// UI: a database connection's detail says who it logs in as (database, user, application), with the funnel that
// narrows the filter to that database — in Chromium over web mode with the real CoreService.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
import { openFileUi, type FileUi } from './support.js';

let app: FileUi;

function startup(params: string): Buffer {
  const p = Buffer.from(params);
  const m = Buffer.alloc(8 + p.length);
  m.writeUInt32BE(m.length, 0);
  m.writeUInt32BE(0x00030000, 4);
  p.copy(m, 8);
  return m;
}

beforeAll(async () => {
  app = await openFileUi('tsu-db-', (home) => {
    const b = new CaptureBuilder();
    tcpConversation(b, { ip: '10.9.5.1', port: 41001 }, { ip: '10.9.5.2', port: 5432 }, [startup('user\0billing\0database\0ledger\0application_name\0worker\0\0')], [Buffer.from('R\0\0\0\x08\0\0\0\0')]);
    tcpConversation(b, { ip: '10.9.5.1', port: 41002 }, { ip: '10.9.5.3', port: 5432 }, [startup('user\0app\0database\0orders\0\0')], [Buffer.from('R\0\0\0\x08\0\0\0\0')]);
    const file = join(home, 'db.pcapng');
    writeFileSync(file, b.build());
    return file;
  });
});

afterAll(async () => {
  await app?.close();
});

describe('a database connection\'s detail', () => {
  it('names the database, user and application, and filters to the database', async () => {
    const { page } = app.ui;
    await page.getByTestId('flow-row').filter({ hasText: '10.9.5.2' }).click();
    await expect.poll(async () => ((await page.getByTestId('db-login').textContent()) ?? '').replace(/\s+/g, ' ').trim(), { timeout: 10_000 })
      .toBe('ledger — as billing, from worker');
    await page.getByTestId('db-login').getByTestId('filter-on').click();
    await expect.poll(() => page.getByTestId('flow-row').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.getByTestId('filter').inputValue()).toBe('db.name == "ledger"');
    expect(app.ui.pageErrors).toEqual([]);
  });
});
