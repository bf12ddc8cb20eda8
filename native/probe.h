/* Capability probe: checks for real (by loading and firing tiny programs) what eBPF mode needs. */
#ifndef TAPSCOPE_PROBE_H
#define TAPSCOPE_PROBE_H

struct probe_report {
	char kernel[128];
	char machine[65];
	int root;
	int btf;
	int bpf_load;
	int ringbuf;
	int uprobe;
	int tracepoint;
	int afpacket;
	int load_errno; /* errno of a failed BPF load (EPERM: missing privileges) */
	const char *tracefs; /* present | mounted | missing */
	char foreign_kernel[16]; /* the kernel's architecture when it is not the helper's (emulation), else "" */
	char error[256];
};

void probe_run(struct probe_report *r);
/* 1 when eBPF mode can run; reason explains the choice either way */
int probe_ebpf_ok(const struct probe_report *r, char *reason, int reason_len);
void probe_print_json(const struct probe_report *r);

#endif
