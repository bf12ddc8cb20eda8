#!/usr/bin/env node
// The `tapscope` command line: capture, flows, libraries, export, sessions, serve, clean.
// Errors print as one line `tapscope: <message> (<code>)`; exit 1, or 2 for usage errors (a filter that does not parse too).
import { TapscopeError, isTapscopeError } from '../errors.js';
import { packageVersion } from '../util/paths.js';
import { USAGE, parseCommand } from './args.js';
import { filterMark } from './flows-output.js';
import { printable } from '../util/printable.js';
import { stdoutError } from './stdout-error.js';

async function main(argv: string[]): Promise<number> {
  const command = parseCommand(argv);
  switch (command.cmd) {
    case 'help':
      process.stdout.write(`${command.topic === 'filter' ? (await import('../filter/index.js')).filterHelp() : USAGE}\n`);
      return 0;
    case 'version':
      process.stdout.write(`tapscope ${packageVersion()}\n`);
      return 0;
    default: {
      const { runCommand } = await import('./commands.js');
      return runCommand(command);
    }
  }
}

// why: a reader that stops early (`tapscope flows FILE | head`) closes the pipe; like other Unix tools,
// stop quietly and successfully instead of reporting the failed write
process.stdout.on('error', (e: NodeJS.ErrnoException & { stopsCapture?: boolean }) => {
  if (e.code !== 'EPIPE') {
    // why: `> /dev/full` or a full disk fails the command: said in one line as its other errors are, not as a crash
    // with a stack (once: a command that saw the failed write has reported it by now). `capture --out -` marks it: it
    // stops the capture, saves the session and fails with it itself
    setImmediate(() => {
      if (e.stopsCapture) return;
      report(stdoutError(e));
      process.exit();
    });
    return;
  }
  // (`capture --out -` listens too, after this listener, and marks the error: it stops the capture and saves the
  // session first)
  setImmediate(() => { if (!e.stopsCapture) process.exit(0); });
});

/** Set once the command's error is printed: one error line per run. */
let reported = false;

function report(e: unknown): void {
  if (reported) return;
  reported = true;
  const err = isTapscopeError(e) ? e : new TapscopeError('E_INTERNAL', e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.stderr.write(`tapscope: ${printable(err.message, 'newlines')} (${err.code})\n${err.code === 'E_FILTER_SYNTAX' ? filterMark(err.details) : ''}`);
  // (a filter that does not parse is a usage error, as a bad --capture-filter is, and as tshark exits 2 for a bad -Y: a
  // script tells a typo from a damaged capture, exit 1)
  process.exitCode = err.code === 'E_USAGE' || err.code === 'E_FILTER_SYNTAX' ? 2 : 1;
}

main(process.argv.slice(2)).then(
  (code) => { if (!reported) process.exitCode = code; },
  report,
);
