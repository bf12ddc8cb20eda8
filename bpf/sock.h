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

/* Returns 0 and fills t for an inet socket, 1 when f is not a socket (or not inet), -1 on read failure. */
static __always_inline int file_to_tuple(struct file *f, struct tuple *t)
{
	struct socket *sock;
	struct sock *sk;
	__u16 mode;

	if (!f)
		return -1;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & TS_S_IFMT) != TS_S_IFSOCK)
		return 1;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return -1;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return -1;
	return sk_to_tuple(sk, t) ? 1 : 0;
}

/* Returns 0 and fills t for an inet socket, 1 when fd is not a socket (or not inet), -1 on read failure. */
static __always_inline int fd_to_tuple(int fd, struct tuple *t)
{
	return file_to_tuple(fd_to_file(fd), t);
}

#endif /* __TAPSCOPE_SOCK_H */
