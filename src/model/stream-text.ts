// A followed stream's bytes as text, the way Wireshark's "Follow stream" (ASCII) shows them: printable ASCII,
// tabs and newlines kept, carriage returns dropped, every other byte a dot. Used by the app's Stream tab and
// `tapscope follow`.
export function streamText(hex: string): string {
  let out = '';
  for (let i = 0; i < hex.length; i += 2) {
    const c = parseInt(hex.slice(i, i + 2), 16);
    if (c === 13) continue;
    out += c === 10 || c === 9 || (c >= 32 && c < 127) ? String.fromCharCode(c) : '.';
  }
  return out;
}
