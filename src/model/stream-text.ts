// Bytes (as hex) shown as text: a followed stream the way Wireshark's "Follow stream" (ASCII) shows it, and hex
// dump lines. Used by the app (Stream and Hex tabs) and `tapscope follow`.

/** Printable ASCII, tabs and newlines kept, carriage returns dropped, every other byte a dot. */
export function streamText(hex: string): string {
  let out = '';
  for (let i = 0; i < hex.length; i += 2) {
    const c = parseInt(hex.slice(i, i + 2), 16);
    if (c === 13) continue;
    out += c === 10 || c === 9 || (c >= 32 && c < 127) ? String.fromCharCode(c) : '.';
  }
  return out;
}

/** Hex dump lines: offset (`offsetDigits` hex digits), `perLine` hex bytes, ASCII; the first `maxBytes` bytes. */
export function hexLines(hex: string, maxBytes = 4096, perLine = 16, offsetDigits = 6): { offset: string; hex: string; ascii: string }[] {
  const clean = hex.replace(/[^0-9a-f]/gi, '');
  const bytes: number[] = [];
  for (let i = 0; i + 1 < clean.length && bytes.length < maxBytes; i += 2) bytes.push(parseInt(clean.slice(i, i + 2), 16));
  const lines = [];
  for (let off = 0; off < bytes.length; off += perLine) {
    const chunk = bytes.slice(off, off + perLine);
    lines.push({
      offset: off.toString(16).padStart(offsetDigits, '0'),
      hex: chunk.map((b) => b.toString(16).padStart(2, '0')).join(' '),
      ascii: chunk.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join(''),
    });
  }
  return lines;
}
