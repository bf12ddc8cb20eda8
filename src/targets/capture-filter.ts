// Checking a capture filter before a capture starts, as Wireshark colours its capture filter field: this machine's
// helper compiles it (`--filter EXPR --check-filter`: libpcap, as each node's helper will, no privileges needed).
// Where no helper runs here (a macOS or Windows laptop), the nodes' helpers check it when the capture starts.
import { execFile } from 'node:child_process';
import { machine } from 'node:os';
import { builtHelper } from './deploy.js';

export type CaptureFilterCheck =
  | { ok: true }
  | { ok: false; message: string }
  /** not checked here: the nodes check it when the capture starts */
  | { ok: null; message: string };

const LATER = "each node's helper checks it when the capture starts";

export function checkCaptureFilter(filter: string, helperPath?: string): Promise<CaptureFilterCheck> {
  const f = filter.trim();
  if (!f) return Promise.resolve({ ok: true });
  // (os.machine() is `uname -m`, as builtHelper takes it)
  const helper = process.platform === 'linux' ? builtHelper(machine(), helperPath) : null;
  if (!helper) return Promise.resolve({ ok: null, message: `no capture helper runs on this machine; ${LATER}` });
  return new Promise((resolve) => {
    execFile(helper, ['--filter', f, '--check-filter'], { timeout: 10_000, encoding: 'utf8' }, (err, _out, stderr) => {
      // (an exit status is a number code; a spawn failure's is a string such as ENOENT)
      const code: unknown = (err as { code?: unknown } | null)?.code;
      if (!err) resolve({ ok: true });
      else if (code === 1) resolve({ ok: false, message: stderr.trim().replace(/^tapscope-helper: bad --filter '[^]*?': /, '') || 'libpcap cannot compile it' });
      else resolve({ ok: null, message: `could not check it here (${err.message}); ${LATER}` });
    });
  });
}
