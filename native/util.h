/* Small shared pieces of the helper: a growable string buffer with JSON escaping, clocks, logging,
 * and the global options and counters every part reads. */
#ifndef TAPSCOPE_UTIL_H
#define TAPSCOPE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#ifndef TAPSCOPE_VERSION
#define TAPSCOPE_VERSION "0.0.0"
#endif

#define MAX_IFACES 32
#define MAX_EXCLUDES 16

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
};

void sb_reset(struct sbuf *b);
void sb_free(struct sbuf *b);
void sb_putc(struct sbuf *b, char c);
void sb_puts(struct sbuf *b, const char *s);
void sb_putn(struct sbuf *b, const char *s, size_t n);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* appends a JSON string literal (with quotes), or null when s is NULL */
void sb_json_str(struct sbuf *b, const char *s);
/* appends n strings as JSON string literals separated by commas (the elements of an array) */
void sb_json_strs(struct sbuf *b, const char *const *s, int n);

uint64_t now_realtime_ns(void);
uint64_t now_monotonic_ns(void);
/* converts a CLOCK_MONOTONIC timestamp (bpf_ktime_get_ns) to wall clock */
uint64_t mono_to_real_ns(uint64_t mono);
void clock_sync(void);

void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define warnx_(...) logf_(__VA_ARGS__)

#define MAX_KEYLOGS 8

struct exclude {
	int family;         /* AF_INET / AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
};

struct options {
	const char *mode;        /* auto | ebpf | afpacket */
	const char *ifaces[MAX_IFACES];
	int n_ifaces;            /* 0 = any */
	double duration;         /* seconds, 0 = until stopped */
	uint32_t snaplen;
	uint32_t ring_mb;
	uint32_t ringbuf_mb;
	uint32_t max_tls_record;
	struct exclude excludes[MAX_EXCLUDES];
	int n_excludes;
	const char *filter;      /* --filter: tcpdump syntax, NULL = everything */
	const char *keylogs[MAX_KEYLOGS]; /* --keylog: key logs on this node, followed into secrets blocks */
	int n_keylogs;
};

struct counters {
	uint64_t packets, bytes, ring_drops, snaplen_cuts, excluded, filtered;
	uint64_t filter_cuts; /* of the packets filtered: those the kernel had cut to their headers (FILTER_CUT) */
	uint64_t tls_events, tls_bytes, tls_truncated, ringbuf_drops, tls_conn_unknown;
	uint64_t conns, procs, hooks_attached, hooks_failed;
};

extern struct options opts;
extern struct counters ctr;
extern volatile sig_atomic_t stop_requested;
extern uint64_t capture_start_ns;
/* inode of the helper's network namespace (the one its packet sockets capture), 0 = unknown */
extern uint32_t capture_netns;

/* Long synchronous work (walking /proc, attaching uprobes) calls this now and then: it drains the capture
 * ring (the hook main installs), so a stall of tens of ms does not overflow the ring and drop packets. */
extern void (*capture_yield_hook)(void);
void capture_yield(void);

#endif
