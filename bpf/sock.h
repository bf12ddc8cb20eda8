/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* fd -> socket -> 5-tuple with CO-RE reads, for tracepoint and uprobe context (current task).
 * Checked against: Linux 5.10, 6.1, 6.18 (fdtable->fd, file->f_inode->i_mode, file->private_data,
 * socket->sk, sock_common skc_* fields). */
#ifndef __TAPSCOPE_SOCK_H
#define __TAPSCOPE_SOCK_H

#include "tapscope.h"

#define TS_S_IFMT 00170000
#define TS_S_IFSOCK 0140000
#define TS_AF_INET 2
#define TS_AF_INET6 10

static __always_inline int sk_to_tuple(struct sock *sk, struct tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != TS_AF_INET && family != TS_AF_INET6)
		return -1;
	t->family = family;
	t->proto = (__u8)BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == TS_AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(t->saddr, &s, 4);
		__builtin_memcpy(t->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&t->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	return 0;
}

/* The open file behind fd of the current task, or 0. */
static __always_inline struct file *fd_to_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = 0;
	unsigned int max_fds;

	if (!fdt || fd < 0)
		return 0;
	max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

/* The sock of an open file taken to be a socket (its private_data a struct socket), or 0. */
static __always_inline struct sock *file_sock(struct file *f)
{
	struct socket *sock = BPF_CORE_READ(f, private_data);

	return sock ? BPF_CORE_READ(sock, sk) : 0;
}

/* Returns 0 and fills t for an inet socket, 1 when f is not a socket, 3 when it is one but not inet (AF_UNIX), -1 on
 * read failure. */
static __always_inline int file_to_tuple(struct file *f, struct tuple *t)
{
	struct sock *sk;
	__u16 mode;

	if (!f)
		return -1;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & TS_S_IFMT) != TS_S_IFSOCK)
		return 1;
	sk = file_sock(f);
	if (!sk)
		return -1;
	return sk_to_tuple(sk, t) ? 3 : 0;
}

/* A datagram's remote end, as sendto/sendmsg name it and recvfrom/recvmsg return it: an unconnected UDP socket
 * (a DTLS server's) has none of its own. */
struct peer {
	__u8 addr[16]; /* IPv4 in the first 4 bytes, as in struct tuple */
	__u16 port;    /* host byte order */
	__u16 family;  /* AF_INET / AF_INET6, 0 = none */
	__u8 pad[4];
};

/* Reads the struct sockaddr_in / sockaddr_in6 at user address sa into p; p->family is 0 when it is neither (or
 * unreadable). Layouts (uapi, every arch): family at 0, port at 2 (network order), sin_addr at 4, sin6_addr at 8. */
static __always_inline void user_sockaddr_to_peer(const void *sa, struct peer *p)
{
	struct {
		__u16 family;
		__u16 port;
		__u8 addr4[4];
	} h;
	struct peer n = {};

	p->family = 0;
	if (!sa || bpf_probe_read_user(&h, sizeof(h), sa))
		return;
	if (h.family == TS_AF_INET)
		__builtin_memcpy(n.addr, h.addr4, 4);
	else if (h.family != TS_AF_INET6 || bpf_probe_read_user(n.addr, sizeof(n.addr), (const char *)sa + 8))
		return;
	n.port = bpf_ntohs(h.port);
	n.family = h.family;
	*p = n;
}

/* Gives t, an unconnected socket's tuple (no remote port), the remote end of the datagram p: 0, or -1 when there
 * is none of t's family (the record then has no connection rather than one to 0.0.0.0:0). */
static __always_inline int tuple_set_peer(struct tuple *t, const struct peer *p)
{
	if (!p->family || p->family != t->family)
		return -1;
	__builtin_memcpy(t->daddr, p->addr, sizeof(t->daddr));
	t->dport = p->port;
	return 0;
}

/* 1 when t's remote end is the datagram p's (or the call saw no datagram's peer) */
static __always_inline int tuple_has_peer(const struct tuple *t, const struct peer *p)
{
	const __u64 *a = (const __u64 *)t->daddr, *b = (const __u64 *)p->addr;

	return !p->family || (t->dport == p->port && a[0] == b[0] && a[1] == b[1]);
}

/* The local port of the socket behind fd (0: none yet), or -1 when unreadable. For a hot path's first look: fd is
 * one a socket call was given, so the file is taken to be a socket (not checked, as file_to_tuple does; a file that
 * is not one gives a meaningless number, never a fault) and nothing else is read: 8 kernel reads against fd_to_tuple's
 * 15 or more. */
static __always_inline int fd_local_port(int fd)
{
	struct file *f = fd_to_file(fd);
	struct sock *sk = f ? file_sock(f) : 0;

	return sk ? BPF_CORE_READ(sk, __sk_common.skc_num) : -1;
}

/* Returns 0 and fills t for an inet socket, 1 when fd is not a socket, 3 when not inet, -1 on read failure. */
static __always_inline int fd_to_tuple(int fd, struct tuple *t)
{
	return file_to_tuple(fd_to_file(fd), t);
}

#endif /* __TAPSCOPE_SOCK_H */
