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

/* IPv6 extension headers, walked as the core's decodeIpv6 does: the ones a packet's transport header can follow
 * (hop-by-hop, routing, destination options, mobility, HIP, shim6; fragment; authentication). IPv6 BIG TCP puts a
 * hop-by-hop jumbo header on every packet over 64 KiB. */
#define IP6_EXT_HOPS 16
static inline int ip6_is_ext(uint8_t nh)
{
	return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60 || nh == 135 || nh == 139 || nh == 140;
}
/* Walks an IPv6 packet's extension headers (its fixed header at net, len bytes of it captured) to the header after
 * them: that header's protocol, with *l4off at it (40 without extension headers). A fragment after the first stops
 * the walk at its fragment header: 44, with *l4off there (what follows it is no transport header). -1 when the
 * packet is not IPv6, or is cut within its extension headers, or has more than IP6_EXT_HOPS of them. The one walk
 * of the helper's own parsing (afpacket.c) and of the capture filter's view of such packets (filter.c). */
int ip6_transport(const uint8_t *net, uint32_t len, uint32_t *l4off);

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
	uint64_t tls_calls_lost; /* TLS calls whose record never left the kernel (STAT_START_FULL + STAT_NO_ENTRY) */
	uint64_t tls_read_fails; /* records written without their plaintext (STAT_READ_FAILS) */
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
