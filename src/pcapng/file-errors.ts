// What stops a capture file from being opened or read, said as a person reads it: the file named and why (missing,
// permission denied, a directory, an I/O error), with a stable code, instead of Node's errno text under a stack.
import { TapscopeError, isTapscopeError } from '../errors.js';

/**
 * `e`, thrown opening or reading the capture file at `path` (called `name` in the message), as a TapscopeError when it
 * is a system error; anything else (a TapscopeError already, a bug) as it is.
 */
export function captureFileError(e: unknown, path: string, name = path): unknown {
  if (isTapscopeError(e) || !(e instanceof Error)) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (typeof code !== 'string') return e;
  const details = { path: name, errno: code };
  switch (code) {
    case 'ENOENT':
      return new TapscopeError('E_FILE_NOT_FOUND', `no such file: ${name}`, details, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new TapscopeError('E_FILE_UNREADABLE', `${name} could not be opened: permission denied`, details, { cause: e });
    case 'EISDIR':
      return directoryError(name, e);
    default:
      return new TapscopeError('E_FILE_UNREADABLE', `${name} could not be read: ${e.message}`, details, { cause: e });
  }
}

/** A directory given (or found in a session) where a capture file should be. */
export function directoryError(name: string, cause?: unknown): TapscopeError {
  return new TapscopeError('E_FILE_UNREADABLE', `${name} is a directory, not a capture file`, { path: name, errno: 'EISDIR' }, cause === undefined ? undefined : { cause });
}
