/* eBPF mode in a helper built without it (TAPSCOPE_NO_BPF: the aarch64 build, until its uprobe and
 * tracepoint programs are ported and tested on an aarch64 kernel): ebpf.h's calls as "never active", so
 * --mode auto captures with AF_PACKET and says why, and --mode ebpf fails with that reason (exit 3). */
#include "ebpf.h"

int ebpf_active;

int ebpf_start(char *reason, int reason_len)
{
	(void)reason;
	(void)reason_len;
	return 3;
}

void ebpf_hook_all(void) {}
int ebpf_fd(void) { return -1; }
void ebpf_poll(void) {}
void ebpf_tick(void) {}
void ebpf_update_stats(void) {}
void ebpf_flush_output(void) {}
void ebpf_stop(void) {}

int ebpf_hook_json(struct sbuf *b, int comma, const struct stat *st, const char *path, const char *library)
{
	(void)b;
	(void)comma;
	(void)st;
	(void)path;
	(void)library;
	return 0;
}

void ebpf_hook_file(const char *library, const char *display_path, const char *open_path, uint32_t pid)
{
	(void)library;
	(void)display_path;
	(void)open_path;
	(void)pid;
}

void ebpf_hook_process(uint32_t pid) { (void)pid; }
