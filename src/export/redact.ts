// Secret redaction for exports. Header values of Authorization, Proxy-Authorization, Cookie and Set-Cookie are
// secrets. In packet bytes (plain HTTP/1 payloads and decrypted HTTP/1 records) each value byte becomes 'x',
// keeping every length and TCP sequence number intact so Wireshark still dissects the stream; in HAR the value
// becomes "[redacted]". HTTP/2 header blocks in decrypted records are rewritten by redact-h2.ts. Known limits of
// pcapng exports: a header split across two TCP segments or records, and HTTP/2 in cleartext (h2c) on the wire,
// are left as they are; HAR exports redact everything they list.

export const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];
export const REDACTED = '[redacted]';

const HEADER_LINE = /(^|\n)(authorization|proxy-authorization|cookie|set-cookie)[ \t]*:[ \t]*([^\r\n]*)/gi;

export function isSecretHeader(name: string): boolean {
  return SECRET_HEADERS.includes(name.toLowerCase());
}

/** Returns a copy of `buf` with secret HTTP/1 header values overwritten by 'x', or null when none were found. */
export function redactHttp1Bytes(buf: Buffer): Buffer | null {
  if (buf.length < 8) return null;
  const text = buf.toString('latin1');
  HEADER_LINE.lastIndex = 0;
  let out: Buffer | null = null;
  for (let m = HEADER_LINE.exec(text); m; m = HEADER_LINE.exec(text)) {
    const value = m[3] ?? '';
    if (value.length === 0) continue;
    const start = m.index + m[0].length - value.length;
    out ??= Buffer.from(buf);
    out.fill(0x78, start, start + value.length);
  }
  return out;
}

export function redactHeaders(headers: [string, string][]): [string, string][] {
  return headers.map(([k, v]) => [k, isSecretHeader(k) ? REDACTED : v]);
}
