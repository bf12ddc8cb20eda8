// One error type for everything the core reports to a person: a stable `code` for programs and tests,
// and a message that says what to do.
/**
 * Why a write failed for want of room, as a person reads it, for the errno codes that mean it (a full disk, a used-up
 * quota, a file size limit); null for any other. Exports and standard output both report these as E_DISK_FULL.
 */
export function noRoomReason(code: string | undefined): string | null {
  switch (code) {
    case 'ENOSPC': return 'no space left on device';
    case 'EDQUOT': return 'the disk quota is used up';
    case 'EFBIG': return 'the file would be larger than allowed (ulimit -f, or the file system\'s limit)';
    default: return null;
  }
}

export type TapscopeErrorCode =
  | 'E_USAGE'
  | 'E_FILTER_SYNTAX'
  | 'E_PCAPNG_MALFORMED'
  | 'E_PCAPNG_TRUNCATED'
  | 'E_FILE_NOT_FOUND'
  /** a file that is there but cannot be read: permission denied, a directory, an I/O error */
  | 'E_FILE_UNREADABLE'
  | 'E_SESSION_NOT_FOUND'
  | 'E_SESSION_BROKEN'
  | 'E_FLOW_NOT_FOUND'
  | 'E_TARGET_UNREACHABLE'
  | 'E_TARGET_INVALID'
  | 'E_HOST_KEY_UNKNOWN'
  | 'E_HOST_KEY_CHANGED'
  | 'E_AUTH_FAILED'
  | 'E_SUDO_REQUIRED'
  | 'E_NOT_PERMITTED'
  | 'E_KERNEL_UNSUPPORTED'
  | 'E_HELPER_MISSING'
  | 'E_HELPER_EXITED'
  | 'E_KUBECONFIG'
  | 'E_K8S_FORBIDDEN'
  | 'E_K8S_ADMISSION'
  | 'E_K8S_NODE_FAILED'
  | 'E_EXPORT'
  | 'E_CAPTURE_OUT'
  | 'E_DISK_FULL'
  | 'E_KEYLOG'
  | 'E_WIRESHARK_NOT_FOUND'
  | 'E_INTERNAL';

export class TapscopeError extends Error {
  readonly code: TapscopeErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: TapscopeErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TapscopeError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: TapscopeErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export function isTapscopeError(e: unknown, code?: TapscopeErrorCode): e is TapscopeError {
  return e instanceof TapscopeError && (code === undefined || e.code === code);
}
