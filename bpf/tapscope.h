/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Events and counters shared by the kernel side (bpf/tapscope.bpf.c) and the helper (native/).
 * Fixed-size integer types only: no pointers, no bool, no enums in structs. */
#ifndef __TAPSCOPE_H
#define __TAPSCOPE_H

#define TASK_COMM_LEN 16
/* Upper bound of plaintext bytes per event (--max-tls-record <= this). Per-CPU map values are
 * limited to 32 KiB, and struct tls_event lives in one. */
#define TLS_DATA_MAX 32512

/* event kinds (struct event_hdr.kind) */
#define EV_TLS 1
#define EV_CONN 2
#define EV_EXEC 3
#define EV_CTX 4 /* a TLS context's connection learned after its first event */
#define EV_FREE 5 /* a TLS context without a known connection was freed (struct ctx_event, tuple zero) */
#define EV_LIBOPEN 6 /* a process opened a file named like a TLS library (struct exec_event, filename = the path opened) */

/* TLS libraries (struct tls_event.lib) */
#define LIB_OPENSSL 1
#define LIB_GNUTLS 2
#define LIB_NSS 3
#define LIB_BORINGSSL 4
#define LIB_GO 5

/* a Go entry probe's attach cookie: it sits on the function's stack-check branch (see the Go programs) */
#define GO_AT_STACK_CHECK 1

/* TLS functions (struct tls_event.fn) */
#define FN_SSL_WRITE 1
#define FN_SSL_READ 2
#define FN_SSL_WRITE_EX 3
#define FN_SSL_READ_EX 4
#define FN_GNUTLS_SEND 5
#define FN_GNUTLS_RECV 6
#define FN_PR_WRITE 7
#define FN_PR_READ 8
#define FN_PR_SEND 9
#define FN_PR_RECV 10
#define FN_GO_WRITE 11
#define FN_GO_READ 12
#define FN_SSL_WRITE_INTERNAL 13 /* OpenSSL's ssl_write_internal: SSL_write and SSL_write_ex in one probe */
#define FN_SSL_READ_INTERNAL 14  /* ssl_read_internal: SSL_read and SSL_read_ex */
#define FN_GNUTLS_RECV_INT 15    /* GnuTLS's _gnutls_recv_int, where gnutls_record_recv jumps to */

/* how a TLS record's connection was learned (struct tls_event.conn_via; EPB comment conn=...) */
#define CONN_UNKNOWN 0
#define CONN_FD 1           /* a socket syscall inside the call (or Go's netFD) */
#define CONN_CTX 2          /* learned earlier for this library object, which is still alive */
#define CONN_THREAD_READ 3  /* memory-BIO read: the socket the thread read last, outside TLS calls */
#define CONN_THREAD_WRITE 4 /* memory-BIO write: the thread's next socket write (set by user space) */

/* connection roles (struct conn_event.role) */
#define ROLE_CLIENT 1
#define ROLE_SERVER 2

/* per-CPU counters (map stats), indexes */
#define STAT_TLS_EVENTS 0
#define STAT_TLS_BYTES 1
#define STAT_TLS_TRUNCATED 2
#define STAT_RINGBUF_DROPS 3
#define STAT_READ_FAILS 4      /* bpf_probe_read_user of the plaintext failed */
#define STAT_NO_ENTRY 5        /* return probe without a matching entry */
#define STAT_NO_SOCKET 6       /* NSS call whose fd was not a socket (plain file I/O: not TLS, not written) */
#define STAT_CONN_UNKNOWN 7    /* TLS event without a resolvable connection */
#define STAT_CONN_EVENTS 8
#define STAT_EXEC_EVENTS 9
#define STAT_START_FULL 10     /* entry map full */
#define STAT_NESTED 11         /* nested TLS call on the same thread (inner one ignored) */
#define STAT_CTX_FREED 12      /* library objects freed while their connection was known */
#define STAT_CONFLICTS 13      /* guesses refused because the socket belongs to another live object */
#define STAT_MAX 14

struct tuple {
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;    /* host byte order */
	__u16 dport;
	__u16 family;   /* AF_INET / AF_INET6, 0 = unknown */
	__u8 proto;     /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad;
};

struct event_hdr {
	__u32 kind;
	__u32 pid;
	__u32 tid;
	__u32 netns; /* inode of the task's network namespace (0 = unknown): hooks are host-wide */
	__u64 ts_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	char comm[TASK_COMM_LEN];
};

struct tls_event {
	struct event_hdr hdr;
	struct tuple tuple; /* local end is saddr/sport */
	__u32 len;          /* full length of the call's data */
	__u32 captured;     /* bytes that follow */
	__u8 lib;
	__u8 fn;
	__u8 dir_out;       /* 1 = write (outbound), 0 = read */
	__u8 conn_via;      /* CONN_* */
	__u8 pad[4];
	__u64 ctx;          /* the library's connection object (SSL *, session, PRFileDesc *) as a number */
	__u8 data[TLS_DATA_MAX];
};

struct conn_event {
	struct event_hdr hdr;
	struct tuple tuple;
	__u32 role;
	__u32 pad;
};

struct ctx_event {
	struct event_hdr hdr;
	struct tuple tuple;
	__u64 ctx;
};

#define EXEC_PATH_MAX 256

struct exec_event {
	struct event_hdr hdr;
	__u32 ppid;
	__u32 pad;
	char filename[EXEC_PATH_MAX]; /* as passed to execve (EV_LIBOPEN: to open), in the process's mount namespace */
};

#endif /* __TAPSCOPE_H */
