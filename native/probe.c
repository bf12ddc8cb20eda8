/* Implementation of probe.h. */
#include "probe.h"
#include "util.h"
#include "probe.skel.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

/* The uprobe target of the self-test: must stay a real call in the binary. */
__attribute__((noinline, used)) int tapscope_probe_target(int x)
{
	__asm__ volatile("" : : "r"(x) : "memory");
	return x + 1;
}

static int silent_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

#if defined(__aarch64__)
#define HELPER_ARCH "aarch64"
#else
#define HELPER_ARCH "x86_64"
#endif

/* The architecture of the running kernel, from its BTF's register file (arm64's `struct user_pt_regs`, x86-64's
 * `struct pt_regs` with `ax`), or NULL when it is neither. uname cannot say it: under qemu-user or Rosetta it
 * reports the emulated architecture, and this helper's uprobe programs would then read the wrong registers
 * (and the kernel would write its breakpoint instruction into code of another architecture). */
static const char *kernel_arch(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const char *arch = NULL;
	int id;

	if (!btf)
		return NULL;
	if (btf__find_by_name_kind(btf, "user_pt_regs", BTF_KIND_STRUCT) > 0) {
		arch = "aarch64";
	} else if ((id = btf__find_by_name_kind(btf, "pt_regs", BTF_KIND_STRUCT)) > 0) {
		const struct btf_type *t = btf__type_by_id(btf, (__u32)id);
		const struct btf_member *m = btf_members(t);
		int i;

		for (i = 0; i < btf_vlen(t); i++)
			if (!strcmp(btf__name_by_offset(btf, m[i].name_off), "ax"))
				arch = "x86_64";
	}
	btf__free(btf);
	return arch;
}

/* why: libbpf finds tracepoint ids in tracefs; `ip netns exec` and minimal hosts/containers often
 * have a /sys without it mounted */
static void ensure_tracefs(struct probe_report *r)
{
	if (access("/sys/kernel/tracing/events", F_OK) == 0 || access("/sys/kernel/debug/tracing/events", F_OK) == 0) {
		r->tracefs = "present";
		return;
	}
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		r->tracefs = "mounted";
	else
		r->tracefs = "missing";
}

void probe_run(struct probe_report *r)
{
	struct utsname u;
	struct probe_bpf *skel = NULL;
	struct bpf_link *ul = NULL, *tl = NULL;
	libbpf_print_fn_t old;
	const char *karch;
	uint64_t v = 0;
	uint32_t k;
	int err;
	int fd;

	memset(r, 0, sizeof(*r));
	if (uname(&u) == 0) {
		snprintf(r->kernel, sizeof(r->kernel), "%s", u.release);
		snprintf(r->machine, sizeof(r->machine), "%s", u.machine);
	}
	r->root = geteuid() == 0;
	ensure_tracefs(r);
	r->btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (fd >= 0) {
		r->afpacket = 1;
		close(fd);
	}
	old = libbpf_set_print(silent_print);
	karch = r->btf ? kernel_arch() : NULL;
	if (karch && strcmp(karch, HELPER_ARCH)) {
		/* why before loading anything: see kernel_arch */
		snprintf(r->foreign_kernel, sizeof(r->foreign_kernel), "%s", karch);
		snprintf(r->error, sizeof(r->error), "the kernel is %s but this helper is %s (it runs under emulation)", karch, HELPER_ARCH);
		goto cleanup;
	}
	r->ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
	skel = probe_bpf__open();
	if (!skel) {
		snprintf(r->error, sizeof(r->error), "open probe object: %s", strerror(errno));
		goto cleanup;
	}
	skel->rodata->self_tgid = (uint32_t)getpid();
	err = probe_bpf__load(skel);
	if (err) {
		r->load_errno = -err;
		snprintf(r->error, sizeof(r->error), "load probe programs: %s", strerror(-err));
		goto cleanup;
	}
	r->bpf_load = 1;
	{
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "tapscope_probe_target");

		ul = bpf_program__attach_uprobe_opts(skel->progs.uprobe_probe_target, 0, "/proc/self/exe", 0, &uo);
		if (!ul)
			snprintf(r->error, sizeof(r->error), "attach uprobe: %s", strerror(errno));
	}
	tl = bpf_program__attach(skel->progs.tp_enter_getppid);
	if (!tl && !r->error[0])
		snprintf(r->error, sizeof(r->error), "attach tracepoint: %s", strerror(errno));
	tapscope_probe_target(41);
	syscall(SYS_getppid);
	fd = bpf_map__fd(skel->maps.hits);
	k = 0;
	if (ul && bpf_map_lookup_elem(fd, &k, &v) == 0 && v > 0)
		r->uprobe = 1;
	k = 1;
	v = 0;
	if (tl && bpf_map_lookup_elem(fd, &k, &v) == 0 && v > 0)
		r->tracepoint = 1;
cleanup:
	bpf_link__destroy(ul);
	bpf_link__destroy(tl);
	probe_bpf__destroy(skel);
	libbpf_set_print(old);
}

int probe_ebpf_ok(const struct probe_report *r, char *reason, int reason_len)
{
	if (r->foreign_kernel[0])
		snprintf(reason, (size_t)reason_len, "the kernel is %s but this helper is %s (run under emulation: qemu-user, Rosetta); "
			 "its uprobe programs would read the wrong registers, so packets and process attribution come from AF_PACKET "
			 "and /proc", r->foreign_kernel, HELPER_ARCH);
	else if (!r->btf)
		snprintf(reason, (size_t)reason_len, "no BTF (/sys/kernel/btf/vmlinux missing)");
	else if (!r->bpf_load)
		snprintf(reason, (size_t)reason_len, "cannot load BPF programs (%s)", r->error);
	else if (!r->ringbuf)
		snprintf(reason, (size_t)reason_len, "BPF ring buffer not supported");
	else if (!r->uprobe)
		snprintf(reason, (size_t)reason_len, "uprobes not working (%s)", r->error);
	else if (!r->tracepoint)
		snprintf(reason, (size_t)reason_len, "tracepoints not working (%s)", r->error);
	else {
		snprintf(reason, (size_t)reason_len, "BTF, ringbuf, uprobes and tracepoints available");
		return 1;
	}
	return 0;
}

void probe_print_json(const struct probe_report *r)
{
	char reason[320];
	int ok = probe_ebpf_ok(r, reason, sizeof(reason));
	struct sbuf b = {0};

	sb_printf(&b, "{\"helper\":\"%s\",\"kernel\":", TAPSCOPE_VERSION);
	sb_json_str(&b, r->kernel);
	sb_puts(&b, ",\"arch\":");
	sb_json_str(&b, r->machine);
	sb_printf(&b, ",\"root\":%s,\"btf\":%s,\"bpf\":%s,\"ringbuf\":%s,\"uprobe\":%s,\"tracepoint\":%s,"
		      "\"afpacket\":%s,\"tracefs\":\"%s\",\"autoMode\":\"%s\",\"reason\":",
		  r->root ? "true" : "false", r->btf ? "true" : "false", r->bpf_load ? "true" : "false",
		  r->ringbuf ? "true" : "false", r->uprobe ? "true" : "false", r->tracepoint ? "true" : "false",
		  r->afpacket ? "true" : "false", r->tracefs, ok ? "ebpf" : "afpacket");
	sb_json_str(&b, reason);
	sb_puts(&b, ",\"error\":");
	sb_json_str(&b, r->error[0] ? r->error : NULL);
	sb_puts(&b, "}\n");
	fputs(b.p, stdout);
	sb_free(&b);
}
