/* Implementation of util.h: string buffer, JSON escaping, clocks, stderr logging. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct options opts;
struct counters ctr;
volatile sig_atomic_t stop_requested;
void (*capture_yield_hook)(void);

void capture_yield(void)
{
	static int depth;

	/* why: the hook may itself end up in code that yields; never recurse */
	if (!capture_yield_hook || depth)
		return;
	depth++;
	capture_yield_hook();
	depth--;
}
uint64_t capture_start_ns;
uint32_t capture_netns;

static int64_t mono_to_real_offset;

static void sb_grow(struct sbuf *b, size_t need)
{
	size_t cap;
	char *p;

	if (b->len + need + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + need + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		fprintf(stderr, "tapscope-helper: out of memory\n");
		exit(4);
	}
	b->p = p;
	b->cap = cap;
}

void sb_reset(struct sbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = 0;
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void sb_putc(struct sbuf *b, char c)
{
	sb_grow(b, 1);
	b->p[b->len++] = c;
	b->p[b->len] = 0;
}

void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	sb_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void sb_puts(struct sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_json_str(struct sbuf *b, const char *s)
{
	const unsigned char *c;

	if (!s) {
		sb_puts(b, "null");
		return;
	}
	sb_putc(b, '"');
	for (c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"': sb_puts(b, "\\\""); break;
		case '\\': sb_puts(b, "\\\\"); break;
		case '\n': sb_puts(b, "\\n"); break;
		case '\r': sb_puts(b, "\\r"); break;
		case '\t': sb_puts(b, "\\t"); break;
		default:
			if (*c < 0x20 || *c == 0x7f)
				sb_printf(b, "\\u%04x", *c);
			else
				sb_putc(b, (char)*c);
		}
	}
	sb_putc(b, '"');
}

void sb_json_strs(struct sbuf *b, const char *const *s, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (i)
			sb_putc(b, ',');
		sb_json_str(b, s[i]);
	}
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t now_realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }
uint64_t now_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

void clock_sync(void)
{
	uint64_t m1 = now_monotonic_ns(), r = now_realtime_ns(), m2 = now_monotonic_ns();

	mono_to_real_offset = (int64_t)r - (int64_t)(m1 + (m2 - m1) / 2);
}

uint64_t mono_to_real_ns(uint64_t mono)
{
	return (uint64_t)((int64_t)mono + mono_to_real_offset);
}

void logf_(const char *fmt, ...)
{
	va_list ap;

	fputs("tapscope-helper: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ip6_transport(const uint8_t *net, uint32_t len, uint32_t *l4off)
{
	uint32_t off = 40;
	uint8_t nh;
	int hops;

	if (len < 40 || (net[0] >> 4) != 6)
		return -1;
	nh = net[6];
	for (hops = 0; ip6_is_ext(nh); hops++) {
		if (hops == IP6_EXT_HOPS || len < off + 8)
			return -1;
		if (nh == 44) {
			if ((net[off + 2] << 8 | net[off + 3]) & 0xfff8)
				break;
			nh = net[off];
			off += 8;
		} else if (nh == 51) {
			nh = net[off];
			off += ((uint32_t)net[off + 1] + 2) * 4;
		} else {
			nh = net[off];
			off += ((uint32_t)net[off + 1] + 1) * 8;
		}
	}
	*l4off = off;
	return nh;
}
