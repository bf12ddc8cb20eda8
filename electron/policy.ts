// Security decisions of the Electron shell as pure functions, so they are table-tested without Electron:
// which links may leave for the system browser, and which IPC senders may call the core.

/** Only well-formed https: URLs (no embedded credentials) go to shell.openExternal. */
export function isSafeExternalUrl(raw: string): boolean {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return false;
  }
  return u.protocol === 'https:' && u.username === '' && u.password === '' && u.hostname.length > 0;
}

export interface SenderFacts {
  /** webContents id of the sender and of our window */
  senderId: number;
  windowId: number | null;
  /** URL of the frame that sent the message (null when the frame is gone) */
  frameUrl: string | null;
  /** the sending frame is the window's top frame */
  isMainFrame: boolean;
}

/** An IPC call is accepted only from our window's top frame showing our own renderer page. */
export function isTrustedSender(f: SenderFacts, rendererUrl: string): boolean {
  if (f.windowId === null || f.senderId !== f.windowId || !f.isMainFrame || f.frameUrl === null) return false;
  // why: the renderer may change its #hash (and the query it was loaded with); the document must be ours.
  const strip = (s: string) => s.split('#')[0]?.split('?')[0] ?? '';
  return strip(f.frameUrl) === strip(rendererUrl);
}
