// Text from the wire (hosts, paths, SNIs, process names, a crafted capture's records) shown on a terminal: its control
// characters are written as escapes, as tshark does, so bytes a peer chose cannot drive the terminal (ESC sequences
// that retitle the window, clear the screen or move the cursor), break a table's lines, or reorder what is shown
// (the bidirectional overrides).

// C0 controls, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates
/* eslint-disable no-control-regex -- control characters are what these match */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_NEWLINE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_LAYOUT = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

function escape(c: string): string {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
}

/**
 * `s` with its control characters written as \xHH (\u{HHHH} for the bidirectional ones). `keep`: 'newlines' keeps "\n"
 * (a message of several lines); 'layout' keeps "\n", "\r" and "\t" (a body shown as a block of text, where they do
 * no more than lay it out).
 */
export function printable(s: string, keep: 'none' | 'newlines' | 'layout' = 'none'): string {
  if (!UNSAFE.test(s)) return s;
  return s.replace(keep === 'newlines' ? UNSAFE_BUT_NEWLINE : keep === 'layout' ? UNSAFE_BUT_LAYOUT : UNSAFE_ALL, escape);
}
