// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Kernel side of the capture helper's eBPF mode:
 *  - TLS uprobes (OpenSSL/BoringSSL, GnuTLS, NSS): entry saves the call in `start` keyed by thread,
 *    return emits the plaintext; the return path always deletes the entry.
 *  - syscall tracepoints reveal the fd a TLS call uses (read/write/send/recv family) -> 5-tuple, and on an
 *    unconnected UDP socket (a DTLS server's) the peer its datagram names -> the tuple's remote end.
 *  - connect/accept tracepoints attribute connections to processes; sched_process_exec announces
 *    new processes and open/openat of files named like TLS libraries announce libraries being loaded,
 *    so user space can hook them.
 * On any miss: return 0 and count it in `stats`. Never print. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tapscope.h"
#include "sock.h"
#include "arch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 max_tls_record = 16384;
const volatile __u32 self_tgid = 0;

struct tls_call {
	__u64 buf;
	__u64 outlen_ptr; /* size_t * of the *_ex functions, else 0 */
	__u64 ctx;        /* SSL * / gnutls_session_t / PRFileDesc * */
	__s32 fd;         /* first fd the call touched, -1 until known */
	__u32 nest;
	__u8 lib;
	__u8 fn;
	__u8 dir_out;
	__u8 active; /* 0: the thread's slot is kept for its next call (no call in flight) */
	__u8 from_msg; /* from is a struct msghdr * (recvmsg), not a struct sockaddr * (recvfrom) */
	__u8 pad[3];
	/* why the peer: an unconnected UDP socket (a DTLS server's) has no remote end; each datagram names its own,
	 * in the sendto/sendmsg that sends it and in the recvfrom/recvmsg that returns it */
	__u64 from;       /* where a recvfrom/recvmsg on fd in flight writes the sender, read at its exit; 0 = none */
	struct peer peer; /* the remote end of the last datagram on fd in this call (family 0: none) */
};

struct ctx_key {
	__u64 ctx;
	__u32 tgid;
	__u32 pad;
};

/* why LRU: a thread that exits (or blocks forever) inside a TLS call never reaches the return probe;
 * its entry must not pin a slot for the life of the capture. why a kept slot (`active`) instead of
 * insert + delete per call: LRU map updates are the largest part of a probe's cost, and a thread
 * that made one TLS call makes many */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tls_call);
} start SEC(".maps");

/* TLS context -> connection. Deleted when the library frees the object (SSL_free, SSL_clear,
 * gnutls_deinit, PR_Close): addresses are reused for new connections. */
struct ctx_conn {
	struct tuple t;
	__u64 file; /* struct file * of fd when learned (0 unless CONN_FD): a later call on the same open
		     * file needs no socket walk */
	__s32 fd;
	__u8 via; /* CONN_FD / CONN_THREAD_READ / CONN_THREAD_WRITE */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ctx_key);
	__type(value, struct ctx_conn);
} ctx_tuples SEC(".maps");

/* (tgid, fd) -> the context that knows this socket as its connection: a guess must not give a socket
 * to a second live context */
struct fd_key {
	__u32 tgid;
	__s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fd_key);
	__type(value, __u64);
} fd_owner SEC(".maps");

/* Per thread that made TLS calls, for libraries that encrypt into memory and do socket I/O outside
 * the call (node: libuv reads the socket, then feeds SSL_read; SSL_write fills a buffer libuv writes
 * right after). last_rfd: the TCP socket the thread read last outside TLS calls, consumed by the next
 * memory-BIO read; pending: a context whose write went out without a connection, resolved by the
 * thread's next TCP socket write within PENDING_NS; blocked: two contexts wrote before any socket
 * write, so the next socket write is ambiguous and resolves nothing. */
struct thread_state {
	__u64 pending_ctx;
	__u64 pending_ns;
	__u64 tcp_file; /* struct file * of the last TCP socket the thread read: its next read needs no walk */
	__s32 last_rfd;
	__u8 has_pending;
	__u8 blocked;
	__u8 pad[2];
};

#define PENDING_NS (100ull * 1000000ull)

/* Processes that map a TLS library (or carry one, as node does), marked by user space as it hooks them: their
 * threads get a thread_state at their first TCP socket read, not only at their first TLS call (see note_fd). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} tls_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __s32);
} connects SEC(".maps");

/* bind() in flight: thread -> fd (a UDP socket bound and not connected, a server's, is named by no connect or accept) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __s32);
} binds SEC(".maps");

/* sendto/sendmsg/sendmmsg in flight on a UDP socket with no local port yet: thread -> fd (see autobind_at_entry) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __s32);
} autobinds SEC(".maps");

/* How many entries autobinds holds, as from_waits below: the exits of every send call on the node look it up only
 * when one is in flight (almost never: once per socket the kernel binds). An entry the LRU map drops, or one of a
 * thread that died in its call, keeps the count above 0: then only the lookup's cost returns (57 -> ~80 ns an exit) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} autobind_waits SEC(".maps");

/* How many TLS calls wait at a recvfrom/recvmsg's exit for the sender it writes (tls_call.from set). why: those exit
 * tracepoints run for every recvfrom/recvmsg on the node; with a `start` lookup each run took 81-86 ns, with this
 * count (0 almost always) 58 ns, an empty program's time (native/README.md). A slot lost with `from` set (LRU
 * eviction) leaves the count above 0: then only the lookup's cost returns */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} from_waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_event);
} heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += n;
}

static __always_inline int tuple_eq(const struct tuple *a, const struct tuple *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	int i;

	for (i = 0; i < (int)(sizeof(struct tuple) / 8); i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

/* 1 when socket fd (now tuple t) is the known connection of another live context of this process */
static __always_inline int owned_by_other(__u32 tgid, int fd, __u64 ctx, const struct tuple *t)
{
	struct fd_key fk = {.tgid = tgid, .fd = fd};
	struct ctx_key ok = {};
	struct ctx_conn *oc;
	__u64 *owner = bpf_map_lookup_elem(&fd_owner, &fk);

	if (!owner || *owner == ctx)
		return 0;
	ok.ctx = *owner;
	ok.tgid = tgid;
	oc = bpf_map_lookup_elem(&ctx_tuples, &ok);
	return oc && oc->fd == fd && tuple_eq(&oc->t, t);
}

/* Remembers ctx's connection. A socket seen inside the call (CONN_FD) overrides a guess another
 * context made for the same socket. */
static __always_inline void learn(__u32 tgid, __u64 ctx, int fd, const struct tuple *t, __u8 via, __u64 file)
{
	struct ctx_key k = {.ctx = ctx, .tgid = tgid};
	struct fd_key fk = {.tgid = tgid, .fd = fd};
	struct ctx_conn c = {};
	__u64 *owner = bpf_map_lookup_elem(&fd_owner, &fk);

	if (via == CONN_FD && owner && *owner != ctx) {
		struct ctx_key ok = {.ctx = *owner, .tgid = tgid};
		struct ctx_conn *oc = bpf_map_lookup_elem(&ctx_tuples, &ok);

		if (oc && oc->fd == fd && oc->via != CONN_FD)
			bpf_map_delete_elem(&ctx_tuples, &ok);
	}
	/* why: the common case is a call on a connection the object already knows; two map updates per
	 * record were most of the return probe's cost */
	if (owner && *owner == ctx) {
		struct ctx_conn *cur = bpf_map_lookup_elem(&ctx_tuples, &k);

		if (cur && cur->fd == fd && cur->via == via && cur->file == file && tuple_eq(&cur->t, t))
			return;
	}
	c.t = *t;
	c.file = file;
	c.fd = fd;
	c.via = via;
	bpf_map_update_elem(&ctx_tuples, &k, &c, BPF_ANY);
	if (!owner || *owner != ctx)
		bpf_map_update_elem(&fd_owner, &fk, &ctx, BPF_ANY);
}

static __always_inline void fill_hdr(struct event_hdr *h, __u32 kind, __u64 id)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	h->kind = kind;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	/* why: the same 5-tuple can exist in several network namespaces (pods' own loopback); the core keeps
	 * records of a namespace other than the capture's apart. 0 when the task has no nsproxy (exiting) */
	h->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	h->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* A ring buffer event of type T, its header filled for `kind`, or NULL with the drop counted (ring buffer full).
 * (a macro: the reserve's size must be a constant the verifier sees) */
#define reserve_event(T, kind, id)                                          \
	({                                                                    \
		T *__e = bpf_ringbuf_reserve(&events, sizeof(T), 0);          \
		if (__e)                                                      \
			fill_hdr(&__e->hdr, (kind), (id));                    \
		else                                                          \
			count(STAT_RINGBUF_DROPS, 1);                         \
		__e;                                                          \
	})

/* Sets where the call's recvfrom/recvmsg in flight writes its sender (0: nowhere), keeping from_waits counted */
static __always_inline void set_from(struct tls_call *c, __u64 from, __u8 is_msg)
{
	__u32 zero = 0;
	__s64 *w = bpf_map_lookup_elem(&from_waits, &zero);

	if (w && !c->from && from)
		__sync_fetch_and_add(w, 1);
	else if (w && c->from && !from)
		__sync_fetch_and_add(w, -1);
	c->from = from;
	c->from_msg = is_msg;
}

static __always_inline int tls_enter(__u64 ctx, const void *buf, __u64 outlen_ptr, __u8 lib, __u8 fn, __u8 dir_out)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c = bpf_map_lookup_elem(&start, &id);
	struct tls_call n = {};

	if ((id >> 32) == self_tgid)
		return 0;
	if (c && c->active) {
		/* why: some libraries call their own exported functions (e.g. PR_Write -> PR_Send); keep the outer call */
		c->nest++;
		count(STAT_NESTED, 1);
		return 0;
	}
	if (c) {
		/* why: only this thread touches its slot; filling it in place avoids a map update */
		c->buf = (__u64)buf;
		c->outlen_ptr = outlen_ptr;
		c->ctx = ctx;
		c->fd = -1;
		c->nest = 0;
		c->lib = lib;
		c->fn = fn;
		c->dir_out = dir_out;
		if (c->from)
			set_from(c, 0, 0);
		c->peer.family = 0;
		c->active = 1;
		return 0;
	}
	if (!bpf_map_lookup_elem(&threads, &id)) {
		struct thread_state ts = {.last_rfd = -1};

		bpf_map_update_elem(&threads, &id, &ts, BPF_NOEXIST);
	}
	n.active = 1;
	n.buf = (__u64)buf;
	n.outlen_ptr = outlen_ptr;
	n.ctx = ctx;
	n.fd = -1;
	n.lib = lib;
	n.fn = fn;
	n.dir_out = dir_out;
	if (bpf_map_update_elem(&start, &id, &n, BPF_ANY))
		count(STAT_START_FULL, 1);
	return 0;
}

/* Emits one TLS record of `len` bytes at call->buf. The connection, most certain first: the fd the call
 * used; what this (live) library object learned earlier; for memory-BIO reads the socket the thread
 * just read; for memory-BIO writes the thread's next socket write (resolved later, EV_CTX). A guess
 * that would give a socket known to belong to another live object is refused: conn unknown. */
static __always_inline int emit_tls(__u64 id, const struct tls_call *call, long len)
{
	struct ctx_key key = {};
	struct tls_event *e;
	struct ctx_conn *known;
	struct thread_state *ts;
	__u32 zero = 0, n, max, tgid = id >> 32;
	__u8 via = CONN_UNKNOWN;
	int r;

	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;
	fill_hdr(&e->hdr, EV_TLS, id);
	__builtin_memset(&e->tuple, 0, sizeof(e->tuple));
	key.ctx = call->ctx;
	key.tgid = tgid;
	known = 0;
	if (call->fd >= 0) {
		struct file *f = fd_to_file(call->fd);

		/* why: the same open file as last time is the same socket; skip the walk to the tuple. Not when the
		 * call's datagram names another peer: an unconnected UDP socket serves many (known is this object's own:
		 * DTLS has one object per peer) */
		known = f ? bpf_map_lookup_elem(&ctx_tuples, &key) : 0;
		if (known && known->via == CONN_FD && known->fd == call->fd && known->file == (__u64)f &&
		    tuple_has_peer(&known->t, &call->peer)) {
			e->tuple = known->t;
			r = 0;
		} else {
			r = file_to_tuple(f, &e->tuple);
			/* an unconnected UDP socket: the remote end is the call's datagram's, when a syscall named it */
			if (r == 0 && e->tuple.proto == 17 /* IPPROTO_UDP */ && !e->tuple.dport &&
			    tuple_set_peer(&e->tuple, &call->peer))
				r = 2;
			if (r == 0)
				learn(tgid, call->ctx, call->fd, &e->tuple, CONN_FD, (__u64)f);
		}
	} else {
		r = -1;
	}
	if (r == 0) {
		via = CONN_FD;
	} else if (r == 1 && call->lib == LIB_NSS) {
		/* why: NSPR's PR_Read/PR_Write also serve plain files (e.g. tstclnt printing to stdout). A socket that is
		 * not inet (AF_UNIX: r == 3) is TLS, kept as the other libraries keep theirs (conn=unknown, or a guess) */
		count(STAT_NO_SOCKET, 1);
		return 0;
	} else if (r == 2) {
		/* an unconnected UDP socket and no datagram peer seen (a read(2) on it): what this object learned before,
		 * else none. No memory-BIO guess: the call did its own socket I/O */
		known = bpf_map_lookup_elem(&ctx_tuples, &key);
		if (known && known->t.proto == 17 /* IPPROTO_UDP */ && known->t.dport) {
			e->tuple = known->t;
			via = CONN_CTX;
		}
	} else if (call->lib != LIB_GO) {
		/* why not Go: tls.Conn objects are garbage collected without a hook; only the fd they carry counts */
		known = bpf_map_lookup_elem(&ctx_tuples, &key);
		ts = bpf_map_lookup_elem(&threads, &id);
		if (known) {
			e->tuple = known->t;
			via = CONN_CTX;
		} else if (!call->dir_out) {
			__s32 rfd = ts ? ts->last_rfd : -1;

			if (rfd >= 0 && fd_to_tuple(rfd, &e->tuple) == 0 && e->tuple.proto == 6 /* IPPROTO_TCP */) {
				if (owned_by_other(tgid, rfd, call->ctx, &e->tuple)) {
					count(STAT_CONFLICTS, 1);
				} else {
					via = CONN_THREAD_READ;
					learn(tgid, call->ctx, rfd, &e->tuple, CONN_THREAD_READ, 0);
				}
			}
		} else if (ts) {
			if (ts->blocked || (ts->has_pending && ts->pending_ctx != call->ctx)) {
				ts->has_pending = 0;
				ts->blocked = 1;
			} else {
				ts->pending_ctx = call->ctx;
				ts->pending_ns = bpf_ktime_get_ns();
				ts->has_pending = 1;
			}
		}
	}
	if (via == CONN_UNKNOWN) {
		__builtin_memset(&e->tuple, 0, sizeof(e->tuple));
		count(STAT_CONN_UNKNOWN, 1);
	}
	e->conn_via = via;
	e->len = (__u32)len;
	e->ctx = call->ctx;
	e->lib = call->lib;
	e->fn = call->fn;
	e->dir_out = call->dir_out;
	max = max_tls_record;
	n = len < max ? (__u32)len : max;
	barrier_var(n);
	if (n > TLS_DATA_MAX)
		n = TLS_DATA_MAX;
	if (bpf_probe_read_user(e->data, n, (void *)call->buf)) {
		count(STAT_READ_FAILS, 1);
		n = 0;
	}
	e->captured = n;
	if (n < (__u32)len)
		count(STAT_TLS_TRUNCATED, 1);
	/* why: waking the helper for every record costs the traced processes CPU on small machines; it
	 * polls at least every 100 ms anyway, and is woken early once 1 MiB is waiting */
	if (bpf_ringbuf_output(&events, e, offsetof(struct tls_event, data) + n,
			       bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > (1 << 20) ? BPF_RB_FORCE_WAKEUP
											   : BPF_RB_NO_WAKEUP)) {
		count(STAT_RINGBUF_DROPS, 1);
		return 0;
	}
	count(STAT_TLS_EVENTS, 1);
	count(STAT_TLS_BYTES, n);
	return 0;
}

static __always_inline int tls_leave(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c = bpf_map_lookup_elem(&start, &id);
	struct thread_state *ts;
	struct tls_call call;
	long len = ret;

	if (!c || !c->active) {
		if ((id >> 32) != self_tgid)
			count(STAT_NO_ENTRY, 1);
		return 0;
	}
	if (c->nest) {
		c->nest--;
		return 0;
	}
	call = *c;
	c->active = 0;

	if (call.outlen_ptr) {
		__u64 v = 0;

		if (ret <= 0 || bpf_probe_read_user(&v, sizeof(v), (void *)call.outlen_ptr))
			len = 0;
		else
			len = (long)v;
	}
	if (len > 0)
		emit_tls(id, &call, len);
	/* why: a socket read serves the first memory-BIO read after it only; a later one may be another
	 * object's buffered data */
	if (!call.dir_out && call.fd < 0) {
		ts = bpf_map_lookup_elem(&threads, &id);
		if (ts)
			ts->last_rfd = -1;
	}
	return 0;
}

/* A socket syscall: tells the fd of the TLS call in flight on this thread, and returns that call when the syscall
 * is on its fd (the caller may read the datagram's peer); outside TLS calls, notes the last TCP socket read and
 * resolves a pending write context with the next TCP socket write, and returns NULL. */
static __always_inline struct tls_call *note_fd(int fd, int is_read)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c = bpf_map_lookup_elem(&start, &id);
	struct thread_state *ts;
	struct tuple t = {};
	struct ctx_event *ce;
	__u64 pctx;
	__u32 tgid = id >> 32;

	if (c && c->active) {
		if (c->fd < 0)
			c->fd = fd;
		return c->fd == fd ? c : 0;
	}
	ts = bpf_map_lookup_elem(&threads, &id);
	if (!ts) {
		struct thread_state fresh = {.last_rfd = -1};
		struct file *f;

		/* why: a memory-BIO read is tied to the TCP socket its thread read just before it, which a thread's state
		 * keeps; made at the thread's first TLS call, it came after that call's socket read, and the first
		 * decrypted read of every thread had no connection (a service's first request after the hooks attached).
		 * A thread of a process that maps a TLS library gets it at its first TCP socket read instead. */
		if (!is_read || !bpf_map_lookup_elem(&tls_procs, &tgid))
			return 0;
		f = fd_to_file(fd);
		if (!f || file_to_tuple(f, &t) != 0 || t.proto != 6 /* IPPROTO_TCP */)
			return 0;
		fresh.last_rfd = fd;
		fresh.tcp_file = (__u64)f;
		bpf_map_update_elem(&threads, &id, &fresh, BPF_NOEXIST);
		return 0;
	}
	if (is_read) {
		struct file *f = fd_to_file(fd);

		if (f && (__u64)f == ts->tcp_file) {
			ts->last_rfd = fd;
		} else if (file_to_tuple(f, &t) == 0 && t.proto == 6 /* IPPROTO_TCP */) {
			ts->last_rfd = fd;
			ts->tcp_file = (__u64)f;
		}
		return 0;
	}
	if (!ts->has_pending && !ts->blocked)
		return 0;
	if (fd_to_tuple(fd, &t) != 0 || t.proto != 6 /* IPPROTO_TCP */)
		return 0;
	pctx = ts->pending_ctx;
	if (ts->blocked || bpf_ktime_get_ns() - ts->pending_ns > PENDING_NS || !ts->has_pending) {
		ts->blocked = 0;
		ts->has_pending = 0;
		return 0;
	}
	ts->has_pending = 0;
	if (owned_by_other(tgid, fd, pctx, &t)) {
		count(STAT_CONFLICTS, 1);
		return 0;
	}
	learn(tgid, pctx, fd, &t, CONN_THREAD_WRITE, 0);
	ce = reserve_event(struct ctx_event, EV_CTX, id);
	if (!ce)
		return 0;
	ce->tuple = t;
	ce->ctx = pctx;
	bpf_ringbuf_submit(ce, 0);
	return 0;
}

/* The library freed (or reset) a connection object: forget its connection, since the address will be
 * reused. Tells user space when it had none, so records waiting for it are written as conn=unknown
 * at once instead of being resolved by a new object at the same address. */
static __always_inline int ctx_freed(__u64 ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct ctx_key k = {.ctx = ctx, .tgid = tgid};
	struct ctx_conn *cc;
	struct thread_state *ts;
	struct ctx_event *ce;

	if (tgid == self_tgid || !ctx)
		return 0;
	ts = bpf_map_lookup_elem(&threads, &id);
	if (ts && ts->has_pending && ts->pending_ctx == ctx)
		ts->has_pending = 0;
	cc = bpf_map_lookup_elem(&ctx_tuples, &k);
	if (cc) {
		struct fd_key fk = {.tgid = tgid, .fd = cc->fd};
		__u64 *owner = bpf_map_lookup_elem(&fd_owner, &fk);

		if (owner && *owner == ctx)
			bpf_map_delete_elem(&fd_owner, &fk);
		bpf_map_delete_elem(&ctx_tuples, &k);
		count(STAT_CTX_FREED, 1);
		return 0;
	}
	/* only threads that made TLS calls can have records waiting in user space */
	if (!ts)
		return 0;
	ce = bpf_ringbuf_reserve(&events, sizeof(*ce), 0);
	if (!ce) {
		count(STAT_RINGBUF_DROPS, 1);
		return 0;
	}
	fill_hdr(&ce->hdr, EV_FREE, id);
	__builtin_memset(&ce->tuple, 0, sizeof(ce->tuple));
	ce->ctx = ctx;
	/* why no wakeup: it only releases held records, which wait for the next poll anyway; the ring keeps
	 * it ordered before any later event about a new object at the same address */
	bpf_ringbuf_submit(ce, BPF_RB_NO_WAKEUP);
	return 0;
}

/* Probed: void SSL_free(SSL *s); int SSL_clear(SSL *s); void gnutls_deinit(gnutls_session_t s);
 * PRStatus PR_Close(PRFileDesc *fd) -- entry only */
SEC("uprobe")
int BPF_KPROBE(uprobe_tls_free, void *obj)
{
	return ctx_freed((__u64)obj);
}

/* Return probes: the entry probe saved which call this is, so one program serves every function with
 * the same return type (why: each program costs start-up verification time; see native/README.md).
 * int: OpenSSL/BoringSSL SSL_* (and ssl_*_internal), NSPR PR_*; long (ssize_t): gnutls_record_*. */
SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_tls_ret_int, int ret)
{
	return tls_leave(ret);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_tls_ret_long, long ret)
{
	return tls_leave(ret);
}

/* ---- OpenSSL 1.1.x / 3.x (libssl.so*, node's static copy) and BoringSSL: same exported ABI ---- */

/* the attach cookie: bits 0-7 the library the probed file holds (LIB_OPENSSL or LIB_BORINGSSL), bits 8-15
 * the function to report when the probe sits elsewhere than the program's own function (FN_SSL_*_INTERNAL) */
static __always_inline __u8 ssl_lib(struct pt_regs *ctx)
{
	__u8 lib = (__u8)bpf_get_attach_cookie(ctx);

	return lib ? lib : LIB_OPENSSL;
}

static __always_inline __u8 ssl_fn(struct pt_regs *ctx, __u8 own)
{
	__u8 fn = (__u8)(bpf_get_attach_cookie(ctx) >> 8);

	return fn ? fn : own;
}

/* Probed: int SSL_write(SSL *s, const void *buf, int num); */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_write, void *s, const void *buf, int num)
{
	return tls_enter((__u64)s, buf, 0, ssl_lib(ctx), ssl_fn(ctx, FN_SSL_WRITE), 1);
}

/* Probed: int SSL_read(SSL *s, void *buf, int num); */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_read, void *s, void *buf, int num)
{
	return tls_enter((__u64)s, buf, 0, ssl_lib(ctx), ssl_fn(ctx, FN_SSL_READ), 0);
}

/* Probed: int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written); */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_write_ex, void *s, const void *buf, __u64 num, __u64 *written)
{
	return tls_enter((__u64)s, buf, (__u64)written, ssl_lib(ctx), ssl_fn(ctx, FN_SSL_WRITE_EX), 1);
}

/* Probed: int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes); */
SEC("uprobe")
int BPF_KPROBE(uprobe_ssl_read_ex, void *s, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_enter((__u64)s, buf, (__u64)readbytes, ssl_lib(ctx), ssl_fn(ctx, FN_SSL_READ_EX), 0);
}

/* ---- GnuTLS 3.x (libgnutls.so.30) ---- */

/* Probed: ssize_t gnutls_record_send(gnutls_session_t session, const void *data, size_t data_size); */
SEC("uprobe")
int BPF_KPROBE(uprobe_gnutls_record_send, void *session, const void *data, __u64 size)
{
	return tls_enter((__u64)session, data, 0, LIB_GNUTLS, FN_GNUTLS_SEND, 1);
}

/* Probed: ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t data_size); */
SEC("uprobe")
int BPF_KPROBE(uprobe_gnutls_record_recv, void *session, void *data, __u64 size)
{
	return tls_enter((__u64)session, data, 0, LIB_GNUTLS, FN_GNUTLS_RECV, 0);
}

/* Probed: ssize_t _gnutls_recv_int(gnutls_session_t session, content_type_t type, uint8_t *data,
 * size_t data_size, void *seq, unsigned int ms) -- the function gnutls_record_recv tail-calls with type
 * GNUTLS_APPLICATION_DATA, probed instead of it when its first instruction would be single-stepped
 * (native/probesite.h); the handshake reads other record types through it */
SEC("uprobe")
int BPF_KPROBE(uprobe_gnutls_recv_int, void *session, int type, void *data)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c;

	if (type == 23 /* GNUTLS_APPLICATION_DATA */)
		return tls_enter((__u64)session, data, 0, LIB_GNUTLS, FN_GNUTLS_RECV_INT, 0);
	/* why: its return probe fires for these calls too; inside a read in flight it must not end that read */
	c = bpf_map_lookup_elem(&start, &id);
	if (c && c->active)
		c->nest++;
	return 0;
}

/* ---- NSS via NSPR (libnspr4.so): the SSL layer sits under these on SSL file descriptors ---- */

/* Probed: PRInt32 PR_Write(PRFileDesc *fd, const void *buf, PRInt32 amount); */
SEC("uprobe")
int BPF_KPROBE(uprobe_pr_write, void *fd, const void *buf, int amount)
{
	return tls_enter((__u64)fd, buf, 0, LIB_NSS, FN_PR_WRITE, 1);
}

/* Probed: PRInt32 PR_Read(PRFileDesc *fd, void *buf, PRInt32 amount); */
SEC("uprobe")
int BPF_KPROBE(uprobe_pr_read, void *fd, void *buf, int amount)
{
	return tls_enter((__u64)fd, buf, 0, LIB_NSS, FN_PR_READ, 0);
}

/* Probed: PRInt32 PR_Send(PRFileDesc *fd, const void *buf, PRInt32 amount, PRIntn flags, PRIntervalTime timeout); */
SEC("uprobe")
int BPF_KPROBE(uprobe_pr_send, void *fd, const void *buf, int amount)
{
	return tls_enter((__u64)fd, buf, 0, LIB_NSS, FN_PR_SEND, 1);
}

/* Probed: PRInt32 PR_Recv(PRFileDesc *fd, void *buf, PRInt32 amount, PRIntn flags, PRIntervalTime timeout); */
SEC("uprobe")
int BPF_KPROBE(uprobe_pr_recv, void *fd, void *buf, int amount)
{
	return tls_enter((__u64)fd, buf, 0, LIB_NSS, FN_PR_RECV, 0);
}

/* ---- Go crypto/tls (regabi, Go >= 1.17 on amd64) ----
 * Go moves goroutine stacks, so return probes are unsafe: Write is complete at entry; Read is probed at
 * entry and at each RET instruction of the function (found by user space), keyed by goroutine (R14 = g),
 * because a goroutine may resume on another thread after blocking.
 * A Go function begins with a stack check whose branch, when the goroutine's stack must grow, goes to
 * runtime.morestack, which grows it and runs the function again from its first instruction: a probe at or
 * before that branch fires twice for such a call (each Write's plaintext then came twice). User space puts
 * the entry probes on the branch itself when it finds it (cookie GO_AT_STACK_CHECK); the programs then skip
 * the pass that takes it, so each call is seen once, by its pass that goes on into the function. */

struct go_read_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_read_key);
	__type(value, struct tls_call);
} go_reads SEC(".maps");

/* Conn.conn (net.Conn interface data word) -> *net.TCPConn -> conn.fd (*netFD) -> pfd.Sysfd.
 * Offsets checked against Go 1.17-1.23: tls.Conn.conn at 0 (iface data at +8), net.conn.fd at 0,
 * netFD.pfd at 0, poll.FD.Sysfd at 16 (after fdMutex{uint64, uint32, uint32}). */
static __always_inline __s32 go_conn_fd(__u64 c)
{
	__u64 data = 0, netfd = 0;
	__s64 sysfd = -1;

	if (bpf_probe_read_user(&data, sizeof(data), (void *)(c + 8)) || !data)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) || !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + 16)))
		return -1;
	return sysfd >= 0 && sysfd < 1 << 20 ? (__s32)sysfd : -1;
}

/* Probed: func (c *tls.Conn) Write(b []byte) (int, error); c, b.ptr and b.len are Go's first three
 * arguments (arch.h: RAX, RBX, RCX on amd64; R0, R1, R2 on arm64) */
SEC("uprobe")
int uprobe_go_tls_write(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call call = {};
	long len = (long)GO_ARG3(ctx);

	if (len <= 0 || ((bpf_get_attach_cookie(ctx) & GO_AT_STACK_CHECK) && GO_STACK_GROWS(ctx)))
		return 0;
	call.buf = GO_ARG2(ctx);
	call.ctx = GO_ARG1(ctx);
	call.fd = go_conn_fd(GO_ARG1(ctx));
	call.lib = LIB_GO;
	call.fn = FN_GO_WRITE;
	call.dir_out = 1;
	return emit_tls(id, &call, len);
}

/* Probed: func (c *tls.Conn) Read(b []byte) (int, error), entry */
SEC("uprobe")
int uprobe_go_tls_read(struct pt_regs *ctx)
{
	struct go_read_key key = {.g = GO_G(ctx), .tgid = bpf_get_current_pid_tgid() >> 32};
	struct tls_call call = {};

	if ((bpf_get_attach_cookie(ctx) & GO_AT_STACK_CHECK) && GO_STACK_GROWS(ctx))
		return 0;
	call.buf = GO_ARG2(ctx);
	call.ctx = GO_ARG1(ctx);
	call.fd = go_conn_fd(GO_ARG1(ctx));
	call.lib = LIB_GO;
	call.fn = FN_GO_READ;
	bpf_map_update_elem(&go_reads, &key, &call, BPF_ANY);
	return 0;
}

/* Probed: each RET of (*tls.Conn).Read; n is its first result */
SEC("uprobe")
int uprobe_go_tls_read_ret(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_read_key key = {.g = GO_G(ctx), .tgid = id >> 32};
	struct tls_call *c = bpf_map_lookup_elem(&go_reads, &key);
	struct tls_call call;
	long n = (long)GO_RET1(ctx);

	if (!c) {
		count(STAT_NO_ENTRY, 1);
		return 0;
	}
	call = *c;
	bpf_map_delete_elem(&go_reads, &key);
	if (n <= 0)
		return 0;
	return emit_tls(id, &call, n);
}

/* ---- socket syscalls: fd of the TLS call in flight, and the peer of its datagrams ----
 * Probed (first argument is the fd in each):
 *   ssize_t write(int fd, const void *buf, size_t count);   ssize_t read(int fd, void *buf, size_t count);
 *   ssize_t writev(int fd, const struct iovec *iov, int n);  ssize_t readv(int fd, const struct iovec *iov, int n);
 *   ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen);
 *   ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen);
 *   ssize_t sendmsg(int fd, const struct msghdr *msg, int flags); ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
 * The peer (to, from, msg->msg_name) is read only inside a TLS call on its fd: `to` at sendto's entry, `from` at
 * recvfrom's exit, which fills it. Syscall tracepoints skip compat (32-bit) tasks on x86-64 and arm64, so a
 * struct msghdr here is the 64-bit one: msg_name, a pointer, at offset 0. */

/* (a UDP socket's first datagram out: see "UDP sockets the kernel binds" below) */
static __always_inline void autobind_at_entry(int fd);

SEC("tracepoint/syscalls/sys_enter_write")
int tp_enter_write(struct trace_event_raw_sys_enter *ctx) { note_fd((int)ctx->args[0], 0); return 0; }
SEC("tracepoint/syscalls/sys_enter_read")
int tp_enter_read(struct trace_event_raw_sys_enter *ctx) { note_fd((int)ctx->args[0], 1); return 0; }
SEC("tracepoint/syscalls/sys_enter_writev")
int tp_enter_writev(struct trace_event_raw_sys_enter *ctx) { note_fd((int)ctx->args[0], 0); return 0; }
SEC("tracepoint/syscalls/sys_enter_readv")
int tp_enter_readv(struct trace_event_raw_sys_enter *ctx) { note_fd((int)ctx->args[0], 1); return 0; }

SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	struct tls_call *c = note_fd((int)ctx->args[0], 0);

	if (c && ctx->args[4])
		user_sockaddr_to_peer((const void *)ctx->args[4], &c->peer);
	if (ctx->args[4])
		autobind_at_entry((int)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tp_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct tls_call *c = note_fd((int)ctx->args[0], 0);
	__u64 name = 0;

	if (!ctx->args[1] || bpf_probe_read_user(&name, sizeof(name), (const void *)ctx->args[1]) || !name)
		return 0;
	if (c)
		user_sockaddr_to_peer((const void *)name, &c->peer);
	autobind_at_entry((int)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int tp_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	struct tls_call *c = note_fd((int)ctx->args[0], 1);

	if (c)
		set_from(c, ctx->args[4], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int tp_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct tls_call *c = note_fd((int)ctx->args[0], 1);

	if (c)
		set_from(c, ctx->args[1], 1);
	return 0;
}

/* At a recvfrom/recvmsg's exit: the sender it wrote, when the TLS call in flight asked for one at its entry */
static __always_inline void peer_at_exit(long ret)
{
	__u32 zero = 0;
	__s64 *w = bpf_map_lookup_elem(&from_waits, &zero);
	struct tls_call *c;
	__u64 id, sa;
	__u8 is_msg;

	if (!w || *w <= 0)
		return;
	id = bpf_get_current_pid_tgid();
	c = bpf_map_lookup_elem(&start, &id);
	if (!c || !c->from)
		return;
	sa = c->from;
	is_msg = c->from_msg;
	set_from(c, 0, 0);
	if (ret < 0 || !c->active)
		return;
	if (is_msg && (bpf_probe_read_user(&sa, sizeof(sa), (const void *)sa) || !sa))
		return;
	user_sockaddr_to_peer((const void *)sa, &c->peer);
}

/* Probed: recvfrom and recvmsg (above), at their exit: ret is the bytes received or -errno */
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int tp_exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { peer_at_exit(ctx->ret); return 0; }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int tp_exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { peer_at_exit(ctx->ret); return 0; }

/* ---- connection attribution ---- */

static __always_inline int emit_tuple(__u64 id, const struct tuple *t, __u32 role)
{
	struct conn_event *e = reserve_event(struct conn_event, EV_CONN, id);

	if (!e)
		return 0;
	e->tuple = *t;
	e->role = role;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
	count(STAT_CONN_EVENTS, 1);
	return 0;
}

static __always_inline int emit_conn(__u64 id, int fd, __u32 role)
{
	struct tuple t = {};

	if (fd_to_tuple(fd, &t) != 0)
		return 0;
	return emit_tuple(id, &t, role);
}

/* A socket call's entry: its fd (first argument) kept per thread in `calls` for its exit; not the helper's own calls */
static __always_inline int fd_at_entry(void *calls, struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 fd = (__s32)ctx->args[0];

	if ((id >> 32) == self_tgid)
		return 0;
	bpf_map_update_elem(calls, &id, &fd, BPF_ANY);
	return 0;
}

/* At the call's exit: the fd fd_at_entry kept for thread `id` (taken out of `calls`), or -1 */
static __always_inline __s32 fd_at_exit(void *calls, __u64 id)
{
	__s32 *fd = bpf_map_lookup_elem(calls, &id);
	__s32 f;

	if (!fd)
		return -1;
	f = *fd;
	bpf_map_delete_elem(calls, &id);
	return f;
}

/* ---- UDP sockets the kernel binds at their first datagram out ----
 * A client that neither binds nor connects its UDP socket (a DNS or QUIC client; Python's sendto) gets its local port
 * from the kernel inside its first sendto, sendmsg or sendmmsg that names a destination: no bind or connect names it,
 * and it may send, read its answer and exit within a millisecond, before the helper's UDP watch looks its socket up
 * (native/README.md). At such a call's entry the socket is UDP with no local port; at its exit it has one (bound
 * before the datagram is routed, so a call that failed has bound it too): its conn event then comes from the sender's
 * own context, with the socket's ends as the watch's sock_diag gives them (the wildcard address unless bound, no
 * remote end) and the role the watch gives (unknown). Probed (the fd is the first argument of each):
 *   int sendmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags); its first struct mmsghdr begins with
 *   a struct msghdr, whose msg_name is at offset 0 (sendmsg above reads it there too). */
static __always_inline void autobind_at_entry(int fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	__s64 *w;
	int fresh;

	/* (the exit checks that it is an inet UDP socket: this runs for every datagram sent with a destination) */
	if ((id >> 32) == self_tgid || fd_local_port(fd) != 0)
		return;
	w = bpf_map_lookup_elem(&autobind_waits, &zero);
	if (!w)
		return;
	/* (counted once per entry: a thread's entry left by a call that never returned, its thread gone, is replaced) */
	fresh = !bpf_map_lookup_elem(&autobinds, &id);
	if (bpf_map_update_elem(&autobinds, &id, &fd, BPF_ANY))
		return;
	if (fresh)
		__sync_fetch_and_add(w, 1);
}

static __always_inline int autobind_at_exit(void)
{
	__u32 zero = 0;
	__s64 *w = bpf_map_lookup_elem(&autobind_waits, &zero);
	__u64 id;
	__s32 f;
	struct tuple t = {};

	if (!w || *w <= 0)
		return 0;
	id = bpf_get_current_pid_tgid();
	f = fd_at_exit(&autobinds, id);
	if (f < 0)
		return 0;
	__sync_fetch_and_add(w, -1);
	if (fd_to_tuple(f, &t) != 0 || t.proto != 17 || !t.sport || t.dport)
		return 0;
	return emit_tuple(id, &t, 0);
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int tp_enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	__u64 name = 0;

	if (ctx->args[1] && ctx->args[2] && !bpf_probe_read_user(&name, sizeof(name), (const void *)ctx->args[1]) && name)
		autobind_at_entry((int)ctx->args[0]);
	return 0;
}

/* Probed: sendto, sendmsg (entries above) and sendmmsg, at their exit */
SEC("tracepoint/syscalls/sys_exit_sendto")
int tp_exit_sendto(struct trace_event_raw_sys_exit *ctx) { return autobind_at_exit(); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int tp_exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { return autobind_at_exit(); }
SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int tp_exit_sendmmsg(struct trace_event_raw_sys_exit *ctx) { return autobind_at_exit(); }

/* Probed: int connect(int fd, const struct sockaddr *addr, socklen_t addrlen); */
SEC("tracepoint/syscalls/sys_enter_connect")
int tp_enter_connect(struct trace_event_raw_sys_enter *ctx) { return fd_at_entry(&connects, ctx); }

SEC("tracepoint/syscalls/sys_exit_connect")
int tp_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 f = fd_at_exit(&connects, id);

	if (f < 0 || (ctx->ret != 0 && ctx->ret != -115 /* -EINPROGRESS */))
		return 0;
	return emit_conn(id, f, ROLE_CLIENT);
}

/* Probed: int bind(int fd, const struct sockaddr *addr, socklen_t addrlen); at its exit, a UDP socket's local end is
 * its owner's: a server's socket that reads and writes with recvfrom and sendto (DNS, QUIC, DTLS) is never connected,
 * so no connect or accept names it. Its conn event has no remote end (port 0): every peer's datagrams are its. */
SEC("tracepoint/syscalls/sys_enter_bind")
int tp_enter_bind(struct trace_event_raw_sys_enter *ctx) { return fd_at_entry(&binds, ctx); }

SEC("tracepoint/syscalls/sys_exit_bind")
int tp_exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 f = fd_at_exit(&binds, id);
	struct tuple t = {};

	if (f < 0 || ctx->ret != 0 || fd_to_tuple(f, &t) != 0 || t.proto != 17 /* IPPROTO_UDP */ || t.dport)
		return 0;
	return emit_conn(id, f, 0);
}

/* Probed: int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags); returns the new fd */
SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (ctx->ret < 0 || (id >> 32) == self_tgid)
		return 0;
	return emit_conn(id, (int)ctx->ret, ROLE_SERVER);
}

/* Probed: int accept(int fd, struct sockaddr *addr, socklen_t *addrlen); returns the new fd */
SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (ctx->ret < 0 || (id >> 32) == self_tgid)
		return 0;
	return emit_conn(id, (int)ctx->ret, ROLE_SERVER);
}

/* ---- new processes: user space hooks their executable and libraries ---- */

SEC("tracepoint/sched/sched_process_exec")
int tp_sched_process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_event *e;

	e = reserve_event(struct exec_event, EV_EXEC, id);
	if (!e)
		return 0;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->pad = 0;
	/* why: short-lived processes may be gone before user space reads /proc/PID/exe */
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + (ctx->__data_loc_filename & 0xFFFF));
	bpf_ringbuf_submit(e, 0);
	count(STAT_EXEC_EVENTS, 1);
	return 0;
}

/* ---- TLS libraries being loaded: user space hooks the file before it is mapped ---- */

/* why: a TLS library the helper has not hooked yet (a container image's own libssl, a private copy, a
 * Python that imports ssl long after its exec) must be hooked before the process's first TLS call; the
 * loader's open of the file is the earliest sign, before it is even mapped. Only names user space may
 * hook pass (a superset of what tls_library_for_file accepts for hooking: it decides). The event is sent
 * at the syscall's entry: a matching open that fails (the loader trying a path that does not exist) costs
 * user space one failed stat, where waiting for the exit would cost every open on the node a map lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} open_scratch SEC(".maps");

static __always_inline int has_prefix(const char *s, const char *p, int n)
{
	int i;

#pragma unroll
	for (i = 0; i < 16; i++) {
		if (i >= n)
			return 1;
		if (s[i] != p[i])
			return 0;
	}
	return 1;
}

static __always_inline int open_enter(const char *user_path, __u64 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0, off;
	int n, k, base = -1;
	struct exec_event *path, *e;
	const char *b;

	/* a loader opens a library read-only, never to create or truncate it (values common to every arch) */
	if ((id >> 32) == self_tgid || (flags & (3 /* O_ACCMODE */ | 0100 /* O_CREAT */ | 01000 /* O_TRUNC */)))
		return 0;
	path = bpf_map_lookup_elem(&open_scratch, &zero);
	if (!path)
		return 0;
	n = bpf_probe_read_user_str(path->filename, sizeof(path->filename), user_path);
	if (n <= 1 || n > EXEC_PATH_MAX)
		return 0;
	/* the base name starts after the last '/': looked for backwards from the end (a library's name is
	 * short), each step either stops or goes on with the same state, which keeps the verifier's work small */
	for (k = 2; k <= 33; k++) {
		int i = n - k;

		if (i < 0) {
			base = 0;
			break;
		}
		if (path->filename[i & (EXEC_PATH_MAX - 1)] == '/') {
			base = i + 1;
			break;
		}
	}
	if (base < 0)
		return 0;
	off = (__u32)base;
	/* why: the bound must be checked on the register the access uses, not on a copy the compiler made */
	barrier_var(off);
	if (off > EXEC_PATH_MAX - 16)
		return 0;
	b = path->filename + off;
	if (b[0] != 'l' || b[1] != 'i' || b[2] != 'b')
		return 0;
	if (!has_prefix(b, "libssl.so", 9) && !has_prefix(b, "libgnutls.so", 12) && !has_prefix(b, "libnspr4.so", 11))
		return 0;
	e = reserve_event(struct exec_event, EV_LIBOPEN, id);
	if (!e)
		return 0;
	e->ppid = 0;
	e->pad = 0;
	__builtin_memcpy(e->filename, path->filename, sizeof(e->filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Probed: int openat(int dirfd, const char *pathname, int flags, ...) (glibc's loader) */
SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter_openat(struct trace_event_raw_sys_enter *ctx) { return open_enter((const char *)ctx->args[1], ctx->args[2]); }

/* Probed: int open(const char *pathname, int flags, ...) (musl's loader, where the syscall exists: not arm64) */
SEC("tracepoint/syscalls/sys_enter_open")
int tp_enter_open(struct trace_event_raw_sys_enter *ctx) { return open_enter((const char *)ctx->args[0], ctx->args[1]); }

