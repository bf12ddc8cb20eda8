// Table tests for the Electron shell's link and IPC-sender policy.
import { describe, expect, it } from 'vitest';
import { isSafeExternalUrl, isTrustedSender } from './policy.js';

describe('isSafeExternalUrl', () => {
  const cases: [string, boolean][] = [
    ['https://github.com/tapscope/tapscope', true],
    ['https://example.com/a?b=c#d', true],
    ['http://example.com', false],
    ['file:///etc/passwd', false],
    ['javascript:alert(1)', false],
    ['smb://host/share', false],
    ['https://user:pw@example.com', false],
    ['not a url', false],
    ['HTTPS://EXAMPLE.COM', true],
  ];
  for (const [url, ok] of cases) it(`${ok ? 'allows' : 'refuses'} ${url}`, () => expect(isSafeExternalUrl(url)).toBe(ok));
});

describe('isTrustedSender', () => {
  const page = 'file:///opt/Tapscope/resources/app.asar/dist/renderer/index.html';
  const base = { senderId: 3, windowId: 3, frameUrl: page, isMainFrame: true };
  const cases: [string, Parameters<typeof isTrustedSender>[0], boolean][] = [
    ['our top frame', base, true],
    ['our top frame with a hash', { ...base, frameUrl: `${page}#flows` }, true],
    ['another webContents', { ...base, senderId: 4 }, false],
    ['no window yet', { ...base, windowId: null }, false],
    ['a subframe', { ...base, isMainFrame: false }, false],
    ['a frame that navigated away', { ...base, frameUrl: 'https://evil.example/' }, false],
    ['another local file', { ...base, frameUrl: 'file:///tmp/evil.html' }, false],
    ['a destroyed frame', { ...base, frameUrl: null }, false],
  ];
  for (const [name, facts, ok] of cases) it(`${ok ? 'accepts' : 'refuses'} ${name}`, () => expect(isTrustedSender(facts, page)).toBe(ok));
});
