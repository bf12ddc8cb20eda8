/* Implementation of keylog.h. */
#include "keylog.h"
#include "pcapng.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the longest line forwarded: a key log line is a label, a 64-digit client random and a secret of at most 48
 * bytes (about 200 characters); anything much longer is no key log line and is skipped */
#define LINE_MAX_BYTES 1024
/* a secrets block is written once this much waits, so a large backlog makes several blocks of bounded size */
#define BLOCK_BYTES (256u * 1024u)
/* how often a key log's path is looked at again for a file that replaced it (rotated, written anew) */
#define REOPEN_CHECK_NS 1000000000ull

struct keylog {
	const char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	off_t off;                  /* read up to here */
	char part[LINE_MAX_BYTES];  /* the start of a line whose newline has not come yet */
	size_t part_len;
	int skipping;               /* inside a line too long to forward: dropped up to its newline */
	uint64_t next_check;
};

static struct keylog logs[MAX_KEYLOGS];
static int n_logs;
static unsigned long long lines_out;
static struct sbuf pending;

unsigned long long keylog_lines(void) { return lines_out; }

int keylog_open(const char *path, char *why, size_t n)
{
	struct keylog *k;
	struct stat st;
	int fd;

	if (n_logs >= MAX_KEYLOGS) {
		snprintf(why, n, "too many key logs (at most %d)", MAX_KEYLOGS);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, n, "cannot read key log %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(why, n, "key log %s is not a regular file", path);
		close(fd);
		return -1;
	}
	k = &logs[n_logs++];
	memset(k, 0, sizeof(*k));
	k->path = path;
	k->fd = fd;
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	k->off = st.st_size;
	k->next_check = now_monotonic_ns() + REOPEN_CHECK_NS;
	return 0;
}

static void flush_pending(void)
{
	if (!pending.len)
		return;
	pcapng_dsb(PCAPNG_SECRETS_TLS_KEYLOG, pending.p, pending.len);
	sb_reset(&pending);
}

/* One complete line (without its newline): forwarded unless blank or a comment. */
static void line(const char *s, size_t n)
{
	if (n && s[n - 1] == '\r')
		n--;
	if (!n || s[0] == '#')
		return;
	sb_putn(&pending, s, n);
	sb_putc(&pending, '\n');
	lines_out++;
	if (pending.len >= BLOCK_BYTES)
		flush_pending();
}

static void take(struct keylog *k, const char *s, size_t n)
{
	while (n) {
		const char *nl = memchr(s, '\n', n);
		size_t len = nl ? (size_t)(nl - s) : n;

		if (k->skipping) {
			/* (the rest of a line over LINE_MAX_BYTES) */
		} else if (k->part_len + len > sizeof(k->part)) {
			logf_("key log %s: a line of more than %d bytes is no key log line; skipped", k->path, LINE_MAX_BYTES);
			k->skipping = 1;
			k->part_len = 0;
		} else if (nl && !k->part_len) {
			line(s, len);
		} else {
			memcpy(k->part + k->part_len, s, len);
			k->part_len += len;
			if (nl) {
				line(k->part, k->part_len);
				k->part_len = 0;
			}
		}
		if (!nl)
			return;
		k->skipping = 0;
		s = nl + 1;
		n -= len + 1;
	}
}

static void read_new(struct keylog *k)
{
	char buf[65536];
	struct stat st;

	if (fstat(k->fd, &st))
		return;
	if (st.st_size < k->off) {
		/* (truncated, e.g. emptied by the user or a log rotation that copies and truncates) */
		logf_("key log %s was truncated; following it from its start", k->path);
		k->off = 0;
		k->part_len = 0;
		k->skipping = 0;
	}
	while (k->off < st.st_size) {
		ssize_t r = pread(k->fd, buf, sizeof(buf), k->off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				logf_("key log %s: %s", k->path, strerror(errno));
			break;
		}
		take(k, buf, (size_t)r);
		k->off += r;
	}
}

/* A file that took the path's place (rotated, deleted and written anew): the old one is read to its end, then the
 * new one from its start. A path that is gone keeps the file open: a client may still be writing into it. */
static void reopen_if_replaced(struct keylog *k)
{
	struct stat st;
	int fd;

	if (stat(k->path, &st) || (st.st_dev == k->dev && st.st_ino == k->ino) || !S_ISREG(st.st_mode))
		return;
	fd = open(k->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	read_new(k);
	if (k->part_len)
		logf_("key log %s was replaced before its last line ended; that line is skipped", k->path);
	close(k->fd);
	k->fd = fd;
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	k->off = 0;
	k->part_len = 0;
	k->skipping = 0;
	logf_("key log %s was replaced; following the new file from its start", k->path);
}

void keylog_poll(void)
{
	uint64_t now = n_logs ? now_monotonic_ns() : 0;
	int i;

	for (i = 0; i < n_logs; i++) {
		struct keylog *k = &logs[i];

		read_new(k);
		if (now >= k->next_check) {
			reopen_if_replaced(k);
			k->next_check = now + REOPEN_CHECK_NS;
		}
		/* (one block per key log and poll: lines of one file stay together) */
		flush_pending();
	}
}
