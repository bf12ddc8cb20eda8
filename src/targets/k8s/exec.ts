// Pod exec over the API server's WebSocket (client-node's Exec, v5.channel.k8s.io when the server has it):
// one-shot commands with collected output, and long-running streams whose stdout is the helper's pcapng.
import { PassThrough, Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

export interface ExecStream {
  stdout: PassThrough;
  stderr: PassThrough;
  /** Ending it closes the command's stdin (v5) or the stream (v4): the run script then stops the helper. */
  stdin: PassThrough;
  /** Exit code (0 on Success), or null when the stream ended without a status (connection lost). */
  exit: Promise<number | null>;
  close(): void;
  /**
   * A TTY stream's terminal size, sent on the resize channel at once: before anything written to stdin after it
   * (client-node's own resize queue and stdin each send when their stream emits, in no set order: a command typed
   * right after a resize could run at the old size)
   */
  resize?(cols: number, rows: number): void;
}

/** The resize channel's message (the API server reads its keys case-insensitively). */
function sizeFrame(cols: number, rows: number): Buffer {
  return Buffer.concat([Buffer.of(4), Buffer.from(JSON.stringify({ Width: cols, Height: rows }))]);
}

/**
 * Opens an exec WebSocket. client-node rejects with the socket's error event, not an Error: turned into
 * one, with the HTTP status of a refused upgrade as `code` so k8sError words it like any API answer.
 */
async function openExec(kc: KubeConfig, ...args: Parameters<Exec['exec']>): ReturnType<Exec['exec']> {
  try {
    return await new Exec(kc).exec(...args);
  } catch (e) {
    if (e instanceof Error) throw e;
    const message = String((e as { message?: unknown })?.message ?? e);
    const status = /Unexpected server response: (\d{3})/.exec(message)?.[1];
    throw Object.assign(new Error(message), status ? { code: Number(status), body: { message } } : {});
  }
}

function exitCode(st: V1Status | null): number | null {
  if (!st) return null;
  if (st.status === 'Success') return 0;
  const cause = st.details?.causes?.find((c) => c.reason === 'ExitCode');
  return cause?.message ? Number(cause.message) : 1;
}

/**
 * Starts a command in a pod; resolves once the WebSocket is open. Without `stdout` (a TTY stream the
 * caller owns), output gets backpressure: client-node writes every frame regardless, so when the
 * reader falls behind the WebSocket's socket is paused until the reader drains the buffer.
 */
export async function execStream(kc: KubeConfig, ns: string, pod: string, container: string, command: string[], tty = false, stdout?: PassThrough): Promise<ExecStream> {
  let socket: { pause(): void; resume(): void } | null = null;
  const out = stdout ?? new PassThrough({ highWaterMark: 1 << 20 });
  const sink = stdout ?? new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (!out.write(chunk)) socket?.pause();
      cb();
    },
    final(cb) {
      out.end();
      cb();
    },
  });
  if (!stdout) out.on('drain', () => socket?.resume());
  const err = new PassThrough();
  const stdin = new PassThrough();
  let status: V1Status | null = null;
  const ws = await openExec(kc, ns, pod, container, command, sink, tty ? null : err, stdin, tty, (s) => {
    status = s;
  });
  // why: `ws` keeps its net.Socket private; pausing it is the only way to stop reading frames.
  socket = (ws as unknown as { _socket?: { pause(): void; resume(): void } })._socket ?? null;
  const exit = new Promise<number | null>((resolve) => {
    ws.on('close', () => {
      if (!sink.writableEnded) sink.end();
      if (!err.writableEnded) err.end();
      resolve(exitCode(status));
    });
  });
  const s: ExecStream = { stdout: out, stderr: err, stdin, exit, close: () => ws.close() };
  if (tty) {
    s.resize = (cols, rows) => ws.send(sizeFrame(cols, rows));
    // (the size a terminal starts with, as kubectl sends its own)
    s.resize(80, 24);
  }
  return s;
}

export interface ExecResult { code: number | null; stdout: Buffer; stderr: string }

/**
 * Runs a command to completion. `input` is written to stdin, which is then left open: a v4 stream cannot
 * signal end-of-input without closing, so commands read exactly the bytes they expect (head -c).
 */
export async function execCollect(kc: KubeConfig, ns: string, pod: string, container: string, command: string[], input?: Buffer): Promise<ExecResult> {
  const chunks: Buffer[] = [];
  const errs: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({ write(c: Buffer, _e, cb) { into.push(c); cb(); } });
  const stdin = new PassThrough();
  let status: V1Status | null = null;
  const ws = await openExec(kc, ns, pod, container, command, sink(chunks), sink(errs), stdin, false, (s) => {
    status = s;
  });
  if (input) stdin.write(input);
  await new Promise<void>((resolve) => ws.on('close', () => resolve()));
  stdin.destroy();
  return { code: exitCode(status), stdout: Buffer.concat(chunks), stderr: Buffer.concat(errs).toString('utf8') };
}
