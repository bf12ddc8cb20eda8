/* Implementation of ebpf.h. */
#include "ebpf.h"
#include "filter.h"
#include "pcapng.h"
#include "probesite.h"
#include "procinfo.h"
#include "util.h"
#include "tapscope.h"
#include "tapscope.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <endian.h>
#include <limits.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HOOKS 512
#define MAX_LINKS 40
#define MAX_DEFERRED 512
#define DEFER_NS (300ull * 1000000ull)
#define MAX_EXECQ 1024
#define PROTO_SLOTS 1024

int ebpf_active;

struct hook {
	uint64_t dev, ino;
	/* with ino: the file's identity through another overlay mount (see hook_find) */
	uint64_t size;
	int64_t mtime_s, mtime_ns;
	char library[24];
	char path[512];
	const char *status;
	char reason[200];
	uint64_t ts_ns; /* CLOCK_REALTIME when the attach ended (status set): calls before it were not seen */
	struct bpf_link *links[MAX_LINKS];
	int n_links;
};

struct deferred {
	uint64_t arrived_ns;
	uint32_t size;
	struct tls_event *ev;
};

struct exec_item {
	uint32_t pid;
	uint64_t due_ns;
	int round;
};

static struct tapscope_bpf *skel;
static struct ring_buffer *rb;
static struct hook hooks[MAX_HOOKS];
static int n_hooks;
static struct deferred deferred[MAX_DEFERRED];
static int n_deferred;
static struct exec_item execq[MAX_EXECQ];
static int n_execq;
static uint32_t tls_ifid = UINT32_MAX;
/* the protocol each TLS object's records carry (see proto_for): its key in marked[], its protocol in marked_proto[] */
static uint64_t marked[PROTO_SLOTS];
static const char *marked_proto[PROTO_SLOTS];
static struct sbuf jb;

static const char *lib_name(uint8_t lib)
{
	switch (lib) {
	case LIB_OPENSSL: return "openssl";
	case LIB_GNUTLS: return "gnutls";
	case LIB_NSS: return "nss";
	case LIB_BORINGSSL: return "boringssl";
	case LIB_GO: return "go-crypto-tls";
	default: return "unknown";
	}
}

static const char *fn_name(uint8_t fn)
{
	static const char *names[] = {"?", "SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex", "gnutls_record_send",
				      "gnutls_record_recv", "PR_Write", "PR_Read", "PR_Send", "PR_Recv",
				      "crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read", "ssl_write_internal",
				      "ssl_read_internal", "_gnutls_recv_int"};

	return fn < sizeof(names) / sizeof(names[0]) ? names[fn] : "?";
}

/* ---- hooks ---- */

struct sym_spec {
	const char *sym;
	struct bpf_program *entry;
	struct bpf_program *ret;
	int required;
	uint32_t keep; /* registers the entry program reads: a probe may move past code writing none of them */
};

#define KEEP_ARG1 PS_REG(PS_DI)
#define KEEP_ARGS2 (PS_REG(PS_DI) | PS_REG(PS_SI))
#define KEEP_ARGS4 (PS_REG(PS_DI) | PS_REG(PS_SI) | PS_REG(PS_DX) | PS_REG(PS_CX))

/* The hook of a file: the same (device, inode), or the same file seen through another overlay mount. Containers of
 * one image each have an overlay mount of their own, with its own device number but the lower file's inode number;
 * a uprobe lands on the lower file, so a second attach would run every probe twice per call. Inode, size and
 * modification time (to the nanosecond) together name that file; size 0 (unknown) matches the exact pair only. */
static struct hook *hook_find(const struct stat *st)
{
	int i;

	for (i = 0; i < n_hooks; i++) {
		const struct hook *h = &hooks[i];

		if (h->ino != (uint64_t)st->st_ino)
			continue;
		if (h->dev == (uint64_t)st->st_dev ||
		    (st->st_size > 0 && h->size == (uint64_t)st->st_size && h->mtime_s == st->st_mtim.tv_sec &&
		     h->mtime_ns == st->st_mtim.tv_nsec))
			return &hooks[i];
	}
	return NULL;
}

static void hook_cb(struct hook *h, uint32_t pid, const char **syms, int n_syms)
{
	int i;

	h->ts_ns = now_realtime_ns();
	sb_reset(&jb);
	sb_puts(&jb, "{\"t\":\"hook\",\"library\":");
	sb_json_str(&jb, h->library);
	sb_puts(&jb, ",\"path\":");
	sb_json_str(&jb, h->path);
	sb_printf(&jb, ",\"inode\":%llu,\"dev\":%llu,\"pid\":", (unsigned long long)h->ino, (unsigned long long)h->dev);
	if (pid)
		sb_printf(&jb, "%u", pid);
	else
		sb_puts(&jb, "null");
	sb_printf(&jb, ",\"status\":\"%s\",\"tsNs\":%llu,\"symbols\":[", h->status, (unsigned long long)h->ts_ns);
	for (i = 0; i < n_syms; i++) {
		if (i)
			sb_putc(&jb, ',');
		sb_json_str(&jb, syms[i]);
	}
	sb_puts(&jb, "],\"reason\":");
	sb_json_str(&jb, h->reason[0] ? h->reason : NULL);
	sb_putc(&jb, '}');
	pcapng_custom_json(jb.p, jb.len);
	logf_("hook %s %s: %s%s%s", h->library, h->path, h->status, h->reason[0] ? " - " : "", h->reason);
}

static int specs_for(const char *library, struct sym_spec *s, uint64_t *cookie)
{
	__typeof__(skel->progs) *p = &skel->progs;

	*cookie = 0;
	if (!strcmp(library, "openssl") || !strcmp(library, "boringssl")) {
		*cookie = !strcmp(library, "boringssl") ? LIB_BORINGSSL : LIB_OPENSSL;
		s[0] = (struct sym_spec){"SSL_write", p->uprobe_ssl_write, p->uretprobe_tls_ret_int, 1, KEEP_ARGS4};
		s[1] = (struct sym_spec){"SSL_read", p->uprobe_ssl_read, p->uretprobe_tls_ret_int, 1, KEEP_ARGS4};
		s[2] = (struct sym_spec){"SSL_write_ex", p->uprobe_ssl_write_ex, p->uretprobe_tls_ret_int, 0, KEEP_ARGS4};
		s[3] = (struct sym_spec){"SSL_read_ex", p->uprobe_ssl_read_ex, p->uretprobe_tls_ret_int, 0, KEEP_ARGS4};
		/* why: freed objects' addresses are reused for new connections; their learned connection must go */
		s[4] = (struct sym_spec){"SSL_free", p->uprobe_tls_free, NULL, 0, KEEP_ARG1};
		s[5] = (struct sym_spec){"SSL_clear", p->uprobe_tls_free, NULL, 0, KEEP_ARG1};
		return 6;
	}
	if (!strcmp(library, "gnutls")) {
		s[0] = (struct sym_spec){"gnutls_record_send", p->uprobe_gnutls_record_send, p->uretprobe_tls_ret_long, 1, KEEP_ARGS2};
		s[1] = (struct sym_spec){"gnutls_record_recv", p->uprobe_gnutls_record_recv, p->uretprobe_tls_ret_long, 1, KEEP_ARGS2};
		s[2] = (struct sym_spec){"gnutls_deinit", p->uprobe_tls_free, NULL, 0, KEEP_ARG1};
		return 3;
	}
	if (!strcmp(library, "nss")) {
		s[0] = (struct sym_spec){"PR_Write", p->uprobe_pr_write, p->uretprobe_tls_ret_int, 1, KEEP_ARGS2};
		s[1] = (struct sym_spec){"PR_Read", p->uprobe_pr_read, p->uretprobe_tls_ret_int, 1, KEEP_ARGS2};
		s[2] = (struct sym_spec){"PR_Send", p->uprobe_pr_send, p->uretprobe_tls_ret_int, 0, KEEP_ARGS2};
		s[3] = (struct sym_spec){"PR_Recv", p->uprobe_pr_recv, p->uretprobe_tls_ret_int, 0, KEEP_ARGS2};
		s[4] = (struct sym_spec){"PR_Close", p->uprobe_tls_free, NULL, 0, KEEP_ARG1};
		return 5;
	}
	return 0;
}

static const char *unsupported_reason(const char *library)
{
	if (!strcmp(library, "java-jsse"))
		return "JSSE encrypts inside the JVM (Java code, no native symbol to probe); packets are still captured";
	return "no uprobe support for this TLS library";
}

/* File offsets of defined function symbols (.dynsym or .symtab), one pass over the symbol tables
 * (node's are large); offs[i] = 0 when syms[i] is not found. */
static void elf_func_offsets(Elf *e, const char **syms, int n, uint64_t *offs)
{
	Elf_Scn *scn = NULL;
	size_t i, nph;
	uint64_t vaddr[8] = {0};
	int k, left = n;

	while (left && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB))
			continue;
		d = elf_getdata(scn, NULL);
		for (i = 0; left && d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC || !s.st_value)
				continue;
			name = elf_strptr(e, sh.sh_link, s.st_name);
			for (k = 0; name && k < n; k++) {
				/* why the first byte first: node has 75k dynamic symbols; a full strcmp of each against
				 * each name was a fifth of the helper's start-up CPU */
				if (!vaddr[k] && name[0] == syms[k][0] && !strcmp(name, syms[k])) {
					vaddr[k] = s.st_value;
					left--;
				}
			}
		}
	}
	memset(offs, 0, sizeof(offs[0]) * (size_t)n);
	if (elf_getphdrnum(e, &nph))
		return;
	for (i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		for (k = 0; k < n; k++)
			if (vaddr[k] >= ph.p_vaddr && vaddr[k] < ph.p_vaddr + ph.p_filesz)
				offs[k] = vaddr[k] - ph.p_vaddr + ph.p_offset;
	}
}

#define CODE_PEEK 96

/* The first CODE_PEEK bytes at file offset off (zero-padded at the end of the file). */
static int read_code(int fd, uint64_t off, uint8_t *code)
{
	memset(code, 0, CODE_PEEK);
	return off && pread(fd, code, CODE_PEEK, (off_t)off) > 0 ? 0 : -1;
}

/* Where a function's probe goes: past leading instructions the kernel would single-step, onto the
 * first one it emulates (see probesite.h), when only code the program does not depend on is skipped.
 * Returns the file offset, off itself when no better site exists. */
static uint64_t emulated_site(int fd, uint64_t off, uint32_t keep, int with_return)
{
	uint8_t code[CODE_PEEK];
	long skip;

	if (read_code(fd, off, code))
		return off;
	skip = probe_skip(code, CODE_PEEK, keep, with_return);
	return skip > 0 ? off + (uint64_t)skip : off;
}

/* OpenSSL 3's SSL_read_ex / SSL_write_ex are `sub $8,%rsp; call ssl_{read,write}_internal` (Debian),
 * and SSL_read / SSL_write call the same internal function with the same first arguments and a
 * size_t * for the length (like the _ex functions' 4th argument). The `sub` cannot move before a
 * return probe, so the kernel would single-step it at every call; the callee starts with a push (or
 * gets there past endbr64). One probe there serves both exported functions: the callee's return
 * value is > 0 exactly when the data was transferred, and its 4th argument holds the length. Returns
 * the callee's probe site for the _ex function at ex_off, or 0. */
static uint64_t ssl_internal_site(int fd, uint64_t ex_off)
{
	uint8_t code[CODE_PEEK];
	uint64_t callee;
	long skip;

	if (read_code(fd, ex_off, code) || !wrapper_callee(code, CODE_PEEK, ex_off, &callee) || read_code(fd, callee, code))
		return 0;
	skip = probe_skip(code, CODE_PEEK, KEEP_ARGS4, 1);
	return skip >= 0 ? callee + (uint64_t)skip : 0;
}

/* 1 when the function at off calls the function at target within its first bytes */
static int function_calls(int fd, uint64_t off, uint64_t target)
{
	uint8_t code[CODE_PEEK];

	return !read_code(fd, off, code) && calls_target(code, CODE_PEEK, off, target);
}

/* Probe sites of an OpenSSL-ABI library's specs: SSL_read_ex/SSL_write_ex at their internal callee
 * when ssl_internal_site finds it (fn reported as ssl_{read,write}_internal), and SSL_read/SSL_write
 * then not probed at all when they call that same function (covered[i] = 1: one trap per call instead
 * of two). Specs 0-3 are SSL_write, SSL_read, SSL_write_ex, SSL_read_ex (specs_for). */
static void ssl_sites(int fd, const uint64_t *offs, uint64_t *sites, uint8_t *fns, int *covered)
{
	static const uint8_t internal_fn[2] = {FN_SSL_WRITE_INTERNAL, FN_SSL_READ_INTERNAL};
	int k;

	for (k = 0; k < 2; k++) {
		uint64_t callee = offs[2 + k] ? ssl_internal_site(fd, offs[2 + k]) : 0;

		if (!callee)
			continue;
		sites[2 + k] = callee;
		fns[2 + k] = internal_fn[k];
		if (offs[k] && function_calls(fd, offs[k], callee))
			covered[k] = 1;
	}
}

/* gnutls_record_recv starts with `sub $8,%rsp` (Debian's 3.7), which cannot move before its return probe:
 * probe the function it tail-calls for application data instead, when that starts with an emulated
 * instruction. (The kTLS branch, off unless enabled in GnuTLS's configuration, calls elsewhere.) Returns
 * the site, or 0. */
static uint64_t gnutls_recv_site(int fd, uint64_t off)
{
	uint8_t code[CODE_PEEK];
	uint64_t callee;
	long skip;

	if (read_code(fd, off, code) || probe_skip(code, CODE_PEEK, KEEP_ARGS2, 1) >= 0 ||
	    !tail_call_with_arg2(code, CODE_PEEK, off, 23 /* GNUTLS_APPLICATION_DATA */, &callee) || read_code(fd, callee, code))
		return 0;
	skip = probe_skip(code, CODE_PEEK, KEEP_ARGS2 | PS_REG(PS_DX), 1);
	return skip >= 0 ? callee + (uint64_t)skip : 0;
}

/* File offsets to probe for each spec (0: symbol not found), the fn to report when not the spec's
 * own (0), and which specs another probe already covers. */
static void find_sites(int fd, const char *path, const struct sym_spec *specs, int n, uint64_t cookie, uint64_t *sites,
		       uint8_t *fns, int *covered)
{
	const char *names[8];
	uint64_t offs[8];
	Elf *e;
	int i;

	for (i = 0; i < n; i++)
		names[i] = specs[i].sym;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e) {
		memset(sites, 0, sizeof(sites[0]) * (size_t)n);
		return;
	}
	elf_func_offsets(e, names, n, offs);
	elf_end(e);
	for (i = 0; i < n; i++)
		sites[i] = offs[i] ? emulated_site(fd, offs[i], specs[i].keep, specs[i].ret != NULL) : 0;
	if (cookie)
		ssl_sites(fd, offs, sites, fns, covered);
	for (i = 0; i < n; i++) {
		uint64_t at = specs[i].entry == skel->progs.uprobe_gnutls_record_recv ? gnutls_recv_site(fd, offs[i]) : 0;

		if (at) {
			sites[i] = at;
			fns[i] = FN_GNUTLS_RECV_INT;
		}
	}
	/* why log: where a probe sits decides whether each hit costs ~1 us or ~10 us */
	for (i = 0; i < n; i++) {
		if (covered[i])
			logf_("probe %s %s: covered by the probe on its callee", path, specs[i].sym);
		else if (fns[i])
			logf_("probe %s %s: at its callee %s", path, specs[i].sym, fn_name(fns[i]));
		else if (sites[i] != offs[i])
			logf_("probe %s %s: at +%llu, past instructions the kernel would single-step", path, specs[i].sym,
			      (unsigned long long)(sites[i] - offs[i]));
	}
}

#define GO_WRITE_SYM "crypto/tls.(*Conn).Write"
#define GO_READ_SYM "crypto/tls.(*Conn).Read"
#define MAX_GO_RETS 32
/* registers the Go programs read at entry: c (RAX), b.ptr (RBX), b.len (RCX), g (R14) */
#define GO_KEEP_WRITE (PS_REG(PS_AX) | PS_REG(PS_BX) | PS_REG(PS_CX) | PS_REG(PS_R14))
#define GO_KEEP_READ (PS_REG(PS_AX) | PS_REG(PS_BX) | PS_REG(PS_R14))

/* Where a Go function's entry probe goes: on its stack-check branch (emulated on both architectures), with the
 * GO_AT_STACK_CHECK cookie, so the program skips the pass that goes to runtime.morestack and is run again (see
 * the Go programs); else, a function that does not begin so, where emulated_site puts it (a call whose stack
 * grows is then seen twice). */
static uint64_t go_entry_site(int fd, uint64_t off, uint32_t keep, uint64_t *cookie)
{
	uint8_t code[CODE_PEEK];
	long at;

	*cookie = 0;
	if (!read_code(fd, off, code) && (at = go_stack_check(code, CODE_PEEK)) >= 0) {
		*cookie = GO_AT_STACK_CHECK;
		return off + (uint64_t)at;
	}
	return emulated_site(fd, off, keep, 0);
}

/* Locates a function in a Go binary: .symtab when present, else the pclntab function table (Go >= 1.18
 * layout: pcHeader magic 0xfffffff0/0xfffffff1), which stripped binaries keep. Gives the file offset
 * and size of its code. Returns 0, or -1 when not found. */
static int go_func_locate(Elf *e, const char *sym, uint64_t *file_off, uint64_t *size)
{
	Elf_Scn *scn = NULL;
	uint64_t addr = 0, len = 0;
	size_t i, shstrndx;

	if (elf_getshdrstrndx(e, &shstrndx))
		return -1;
	while (!addr && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		for (i = 0; d && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(d, (int)i, &s))
				continue;
			name = elf_strptr(e, sh.sh_link, s.st_name);
			if (name && name[0] == sym[0] && !strcmp(name, sym) && s.st_size) {
				addr = s.st_value;
				len = s.st_size;
				break;
			}
		}
	}
	scn = NULL;
	while (!addr && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		const uint8_t *p;
		uint32_t magic, k;
		uint64_t nfunc, text, nameoff, pcln;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(e, shstrndx, sh.sh_name)) || strcmp(name, ".gopclntab"))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size < 64)
			break;
		p = d->d_buf;
		memcpy(&magic, p, 4);
		if ((magic != 0xfffffff0 && magic != 0xfffffff1) || p[7] != 8)
			break;
		memcpy(&nfunc, p + 8, 8);
		memcpy(&text, p + 24, 8);
		memcpy(&nameoff, p + 32, 8);
		memcpy(&pcln, p + 64, 8);
		if (pcln + (nfunc + 1) * 8 > d->d_size)
			break;
		for (k = 0; k < nfunc; k++) {
			uint32_t entry, funcoff, next, nmoff;

			memcpy(&entry, p + pcln + k * 8, 4);
			memcpy(&funcoff, p + pcln + k * 8 + 4, 4);
			memcpy(&next, p + pcln + (k + 1) * 8, 4);
			if (pcln + funcoff + 8 > d->d_size)
				continue;
			memcpy(&nmoff, p + pcln + funcoff + 4, 4);
			if (nameoff + nmoff + strlen(sym) + 1 > d->d_size)
				continue;
			if (!memcmp(p + nameoff + nmoff, sym, strlen(sym) + 1)) {
				addr = text + entry;
				len = next - entry;
				break;
			}
		}
		break;
	}
	if (!addr)
		return -1;
	scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_PROGBITS && addr >= sh.sh_addr &&
		    addr + len <= sh.sh_addr + sh.sh_size) {
			*file_off = sh.sh_offset + addr - sh.sh_addr;
			*size = len;
			return 0;
		}
	}
	return -1;
}

#if defined(__aarch64__)
/* Offsets (from the function start) of a Go function's RET instructions. arm64 instructions are 4 bytes,
 * aligned, so every aligned word equal to `RET` (RET X30: 0xd65f03c0) is one; Go puts no literal pools in
 * function bodies on arm64. */
static int go_find_rets_in(const uint8_t *code, uint64_t len, uint64_t *rets, int max)
{
	uint64_t j;
	int n = 0;

	for (j = 0; j + 4 <= len && n < max; j += 4) {
		uint32_t w;

		memcpy(&w, code + j, 4);
		if (le32toh(w) == 0xd65f03c0)
			rets[n++] = j;
	}
	return n;
}
#else
/* Offsets (from the function start) of a Go function's RET instructions. Go's amd64 epilogue is
 * `MOVQ off(SP), BP; ADDQ $off+8, SP; RET`; matching that whole sequence (with the two constants
 * agreeing) instead of a lone 0xC3 keeps probes on instruction boundaries. */
static int go_find_rets_in(const uint8_t *code, uint64_t len, uint64_t *rets, int max)
{
	uint64_t j;
	int n = 0;

	for (j = 0; j + 10 <= len && n < max; j++) {
		/* 48 8b 6c 24 XX  48 83 c4 XX+8  c3 */
		if (code[j] == 0x48 && code[j + 1] == 0x8b && code[j + 2] == 0x6c && code[j + 3] == 0x24 &&
		    code[j + 5] == 0x48 && code[j + 6] == 0x83 && code[j + 7] == 0xc4 && code[j + 8] == (uint8_t)(code[j + 4] + 8) &&
		    code[j + 9] == 0xc3) {
			rets[n++] = j + 9;
		} else if (j + 16 <= len && code[j] == 0x48 && code[j + 1] == 0x8b && code[j + 2] == 0xac && code[j + 3] == 0x24 &&
			   code[j + 8] == 0x48 && code[j + 9] == 0x81 && code[j + 10] == 0xc4 && code[j + 15] == 0xc3) {
			/* 48 8b ac 24 XXXXXXXX  48 81 c4 XXXXXXXX+8  c3 */
			uint32_t a, b;

			memcpy(&a, code + j + 4, 4);
			memcpy(&b, code + j + 11, 4);
			if (b == a + 8)
				rets[n++] = j + 15;
		}
	}
	return n;
}
#endif

/* Offsets (from the function start) of the RET instructions of the Go function at file_off, len bytes long. */
static int go_find_rets(int fd, uint64_t file_off, uint64_t len, uint64_t *rets, int max)
{
	uint8_t *code = malloc(len);
	int n = 0;

	if (code && pread(fd, code, len, (off_t)file_off) == (ssize_t)len)
		n = go_find_rets_in(code, len, rets, max);
	free(code);
	return n;
}

static void hook_go(struct hook *h, int fd, const char *open_path, uint32_t pid)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	LIBBPF_OPTS(bpf_uprobe_opts, wo);
	LIBBPF_OPTS(bpf_uprobe_opts, ro);
	uint64_t rets[MAX_GO_RETS], woff = 0, wlen = 0, roff = 0, rlen = 0, wsite, rsite, cookie;
	const char *ok_syms[2];
	int n_rets = 0, i, n_ok = 0, err = 0, have_w, have_r;
	struct bpf_link *l;
	Elf *e;

	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	have_w = e && go_func_locate(e, GO_WRITE_SYM, &woff, &wlen) == 0;
	have_r = e && go_func_locate(e, GO_READ_SYM, &roff, &rlen) == 0;
	if (e)
		elf_end(e);
	if (have_w) {
		/* why on the stack check's branch: emulated (not single-stepped, as the `cmp` before it), and seen once per call */
		wsite = go_entry_site(fd, woff, GO_KEEP_WRITE, &cookie);
		wo.bpf_cookie = cookie;
		if (!cookie)
			logf_("probe %s %s: no stack check recognized at its start; a call whose stack grows is seen twice", h->path, GO_WRITE_SYM);
		l = bpf_program__attach_uprobe_opts(skel->progs.uprobe_go_tls_write, -1, open_path, wsite, &wo);
		if (l) {
			h->links[h->n_links++] = l;
			ok_syms[n_ok++] = GO_WRITE_SYM;
		} else {
			err = -errno;
		}
	}
	if (have_r)
		n_rets = go_find_rets(fd, roff, rlen, rets, MAX_GO_RETS);
	if (n_rets > 0 && h->n_links + 1 + n_rets <= MAX_LINKS) {
		int start = h->n_links;

		rsite = go_entry_site(fd, roff, GO_KEEP_READ, &cookie);
		ro.bpf_cookie = cookie;
		l = bpf_program__attach_uprobe_opts(skel->progs.uprobe_go_tls_read, -1, open_path, rsite, &ro);
		if (l)
			h->links[h->n_links++] = l;
		else
			err = -errno;
		for (i = 0; l && i < n_rets; i++) {
			struct bpf_link *lr = bpf_program__attach_uprobe_opts(skel->progs.uprobe_go_tls_read_ret, -1, open_path,
									      roff + rets[i], &uo);
			if (!lr) {
				err = -errno;
				l = NULL;
				break;
			}
			h->links[h->n_links++] = lr;
		}
		if (l) {
			ok_syms[n_ok++] = GO_READ_SYM;
		} else {
			while (h->n_links > start)
				bpf_link__destroy(h->links[--h->n_links]);
		}
	}
	if (!n_ok) {
		h->status = "failed";
		if (!have_w)
			snprintf(h->reason, sizeof(h->reason), "%s not found in .symtab or .gopclntab (Go < 1.18?)", GO_WRITE_SYM);
		else
			snprintf(h->reason, sizeof(h->reason), "uprobe attach failed: %s (errno %d)", strerror(-err), -err);
		ctr.hooks_failed++;
	} else {
		h->status = "attached";
		if (n_ok < 2)
			snprintf(h->reason, sizeof(h->reason), "only %s hooked: %s", ok_syms[0],
				 !have_r ? "Read not found" : n_rets == 0 ? "no recognizable RET in Read" : "Read attach failed");
		ctr.hooks_attached++;
	}
	hook_cb(h, pid, ok_syms, n_ok);
}

void ebpf_hook_file(const char *library, const char *display_path, const char *open_path, uint32_t pid)
{
	struct sym_spec specs[8];
	const char *ok_syms[8];
	uint64_t sites[8];
	uint8_t fns[8] = {0};
	int covered[8] = {0};
	struct stat st;
	struct hook *h;
	uint64_t cookie;
	int n, i, n_ok = 0, err = 0, req_fail = 0;

	char fd_path[64];
	int fd;

	if (!ebpf_active || stat(open_path, &st) < 0)
		return;
	if (hook_find(&st) || n_hooks >= MAX_HOOKS)
		return;
	/* why: short-lived processes exit while we attach; holding the file open keeps /proc/self/fd/N
	 * valid for every attach and ELF read that follows */
	fd = open(open_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", fd);
	open_path = fd_path;
	h = &hooks[n_hooks++];
	memset(h, 0, sizeof(*h));
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	h->size = (uint64_t)st.st_size;
	h->mtime_s = st.st_mtim.tv_sec;
	h->mtime_ns = st.st_mtim.tv_nsec;
	snprintf(h->library, sizeof(h->library), "%s", library);
	snprintf(h->path, sizeof(h->path), "%s", display_path);
	if (!strcmp(library, "go-crypto-tls")) {
		hook_go(h, fd, open_path, pid);
		close(fd);
		return;
	}
	n = specs_for(library, specs, &cookie);
	if (!n) {
		h->status = "unsupported";
		snprintf(h->reason, sizeof(h->reason), "%s", unsupported_reason(library));
		hook_cb(h, pid, NULL, 0);
		close(fd);
		return;
	}
	find_sites(fd, display_path, specs, n, cookie, sites, fns, covered);
	for (i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, eo, .bpf_cookie = cookie | (uint64_t)fns[i] << 8);
		LIBBPF_OPTS(bpf_uprobe_opts, ro, .retprobe = true);
		struct bpf_link *le, *lr;

		if (covered[i]) {
			ok_syms[n_ok++] = specs[i].sym;
			continue;
		}
		if (!sites[i]) {
			err = -ENOENT;
			if (specs[i].required)
				req_fail = 1;
			continue;
		}
		/* why: each attach is a few ms of kernel work (more under load); drain the ring in between */
		capture_yield();
		le = bpf_program__attach_uprobe_opts(fns[i] == FN_GNUTLS_RECV_INT ? skel->progs.uprobe_gnutls_recv_int : specs[i].entry,
						     -1, open_path, (size_t)sites[i], &eo);
		if (!le) {
			err = -errno;
			if (specs[i].required)
				req_fail = 1;
			continue;
		}
		lr = specs[i].ret ? bpf_program__attach_uprobe_opts(specs[i].ret, -1, open_path, (size_t)sites[i], &ro) : NULL;
		if (specs[i].ret && !lr) {
			err = -errno;
			bpf_link__destroy(le);
			if (specs[i].required)
				req_fail = 1;
			continue;
		}
		h->links[h->n_links++] = le;
		if (lr)
			h->links[h->n_links++] = lr;
		ok_syms[n_ok++] = specs[i].sym;
	}
	if (req_fail || !n_ok) {
		for (i = 0; i < h->n_links; i++)
			bpf_link__destroy(h->links[i]);
		h->n_links = 0;
		h->status = "failed";
		snprintf(h->reason, sizeof(h->reason), "uprobe attach failed: %s (errno %d)", strerror(-err), -err);
		ctr.hooks_failed++;
		hook_cb(h, pid, NULL, 0);
		close(fd);
		return;
	}
	h->status = "attached";
	ctr.hooks_attached++;
	hook_cb(h, pid, ok_syms, n_ok);
	close(fd);
}

int ebpf_hook_json(struct sbuf *b, int comma, const struct stat *st, const char *path, const char *library)
{
	struct hook *h = hook_find(st);

	if (!h)
		return 0;
	if (comma)
		sb_putc(b, ',');
	sb_puts(b, "{\"library\":");
	sb_json_str(b, library);
	sb_puts(b, ",\"path\":");
	sb_json_str(b, path);
	sb_printf(b, ",\"status\":\"%s\",\"tsNs\":%llu,\"reason\":", h->status, (unsigned long long)h->ts_ns);
	sb_json_str(b, h->reason[0] ? h->reason : NULL);
	sb_putc(b, '}');
	return 1;
}

static void hook_exe(const char *exe, const char *path, uint32_t pid, const struct elf_facts *efp);

/* the hook library for a file tls_library_for_file named: NSS is hooked in NSPR, else tls_library_refine's (version
 * as it makes it) */
static const char *library_of_file(const char *lib, const char *path, char *version, int version_len)
{
	return strcmp(lib, "nspr") ? tls_library_refine(lib, path, version, version_len) : "nss";
}

/* Hooks a TLS library file as process pid names it (a maps line, an open), opened through open_path, or through
 * /proc/PID/root when that is NULL. Returns the hook library, or NULL when the file is none the helper hooks itself
 * (not a TLS library; JSSE; NSS's libnss3/libssl3, hooked in libnspr4); version gets the library's version (see
 * tls_library_refine). */
/* A process that maps a TLS library (or carries one): its threads' socket reads are followed from their first (see
 * the BPF note_fd), so a memory-BIO library's first decrypted read on a thread is tied to its connection too. */
static void mark_tls_process(uint32_t pid)
{
	uint8_t one = 1;

	if (skel && pid)
		bpf_map__update_elem(skel->maps.tls_procs, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY);
}

static const char *hook_library(uint32_t pid, const char *file, const char *open_path, char *version, int version_len)
{
	char root_path[EXEC_PATH_MAX + 600];
	const char *base = strrchr(file, '/'), *lib;

	lib = tls_library_for_file(base ? base + 1 : file, version, version_len);
	if (!lib || !strcmp(lib, "java-jsse") || !strcmp(lib, "nss"))
		return NULL;
	if (!open_path) {
		snprintf(root_path, sizeof(root_path), "/proc/%u/root%s", pid, file);
		open_path = root_path;
	}
	lib = library_of_file(lib, open_path, version, version_len);
	ebpf_hook_file(lib, file, open_path, pid);
	mark_tls_process(pid);
	return lib;
}

/* hooks every TLS library a process maps and its executable when it carries TLS itself */
void ebpf_hook_process(uint32_t pid)
{
	char path[64], line[1024], exe[512];
	struct elf_facts ef;
	FILE *f;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *file = strchr(line, '/'), *nl;

			if (!file)
				continue;
			nl = strchr(file, '\n');
			if (nl)
				*nl = 0;
			hook_library(pid, file, NULL, NULL, 0);
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	len = readlink(path, exe, sizeof(exe) - 1);
	if (len <= 0)
		return;
	exe[len] = 0;
	if (elf_inspect(path, &ef) < 0)
		return;
	hook_exe(exe, path, pid, &ef);
}

/* An exec: hook the new executable. When the process already exited, fall back to the path it was
 * started with, which resolves in the helper's mount namespace when the process shares it. */
static void hook_exec(uint32_t pid, const char *filename)
{
	struct elf_facts ef;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (access(path, F_OK) == 0) {
		ebpf_hook_process(pid);
		return;
	}
	if (filename[0] == '/' && elf_inspect(filename, &ef) == 0)
		hook_exe(filename, filename, pid, &ef);
}

/* A process opened a file named like a TLS library (the open/openat tracepoints): hook it now, before the
 * loader maps it, and name the library in the process's `proc` record if that had none. */
static void hook_opened(uint32_t pid, const char *comm, const char *file)
{
	char open_path[EXEC_PATH_MAX + 64], version[32] = "";
	const char *lib;

	snprintf(open_path, sizeof(open_path), file[0] == '/' ? "/proc/%u/root%s" : "/proc/%u/cwd/%s", pid, file);
	/* why: a process already gone leaves its path, which resolves here when it shared our mount namespace */
	if (access(open_path, F_OK) != 0 && file[0] == '/')
		snprintf(open_path, sizeof(open_path), "%s", file);
	/* (the event comes at the open's entry: the loader's tries at paths that do not exist end here) */
	if (access(open_path, F_OK) != 0)
		return;
	lib = hook_library(pid, file, open_path, version, sizeof(version));
	if (lib)
		proc_note_opened(pid, comm, lib, file, open_path, version[0] ? version : NULL);
}

static void hook_exe(const char *exe, const char *path, uint32_t pid, const struct elf_facts *efp)
{
	struct elf_facts ef = *efp;

	if (ef.exports_ssl_write) {
		ebpf_hook_file(ef.boringssl ? "boringssl" : "openssl", exe, path, pid);
		mark_tls_process(pid);
	}
	else if (ef.go_tls)
		ebpf_hook_file("go-crypto-tls", exe, path, pid);
	else if (!strcmp(strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe, "java"))
		ebpf_hook_file("java-jsse", exe, path, pid);
}

/* why: uprobes are per file, so hooking the system's TLS libraries up front covers every process
 * that loads them later, including short-lived ones that exit before user space could look at them */
static void hook_system_libraries(void)
{
	/* android/: Debian's BoringSSL (android-libboringssl) */
	static const char *dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
				     "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/usr/lib", "/lib",
				     "/usr/lib/x86_64-linux-gnu/android", "/usr/lib/aarch64-linux-gnu/android"};
	char path[600];
	size_t d;

	for (d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *de;

		if (!dir)
			continue;
		while ((de = readdir(dir))) {
			const char *lib = tls_library_for_file(de->d_name, NULL, 0);

			if (!lib || !strcmp(lib, "java-jsse") || !strcmp(lib, "nss"))
				continue;
			/* the unversioned libssl.so / libgnutls.so are dev symlinks to the same inode */
			char real[PATH_MAX];

			snprintf(path, sizeof(path), "%s/%s", dirs[d], de->d_name);
			ebpf_hook_file(library_of_file(lib, path, NULL, 0), realpath(path, real) ? real : path, path, 0);
		}
		closedir(dir);
	}
}

static void hook_running_processes(void)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;

	if (!proc)
		return;
	while ((de = readdir(proc)))
		if (isdigit((unsigned char)de->d_name[0]) && (uint32_t)atoi(de->d_name) != (uint32_t)getpid())
			ebpf_hook_process((uint32_t)atoi(de->d_name));
	closedir(proc);
}

/* ---- events ---- */

/* Whether d[0..n) begins with an HTTP/2 SETTINGS frame of its own (not an acknowledgment) on stream 0, whole: what an
 * HTTP/2 server writes first, before it read the client's preface (RFC 9113 3.4) */
static int h2_settings_first(const uint8_t *d, uint32_t n)
{
	uint32_t len;

	if (n < 9 || d[3] != 0x04 || d[4] != 0 || d[5] || d[6] || d[7] || d[8])
		return 0;
	len = (uint32_t)d[0] << 16 | (uint32_t)d[1] << 8 | d[2];
	return len % 6 == 0 && len <= 16384 && 9 + len <= n;
}

/* Whether d[0..n) begins an HTTP/1 message: a status line, or a request line (a method, and " HTTP/1.x" before its
 * line's end; why: NATS's "CONNECT {...}" and other text protocols' commands begin as a request does). *status: a
 * response's status code, 0 for a request; *connect: it is a CONNECT request */
static int http1_start(const uint8_t *d, uint32_t n, int *status, int *connect)
{
	static const char *methods[] = {"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "};
	uint32_t i, end = n < 8192 ? n : 8192;

	*status = 0;
	*connect = 0;
	if (n >= 12 && !memcmp(d, "HTTP/1.", 7) && d[8] == ' ' && d[9] >= '1' && d[9] <= '5' && d[10] >= '0' && d[10] <= '9' &&
	    d[11] >= '0' && d[11] <= '9') {
		*status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
		return 1;
	}
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (n >= strlen(methods[i]) && !memcmp(d, methods[i], strlen(methods[i])))
			break;
	if (i == sizeof(methods) / sizeof(methods[0]))
		return 0;
	*connect = i == 7;
	/* the request line's end: " HTTP/1.x" just before it (a record cut before it: taken as a request) */
	for (i = 0; i + 1 < end; i++)
		if (d[i] == '\r' && d[i + 1] == '\n')
			return i >= 9 && !memcmp(d + i - 9, " HTTP/1.", 8);
	return 1;
}

/* The protocol of a decrypted record for Wireshark (its exported PDU's dissector): "http2", "http" or "data". A record
 * that begins a message names its TLS object's protocol, and the object's later records (a request's pieces, a body's
 * records) carry it too: the client's preface or a server's first SETTINGS frame mark HTTP/2, an HTTP/1 message
 * HTTP/1 until a 101 response, or a 2xx answer to a CONNECT (the tunnel's bytes are another protocol's, often TLS).
 * why by the bytes as well as the mark: a freed object's memory is the next one's, and a server's HTTP/1.1 connection
 * after an HTTP/2 one on the same address (Node's) had its records tagged http2 */
static const char *proto_for(const struct tls_event *e)
{
	static const char connect_pending[] = "http";
	const uint8_t *d = e->data;
	uint32_t n = e->captured;
	uint64_t key = (e->ctx ^ ((uint64_t)e->hdr.pid << 48)) | 1;
	uint32_t slot = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 54) & (PROTO_SLOTS - 1);
	int status, connect;

	if ((n >= 14 && !memcmp(d, "PRI * HTTP/2.0", 14)) || h2_settings_first(d, n)) {
		marked[slot] = key;
		marked_proto[slot] = "http2";
	} else if (http1_start(d, n, &status, &connect)) {
		/* (connect_pending is "http" by its text, told apart by its address: a CONNECT sent, its answer awaited) */
		int tunnel = status >= 200 && status < 300 && marked[slot] == key && marked_proto[slot] == connect_pending;

		if (status == 101 || tunnel) {
			if (marked[slot] == key)
				marked[slot] = 0;
		} else {
			marked[slot] = key;
			marked_proto[slot] = connect ? connect_pending : "http";
		}
		return "http";
	}
	return marked[slot] == key ? marked_proto[slot] : "data";
}

/* EXP_PDU_TAG_PORT_TYPE's values: Wireshark's port_type (epan/address.h) */
#define EXP_PDU_PT_TCP 2
#define EXP_PDU_PT_UDP 3

static uint8_t *put_tag(uint8_t *p, uint16_t tag, const void *val, uint16_t len)
{
	uint16_t plen = (uint16_t)((len + 3) & ~3);

	p[0] = (uint8_t)(tag >> 8);
	p[1] = (uint8_t)tag;
	p[2] = (uint8_t)(plen >> 8);
	p[3] = (uint8_t)plen;
	memset(p + 4, 0, plen);
	memcpy(p + 4, val, len);
	return p + 4 + plen;
}

static uint8_t *put_u32_tag(uint8_t *p, uint16_t tag, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	return put_tag(p, tag, be, 4);
}

static const char *conn_via_name(uint8_t via)
{
	switch (via) {
	case CONN_FD: return "fd";
	case CONN_CTX: return "ctx";
	case CONN_THREAD_READ: return "thread-read";
	case CONN_THREAD_WRITE: return "thread-write";
	default: return "unknown";
	}
}

/* 1 when the address is 0.0.0.0 or :: (an unconnected socket's, bound to the wildcard) */
static int addr_unspecified(const uint8_t *a, int family)
{
	static const uint8_t zero[16];

	return !memcmp(a, zero, family == AF_INET ? 4 : 16);
}

/* The interface of the decrypted records, its IDB written the first time. */
static void tls_iface(void)
{
	if (tls_ifid == UINT32_MAX)
		tls_ifid = pcapng_idb(LINKTYPE_WIRESHARK_UPPER_PDU, TLS_DATA_MAX + 256, "tapscope-tls",
				      "decrypted TLS plaintext from uprobes");
}

static void write_tls(const struct tls_event *e)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t tags[128], *p = tags;
	const char *proto = proto_for(e);
	char comment[256], comm[TASK_COMM_LEN + 1], netns[24] = "";
	struct tuple t = e->tuple;
	int i, known = t.family != 0;

	/* why: a socket without a remote port (an unconnected UDP socket whose datagram's peer the hooks did not see)
	 * is no connection; written as one, its record would name a flow that does not exist. An unconnected UDP socket
	 * bound to 0.0.0.0 or :: (a DTLS server's, as most are) keeps its wildcard local address: the address its
	 * client's datagram went to is not the socket's, and the core ties the record to the one UDP flow between that
	 * client's address and port and this local port (FORMAT.md). A TCP socket always has its local address. */
	if (known && (!t.dport || (t.proto != IPPROTO_UDP && addr_unspecified(t.saddr, t.family)))) {
		memset(&t, 0, sizeof(t));
		known = 0;
	}
	/* why: with hooks host-wide, the helper's own output riding TLS on this host would come back as
	 * plaintext records of itself, in a loop */
	if (known && tuple_excluded(&t)) {
		ctr.excluded++;
		return;
	}
	if (!filter_record(&t, e->dir_out)) {
		ctr.filtered++;
		return;
	}
	tls_iface();
	p = put_tag(p, 12, proto, (uint16_t)strlen(proto));
	if (known) {
		const uint8_t *src = e->dir_out ? t.saddr : t.daddr;
		const uint8_t *dst = e->dir_out ? t.daddr : t.saddr;
		uint16_t sport = e->dir_out ? t.sport : t.dport;
		uint16_t dport = e->dir_out ? t.dport : t.sport;

		if (t.family == AF_INET) {
			p = put_tag(p, 20, src, 4);
			p = put_tag(p, 21, dst, 4);
		} else if (!memcmp(src, v4mapped, 12) && !memcmp(dst, v4mapped, 12)) {
			p = put_tag(p, 20, src + 12, 4);
			p = put_tag(p, 21, dst + 12, 4);
		} else {
			p = put_tag(p, 22, src, 16);
			p = put_tag(p, 23, dst, 16);
		}
		/* Wireshark's port_type: PT_UDP for a DTLS connection's record, PT_TCP otherwise */
		p = put_u32_tag(p, 24, t.proto == IPPROTO_UDP ? EXP_PDU_PT_UDP : EXP_PDU_PT_TCP);
		p = put_u32_tag(p, 25, sport);
		p = put_u32_tag(p, 26, dport);
	}
	memset(p, 0, 4);
	p += 4;
	memcpy(comm, e->hdr.comm, TASK_COMM_LEN);
	comm[TASK_COMM_LEN] = 0;
	for (i = 0; comm[i]; i++)
		if (isspace((unsigned char)comm[i]) || comm[i] == '=')
			comm[i] = '_';
	if (e->hdr.netns)
		snprintf(netns, sizeof(netns), " netns=%u", e->hdr.netns);
	snprintf(comment, sizeof(comment), "tapscope-tls pid=%u tid=%u comm=%s lib=%s fn=%s dir=%s len=%u trunc=%d conn=%s%s",
		 e->hdr.pid, e->hdr.tid, comm[0] ? comm : "?", lib_name(e->lib), fn_name(e->fn), e->dir_out ? "out" : "in",
		 e->len, e->captured < e->len ? 1 : 0, known ? conn_via_name(e->conn_via) : "unknown", netns);
	if (!known)
		ctr.tls_conn_unknown++;
	pcapng_epb2(tls_ifid, mono_to_real_ns(e->hdr.ts_ns), tags, (uint32_t)(p - tags), e->data, e->captured,
		    (uint32_t)(p - tags) + e->len, e->dir_out ? EPB_FLAG_OUTBOUND : EPB_FLAG_INBOUND, comment);
}

static void flush_deferred(uint64_t older_than_ns, int all)
{
	int i, j = 0;

	for (i = 0; i < n_deferred; i++) {
		if (all || deferred[i].arrived_ns < older_than_ns) {
			write_tls(deferred[i].ev);
			free(deferred[i].ev);
		} else {
			deferred[j++] = deferred[i];
		}
	}
	n_deferred = j;
}

static void resolve_deferred(const struct ctx_event *c)
{
	int i, j = 0;

	for (i = 0; i < n_deferred; i++) {
		struct tls_event *e = deferred[i].ev;

		if (e->hdr.pid == c->hdr.pid && e->ctx == c->ctx) {
			/* EV_FREE: the object is gone without a connection; never let its successor claim these */
			if (c->hdr.kind == EV_CTX) {
				e->tuple = c->tuple;
				e->conn_via = CONN_THREAD_WRITE;
			}
			write_tls(e);
			free(e);
		} else {
			deferred[j++] = deferred[i];
		}
	}
	n_deferred = j;
}

static void defer_tls(const struct tls_event *e, uint32_t size)
{
	struct tls_event *copy;

	if (n_deferred >= MAX_DEFERRED) {
		write_tls(deferred[0].ev);
		free(deferred[0].ev);
		memmove(deferred, deferred + 1, sizeof(deferred[0]) * (MAX_DEFERRED - 1));
		n_deferred--;
	}
	copy = malloc(size);
	if (!copy) {
		write_tls(e);
		return;
	}
	memcpy(copy, e, size);
	deferred[n_deferred].arrived_ns = now_monotonic_ns();
	deferred[n_deferred].size = size;
	deferred[n_deferred].ev = copy;
	n_deferred++;
}

static void queue_exec(uint32_t pid)
{
	uint64_t now = now_monotonic_ns();

	if (n_execq >= MAX_EXECQ)
		return;
	execq[n_execq++] = (struct exec_item){pid, now, 0};
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event_hdr *h = data;
	char comm[TASK_COMM_LEN + 1];

	if (size < sizeof(*h))
		return 0;
	memcpy(comm, h->comm, TASK_COMM_LEN);
	comm[TASK_COMM_LEN] = 0;
	switch (h->kind) {
	case EV_TLS: {
		const struct tls_event *e = data;

		if (size < offsetof(struct tls_event, data) || e->captured > size - offsetof(struct tls_event, data))
			return 0;
		proc_note_tls(h->pid, comm, lib_name(e->lib), fn_name(e->fn));
		if (e->tuple.family)
			write_tls(e);
		else
			defer_tls(e, (uint32_t)size);
		break;
	}
	case EV_CTX:
	case EV_FREE:
		if (size >= sizeof(struct ctx_event))
			resolve_deferred(data);
		break;
	case EV_CONN:
		if (size >= sizeof(struct conn_event)) {
			const struct conn_event *c = data;

			conn_note(&c->tuple, h->netns, (int)c->role, h->pid, h->tid, comm, "tracepoint",
				  mono_to_real_ns(h->ts_ns));
		}
		break;
	case EV_EXEC:
		proc_forget(h->pid);
		if (size >= sizeof(struct exec_event)) {
			char filename[EXEC_PATH_MAX + 1];

			uint64_t attached = ctr.hooks_attached;

			memcpy(filename, ((const struct exec_event *)data)->filename, EXEC_PATH_MAX);
			filename[EXEC_PATH_MAX] = 0;
			/* first: hooking may take tens of ms, and a short-lived process may be gone after it */
			proc_exec_snapshot(h->pid);
			hook_exec(h->pid, filename);
			/* why: TLS calls a new executable makes before this are not seen (native/README.md) */
			if (ctr.hooks_attached != attached)
				logf_("exec %s (pid %u) hooked %.1f ms after its exec", filename, h->pid,
				      (double)(now_monotonic_ns() - h->ts_ns) / 1e6);
		}
		queue_exec(h->pid);
		break;
	case EV_LIBOPEN:
		if (size >= sizeof(struct exec_event)) {
			char filename[EXEC_PATH_MAX + 1];
			uint64_t attached = ctr.hooks_attached;

			memcpy(filename, ((const struct exec_event *)data)->filename, EXEC_PATH_MAX);
			filename[EXEC_PATH_MAX] = 0;
			hook_opened(h->pid, comm, filename);
			if (ctr.hooks_attached != attached)
				logf_("%s (pid %u) opened %s: hooked %.1f ms after the open", comm, h->pid, filename,
				      (double)(now_monotonic_ns() - h->ts_ns) / 1e6);
		}
		break;
	}
	return 0;
}

/* ---- lifecycle ---- */

int ebpf_start(char *reason, int reason_len)
{
	uint32_t rb_bytes = 1;
	int err;

	skel = tapscope_bpf__open();
	if (!skel) {
		snprintf(reason, (size_t)reason_len, "open BPF object: %s", strerror(errno));
		return 3;
	}
#ifndef __x86_64__
	/* why: open(2) is x86-64 only (arm64 has openat alone); its tracepoint does not exist elsewhere */
	bpf_program__set_autoload(skel->progs.tp_enter_open, false);
#endif
	skel->rodata->max_tls_record = opts.max_tls_record;
	skel->rodata->self_tgid = (uint32_t)getpid();
	while (rb_bytes < (opts.ringbuf_mb ? opts.ringbuf_mb : 8) * 1024u * 1024u)
		rb_bytes <<= 1;
	bpf_map__set_max_entries(skel->maps.events, rb_bytes);
	err = tapscope_bpf__load(skel);
	if (err) {
		snprintf(reason, (size_t)reason_len, "load BPF programs: %s", strerror(-err));
		goto cleanup;
	}
	err = tapscope_bpf__attach(skel);
	if (err) {
		snprintf(reason, (size_t)reason_len, "attach tracepoints: %s", strerror(-err));
		goto cleanup;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle_event, NULL, NULL);
	if (!rb) {
		snprintf(reason, (size_t)reason_len, "ring buffer: %s", strerror(errno));
		goto cleanup;
	}
	ebpf_active = 1;
	return 0;
cleanup:
	tapscope_bpf__destroy(skel);
	skel = NULL;
	return 3;
}

void ebpf_hook_all(void)
{
	hook_system_libraries();
	hook_running_processes();
}

int ebpf_fd(void) { return rb ? ring_buffer__epoll_fd(rb) : -1; }

void ebpf_poll(void)
{
	if (!rb)
		return;
	ring_buffer__consume(rb);
	if (n_deferred)
		flush_deferred(now_monotonic_ns() - DEFER_NS, 0);
}

void ebpf_tick(void)
{
	uint64_t now = now_monotonic_ns();
	int i, j = 0;

	/* why: at exec time the dynamic loader has not mapped the libraries yet; look again shortly after */
	for (i = 0; i < n_execq; i++) {
		struct exec_item it = execq[i];

		if (it.due_ns > now) {
			execq[j++] = it;
			continue;
		}
		ebpf_hook_process(it.pid);
		if (++it.round < 3) {
			it.due_ns = now + 200ull * 1000000ull * (uint64_t)it.round;
			execq[j++] = it;
		}
	}
	n_execq = j;
}

void ebpf_update_stats(void)
{
	int ncpu = libbpf_num_possible_cpus(), fd, c;
	uint64_t *vals, start_full = 0, no_entry = 0;
	uint32_t k;

	if (!skel || ncpu <= 0)
		return;
	vals = calloc((size_t)ncpu, sizeof(uint64_t));
	if (!vals)
		return;
	fd = bpf_map__fd(skel->maps.stats);
	for (k = 0; k < STAT_MAX; k++) {
		uint64_t sum = 0;

		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (c = 0; c < ncpu; c++)
			sum += vals[c];
		switch (k) {
		case STAT_TLS_EVENTS: ctr.tls_events = sum; break;
		case STAT_TLS_BYTES: ctr.tls_bytes = sum; break;
		case STAT_TLS_TRUNCATED: ctr.tls_truncated = sum; break;
		case STAT_RINGBUF_DROPS: ctr.ringbuf_drops = sum; break;
		case STAT_START_FULL: start_full = sum; break;
		case STAT_NO_ENTRY: no_entry = sum; break;
		case STAT_READ_FAILS: ctr.tls_read_fails = sum; break;
		}
	}
	ctr.tls_calls_lost = start_full + no_entry;
	free(vals);
}

void ebpf_write_isb(uint64_t ts_ns)
{
	if (!skel)
		return;
	/* why: Wireshark and capinfos read drops only from ISBs; the records the ring buffer dropped would have been on
	 * tapscope-tls, so its ISB carries them, even when every record was lost and none made its IDB */
	if (tls_ifid == UINT32_MAX && !ctr.ringbuf_drops)
		return;
	tls_iface();
	pcapng_isb(tls_ifid, ts_ns, ctr.tls_events, ctr.ringbuf_drops, 1, 0);
}

void ebpf_flush_output(void)
{
	if (rb)
		ring_buffer__consume(rb);
	flush_deferred(0, 1);
}

void ebpf_stop(void)
{
	int i, j;

	/* note: each uprobe detach waits for an SRCU grace period in the kernel (~100 ms on 6.x, serialized
	 * even from parallel threads), so stopping with ~30 probes takes a few seconds */
	for (i = 0; i < n_hooks; i++) {
		for (j = 0; j < hooks[i].n_links; j++)
			bpf_link__destroy(hooks[i].links[j]);
		hooks[i].n_links = 0;
	}
	ring_buffer__free(rb);
	rb = NULL;
	tapscope_bpf__destroy(skel);
	skel = NULL;
	ebpf_active = 0;
}
