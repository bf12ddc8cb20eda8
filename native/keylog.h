/* Key logs on this node (--keylog PATH): TLS clients here write their secrets (SSLKEYLOGFILE) after each
 * handshake; the helper follows each file as they append to it and writes the lines into its output as
 * decryption secrets blocks (native/FORMAT.md), so the reader decrypts the connections captured here. */
#ifndef TAPSCOPE_KEYLOG_H
#define TAPSCOPE_KEYLOG_H

#include <stddef.h>

/* Opens a key log at its current end (lines from before the capture are of connections whose handshakes it
 * did not see). 0, or -1 with why (no such file, not readable, not a regular file). */
int keylog_open(const char *path, char *why, size_t n);
/* Writes the complete lines appended to each key log since the last call as one secrets block per key log. */
void keylog_poll(void);
/* Lines written into the output so far. */
unsigned long long keylog_lines(void);

#endif
