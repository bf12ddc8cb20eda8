// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Capability check for `tapscope-helper --probe` and `--mode auto`: a uprobe on a function of the
 * helper itself and a syscall tracepoint, each counting hits, plus a ringbuf. Loading and firing
 * these proves the kernel really supports what eBPF mode needs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "arch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 self_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_events SEC(".maps");

/* Probed: int tapscope_probe_target(int x); (native/probe.c) */
SEC("uprobe")
int BPF_KPROBE(uprobe_probe_target, int x)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&hits, &k);
	__u32 *slot;

	if (v)
		__sync_fetch_and_add(v, 1);
	slot = bpf_ringbuf_reserve(&probe_events, sizeof(*slot), 0);
	if (slot) {
		*slot = x;
		bpf_ringbuf_submit(slot, 0);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_enter_getppid(void *ctx)
{
	__u32 k = 1;
	__u64 *v;

	if ((bpf_get_current_pid_tgid() >> 32) != self_tgid)
		return 0;
	v = bpf_map_lookup_elem(&hits, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}
