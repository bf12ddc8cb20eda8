// A stand-in for Wireshark's window: a `wireshark` script mapping its command line (`-k -i -` for a live pipe, `-r FILE`)
// onto tshark, so what Wireshark would read is read by Wireshark's own engine. What it read goes to $WS_OUT, the stand-in's
// errors to $WS_OUT.err (written when it starts).
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TSHARK_TLS_PORTS, run } from './lab.js';
import { until } from './until.js';

/** Writes the stand-in into `dir` and returns its path. */
export function wiresharkStandIn(dir: string): string {
  const path = join(dir, 'wireshark');
  writeFileSync(path, [
    '#!/bin/sh',
    'if [ "$1" = "-k" ] && [ "$2" = "-i" ] && [ "$3" = "-" ]; then exec tshark -i - -w "$WS_OUT" 2>"$WS_OUT.err"; fi',
    'if [ "$1" = "-r" ]; then cp "$2" "$WS_OUT" && exec tshark -r "$2" -c 1 >/dev/null 2>"$WS_OUT.err"; fi',
    'echo "unexpected arguments: $*" >&2; exit 2',
  ].join('\n'));
  chmodSync(path, 0o755);
  return path;
}

/** Waits until the stand-in reading a live pipe into `out` has exited (its pipe ended). */
export async function pipeReaderEnded(out: string): Promise<void> {
  await until('the stand-in reading the pipe to end', async () => (await run('pgrep', ['-f', `tshark -i - -w ${out}`])).code === 1, 300);
}

/** Connections in a capture file whose ClientHello names `sni`, as tshark counts them. */
export async function helloCount(file: string, sni: string): Promise<number> {
  const r = await run('tshark', ['-r', file, ...TSHARK_TLS_PORTS, '-Y', `tls.handshake.extensions_server_name == "${sni}"`, '-T', 'fields', '-e', 'frame.number'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`tshark -r ${file}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).length;
}
