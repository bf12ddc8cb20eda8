// The error of a write to standard output that failed for another reason than its reader going away (EPIPE, which
// ends a command quietly): `> /dev/full`, a full disk, a device error.
import { TapscopeError, isTapscopeError, noRoomReason } from '../errors.js';

export function stdoutError(e: unknown): TapscopeError {
  if (isTapscopeError(e)) return e;
  const err = e as NodeJS.ErrnoException;
  const full = noRoomReason(err.code) !== null;
  // (Node's text ends with the call: "ENOSPC: no space left on device, write")
  const text = err.code ? err.message.replace(/, \w+$/, '') : err.message;
  return new TapscopeError(full ? 'E_DISK_FULL' : 'E_EXPORT', `cannot write standard output: ${text}`, err.code ? { errno: err.code } : undefined, { cause: e });
}
