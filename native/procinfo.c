/* Implementation of procinfo.h. */
#include "procinfo.h"
#include "ebpf.h"
#include "filter.h"
#include "pcapng.h"
#include "util.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PID_SLOTS 65536
#define CONN_SLOTS 65536
#define INODE_SLOTS 65536
#define ELF_SLOTS 4096

static uint32_t pid_seen[PID_SLOTS];
static uint64_t conn_seen[CONN_SLOTS];
static uint64_t inode_seen[INODE_SLOTS];
static uint64_t pid_tls_known[PID_SLOTS];
static unsigned long long capture_start_ticks;
/* why kept: glibc's getpid() is a system call each time, and the walks of /proc compare it with every pid */
static uint32_t self_pid;
static struct sbuf jb;

struct elf_cache_ent {
	uint64_t dev, ino;
	struct elf_facts f;
	int used;
};
static struct elf_cache_ent elf_cache[ELF_SLOTS];

/* Open-addressing sets of 64-bit keys (0 is stored as 1: an empty slot is 0). The slot holding `key`,
 * else the empty slot where it would go, else NULL when the set is full. */
static uint64_t *set_slot64(uint64_t *slots, uint32_t n, uint64_t key)
{
	uint32_t i, h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40);

	for (i = 0; i < n; i++) {
		uint64_t *s = &slots[(h + i) & (n - 1)];

		if (*s == key || !*s)
			return s;
	}
	return NULL;
}

/* returns 1 when newly inserted */
static int set_add64(uint64_t *slots, uint32_t n, uint64_t key)
{
	uint64_t *s;

	key = key ? key : 1;
	s = set_slot64(slots, n, key);
	if (s && *s == key)
		return 0;
	if (!s) {
		memset(slots, 0, sizeof(uint64_t) * n); /* full: forget everything rather than fail */
		s = set_slot64(slots, n, key);
	}
	*s = key;
	return 1;
}

static int set_has64(uint64_t *slots, uint32_t n, uint64_t key)
{
	const uint64_t *s;

	key = key ? key : 1;
	s = set_slot64(slots, n, key);
	return s && *s == key;
}

/* The socket inode an entry of /proc/PID/fd points at (`socket:[INODE]`), or 0 for anything else. */
static unsigned long long fd_socket_inode(const char *fddir, const char *name)
{
	char path[300], link[64];
	ssize_t len;

	if (name[0] == '.')
		return 0;
	snprintf(path, sizeof(path), "%s/%s", fddir, name);
	len = readlink(path, link, sizeof(link) - 1);
	if (len <= 8 || strncmp(link, "socket:[", 8))
		return 0;
	link[len] = 0;
	return strtoull(link + 8, NULL, 10);
}

static unsigned long long proc_start_ticks(uint32_t pid, uint32_t *ppid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	int fd, n, field;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p += 2; /* state */
	for (field = 3; *p && field < 22; field++) {
		if (field == 4 && ppid)
			*ppid = (uint32_t)strtoul(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	start = strtoull(p, NULL, 10);
	return start;
}

static void walk_seen_prime(void);

void procinfo_init(void)
{
	FILE *f = fopen("/proc/uptime", "r");
	double up = 0;

	if (f) {
		if (fscanf(f, "%lf", &up) != 1)
			up = 0;
		fclose(f);
	}
	capture_start_ticks = (unsigned long long)(up * (double)sysconf(_SC_CLK_TCK));
	self_pid = (uint32_t)getpid();
	walk_seen_prime();
}

/* The first NUL-delimited string "3.N.N" in buf: GnuTLS's release (gnutls_check_version's answer). Its other
 * dotted strings are OIDs, whose first arc is 0, 1 or 2. */
static void find_gnutls_release(const char *buf, size_t n, char *out, size_t outlen)
{
	const char *p = buf, *end = buf + n;

	while ((p = memchr(p, '3', (size_t)(end - p))) && p + 5 < end) {
		const char *q = p + 1;
		int dots = 0;

		if ((p == buf || !p[-1]) && *q == '.') {
			for (; q < end && (isdigit((unsigned char)*q) || (*q == '.' && isdigit((unsigned char)q[-1]))); q++)
				dots += *q == '.';
			if (q < end && !*q && dots == 2 && isdigit((unsigned char)q[-1]) && (size_t)(q - p) < outlen) {
				memcpy(out, p, (size_t)(q - p));
				out[q - p] = 0;
				return;
			}
		}
		p++;
	}
}

int elf_inspect(const char *path, struct elf_facts *out)
{
	struct stat st;
	Elf *e = NULL;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd, i, slot, gnutls;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0)
		return -1;
	slot = (int)((st.st_ino * 31 + st.st_dev) % ELF_SLOTS);
	if (elf_cache[slot].used && elf_cache[slot].dev == st.st_dev && elf_cache[slot].ino == st.st_ino) {
		*out = elf_cache[slot].f;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getshdrstrndx(e, &shstrndx))
		goto done;
	gnutls = strncmp(strrchr(path, '/') ? strrchr(path, '/') + 1 : path, "libgnutls", 9) == 0;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(e, shstrndx, sh.sh_name);
		if (gnutls && name && !strcmp(name, ".rodata")) {
			Elf_Data *d = elf_getdata(scn, NULL);

			if (d && d->d_buf)
				find_gnutls_release(d->d_buf, d->d_size, out->release, sizeof(out->release));
		}
		if (name && (!strcmp(name, ".go.buildinfo") || !strcmp(name, ".gopclntab")))
			out->go = 1;
		if (name && !strcmp(name, ".gopclntab")) {
			Elf_Data *d = elf_getdata(scn, NULL);
			static const char needle[] = "crypto/tls.(*Conn).Write";

			/* why: pclntab keeps function names even in stripped binaries */
			if (d && d->d_buf && memmem(d->d_buf, d->d_size, needle, sizeof(needle) - 1))
				out->go_tls = 1;
		}
		if (sh.sh_type == SHT_DYNSYM) {
			Elf_Data *d = elf_getdata(scn, NULL);
			size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;

			for (i = 0; d && (size_t)i < n; i++) {
				GElf_Sym sym;
				const char *sn;

				if (!gelf_getsym(d, i, &sym))
					continue;
				sn = elf_strptr(e, sh.sh_link, sym.st_name);
				/* every name tested below starts with S or B: skip the rest of node's 75k cheaply */
				if (!sn || sym.st_shndx == SHN_UNDEF || (sn[0] != 'S' && sn[0] != 'B'))
					continue;
				if (!strcmp(sn, "SSL_write"))
					out->exports_ssl_write = 1;
				/* why the GREASE setter: BoringSSL's libssl (e.g. Debian's android-libboringssl) has the
				 * same soname and SSL_* ABI as OpenSSL's and exports no BORINGSSL_* symbol itself;
				 * OpenSSL has no GREASE */
				else if (!strncmp(sn, "BORINGSSL", 9) || !strcmp(sn, "SSL_CTX_set_grease_enabled"))
					out->boringssl = 1;
			}
		}
	}
done:
	if (e)
		elf_end(e);
	close(fd);
	elf_cache[slot].used = 1;
	elf_cache[slot].dev = st.st_dev;
	elf_cache[slot].ino = st.st_ino;
	elf_cache[slot].f = *out;
	return 0;
}

/* "boringssl" or "openssl" for a libssl.so* file (same soname and ABI; told apart by exported symbols) */
static const char *ssl_flavor(const char *path)
{
	struct elf_facts ef;

	return elf_inspect(path, &ef) == 0 && ef.boringssl ? "boringssl" : "openssl";
}

const char *tls_library_for_file(const char *base, char *version, int version_len)
{
	if (version && version_len)
		version[0] = 0;
	if (!strncmp(base, "libssl.so", 9)) {
		if (version && base[9] == '.')
			snprintf(version, (size_t)version_len, "%s", base + 10);
		return "openssl";
	}
	if (!strcmp(base, "libssl3.so") || !strcmp(base, "libnss3.so"))
		return "nss";
	if (!strncmp(base, "libgnutls.so", 12)) {
		if (version && base[12] == '.')
			snprintf(version, (size_t)version_len, "%s", base + 13);
		return "gnutls";
	}
	if (!strcmp(base, "libjvm.so"))
		return "java-jsse";
	if (!strcmp(base, "libnspr4.so"))
		return "nspr";
	return NULL;
}

const char *tls_library_refine(const char *lib, const char *path, char *version, int version_len)
{
	struct elf_facts ef;

	if (!strcmp(lib, "openssl")) {
		lib = ssl_flavor(path);
		/* its soname number is not a BoringSSL version */
		if (!strcmp(lib, "boringssl") && version && version_len > 0)
			version[0] = 0;
	} else if (!strcmp(lib, "gnutls") && version && version_len > 0) {
		/* why empty rather than the soname number: no version is better than a wrong one */
		version[0] = 0;
		if (elf_inspect(path, &ef) == 0 && ef.release[0])
			snprintf(version, (size_t)version_len, "%s", ef.release);
	}
	return lib;
}

static int lib_rank(const char *lib)
{
	static const char *order[] = {"gnutls", "nss", "openssl", "boringssl", "go-crypto-tls", "java-jsse"};
	int i;

	for (i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++)
		if (!strcmp(order[i], lib))
			return i + 1;
	return 0;
}

static void read_small(const char *path, char *out, int outlen, int nul_to_space)
{
	int fd = open(path, O_RDONLY), n, i;

	out[0] = 0;
	if (fd < 0)
		return;
	n = (int)read(fd, out, (size_t)outlen - 1);
	close(fd);
	if (n <= 0)
		return;
	out[n] = 0;
	for (i = 0; i < n; i++)
		if (out[i] == 0 && nul_to_space)
			out[i] = ' ';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = 0;
}

/* container id: the last 64-hex-character run in the cgroup path (docker, containerd, cri-o) */
static void container_id(const char *cgroup, char *out, int outlen)
{
	const char *p = cgroup, *best = NULL;

	out[0] = 0;
	while (*p) {
		int n = 0;

		while (isxdigit((unsigned char)p[n]) && !isupper((unsigned char)p[n]))
			n++;
		if (n == 64)
			best = p;
		p += n ? n : 1;
	}
	if (best && outlen > 64) {
		memcpy(out, best, 64);
		out[64] = 0;
	}
}

/* the process's cgroup path: the unified (v2) one unless it is just "/", else the longest v1 path;
 * rewrites buf (one path, NUL-terminated) and returns it, or NULL */
static const char *pick_cgroup(char *buf)
{
	char *line = buf, *best = NULL, *unified = NULL;
	size_t best_len = 0;

	while (line && *line) {
		char *nl = strchr(line, '\n'), *path;

		if (nl)
			*nl = 0;
		path = strchr(line, ':');
		path = path ? strchr(path + 1, ':') : NULL;
		if (path) {
			path++;
			if (!strncmp(line, "0::", 3))
				unified = path;
			if (strlen(path) > best_len) {
				best = path;
				best_len = strlen(path);
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	if (unified && strcmp(unified, "/"))
		return unified;
	return best ? best : unified;
}

struct maplib {
	char path[512];
	char lib[24];
	char version[16];
	uint64_t dev, ino;
};

#define MAX_MAPLIBS 16

static int read_maplibs(uint32_t pid, struct maplib *libs, int max)
{
	char path[64], line[1024];
	FILE *f;
	int n = 0, i;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && n < max) {
		unsigned int maj, min;
		unsigned long long ino;
		int off = 0;
		char *file, *base, *nl;
		const char *lib;
		char version[16], rootpath[700];

		if (sscanf(line, "%*s %*s %*s %x:%x %llu %n", &maj, &min, &ino, &off) < 3 || !off || !ino)
			continue;
		file = line + off;
		nl = strchr(file, '\n');
		if (nl)
			*nl = 0;
		if (file[0] != '/')
			continue;
		base = strrchr(file, '/') + 1;
		lib = tls_library_for_file(base, version, sizeof(version));
		if (!lib)
			continue;
		/* why before reading the file: a library is mapped in several segments, one maps line each */
		for (i = 0; i < n; i++)
			if (libs[i].ino == ino && libs[i].dev == makedev(maj, min))
				break;
		if (i < n)
			continue;
		snprintf(rootpath, sizeof(rootpath), "/proc/%u/root%s", pid, file);
		lib = tls_library_refine(lib, rootpath, version, sizeof(version));
		snprintf(libs[n].path, sizeof(libs[n].path), "%s", file);
		snprintf(libs[n].lib, sizeof(libs[n].lib), "%s", lib);
		snprintf(libs[n].version, sizeof(libs[n].version), "%s", version);
		libs[n].dev = makedev(maj, min);
		libs[n].ino = ino;
		n++;
	}
	fclose(f);
	return n;
}

/* pid's slot in pid_seen, or NULL when it was not seen (or was forgotten) */
static uint32_t *pid_slot(uint32_t pid)
{
	uint32_t i, h = (pid * 2654435761u) & (PID_SLOTS - 1);

	for (i = 0; i < PID_SLOTS; i++) {
		uint32_t *s = &pid_seen[(h + i) & (PID_SLOTS - 1)];

		if (*s == pid)
			return s;
		if (!*s)
			return NULL;
	}
	return NULL;
}

void proc_forget(uint32_t pid)
{
	uint32_t *s = pid_slot(pid);

	if (s)
		*s = UINT32_MAX; /* tombstone */
}

static int pid_mark(uint32_t pid)
{
	uint32_t i, h = (pid * 2654435761u) & (PID_SLOTS - 1);
	uint32_t *tomb = NULL;

	for (i = 0; i < PID_SLOTS; i++) {
		uint32_t *s = &pid_seen[(h + i) & (PID_SLOTS - 1)];

		if (*s == pid)
			return 0;
		if (*s == UINT32_MAX && !tomb)
			tomb = s;
		if (!*s) {
			*(tomb ? tomb : s) = pid;
			return 1;
		}
	}
	memset(pid_seen, 0, sizeof(pid_seen));
	pid_seen[h] = pid;
	return 1;
}

void proc_note(uint32_t pid, const char *comm_fallback)
{
	proc_note_tls(pid, comm_fallback, NULL, NULL);
}

/* The TLS library a `proc` record names when /proc does not show one: a hook that fired, or a library file
 * the process opened (not yet mapped). */
struct tls_hint {
	const char *lib, *via, *evidence, *version;
	const char *open_path; /* via "open": where the helper opens the file (its hook is listed from it) */
};

static void proc_write(uint32_t pid, const char *comm_fallback, const struct tls_hint *hint);

void proc_note_tls(uint32_t pid, const char *comm_fallback, const char *hook_lib, const char *hook_fn)
{
	struct tls_hint hint = {hook_lib, "hook", hook_fn, NULL, NULL};

	if (!pid)
		return;
	if (!pid_mark(pid)) {
		/* seen before: write again only when a hook just told the library and /proc could not */
		if (!hook_lib || set_has64(pid_tls_known, PID_SLOTS, pid))
			return;
	} else {
		ctr.procs++;
	}
	proc_write(pid, comm_fallback, hook_lib ? &hint : NULL);
}

void proc_note_opened(uint32_t pid, const char *comm, const char *lib, const char *path, const char *open_path,
		      const char *version)
{
	struct tls_hint hint = {lib, "open", path, version, open_path};

	/* why only a process already written, without a library: one with no `proc` record yet gets one when
	 * it owns a socket, and its maps show the library by then */
	if (!pid || !pid_slot(pid) || set_has64(pid_tls_known, PID_SLOTS, pid))
		return;
	proc_write(pid, comm, &hint);
}

/* A mapped library's stat, through the process's root (for hook_find's overlay match); when that fails, the
 * device and inode its maps line gave. */
static void maplib_stat(uint32_t pid, const struct maplib *l, struct stat *st)
{
	char path[600];

	snprintf(path, sizeof(path), "/proc/%u/root%s", pid, l->path);
	if (stat(path, st) == 0 && (uint64_t)st->st_ino == l->ino)
		return;
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)l->dev;
	st->st_ino = (ino_t)l->ino;
}

/* What /proc tells about a process, apart from its mapped libraries. */
struct ident {
	uint32_t pid, ppid;
	int alive; /* /proc/PID/exe could be read */
	int have_ef; /* ef holds the executable's ELF facts */
	unsigned long long start;
	struct elf_facts ef;
	char exe[512], comm[64], cmdline[512], cgroup[512], cid[80];
};

static void read_ident(uint32_t pid, const char *comm_fallback, struct ident *id)
{
	char path[64], cgroup[1024];
	const char *cg;
	ssize_t len;

	memset(id, 0, sizeof(*id));
	id->pid = pid;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	len = readlink(path, id->exe, sizeof(id->exe) - 1);
	id->alive = len > 0;
	id->exe[len > 0 ? len : 0] = 0;
	id->have_ef = id->alive && elf_inspect(path, &id->ef) == 0;
	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	read_small(path, id->comm, sizeof(id->comm), 0);
	if (!id->comm[0] && comm_fallback)
		snprintf(id->comm, sizeof(id->comm), "%s", comm_fallback);
	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	read_small(path, id->cmdline, sizeof(id->cmdline), 1);
	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	read_small(path, cgroup, sizeof(cgroup), 0);
	/* why: container runtimes name cgroups after the container id, in the unified (v2) hierarchy or,
	 * on hybrid hosts, only in v1 controller lines: search every line */
	container_id(cgroup, id->cid, sizeof(id->cid));
	cg = pick_cgroup(cgroup);
	snprintf(id->cgroup, sizeof(id->cgroup), "%s", cg ? cg : "");
	id->start = proc_start_ticks(pid, &id->ppid);
}

/* why: a process that exits within moments of its connect (a health check, a cron job's curl) is gone before
 * its `proc` record is written; what was read at its exec still names it (exe, command line, cgroup and so its
 * pod, the TLS carried in its executable) */
#define EXEC_SNAPS 256
static struct ident exec_snaps[EXEC_SNAPS];
static unsigned exec_snap_next;

void proc_exec_snapshot(uint32_t pid)
{
	struct ident *id = &exec_snaps[exec_snap_next++ % EXEC_SNAPS];

	read_ident(pid, NULL, id);
	if (!id->alive)
		id->pid = 0;
}

/* the exec-time identity of pid, when it is the same program: a pid reused by another one has another comm */
static const struct ident *exec_snapshot(uint32_t pid, const char *comm)
{
	unsigned i;

	for (i = 1; i <= EXEC_SNAPS; i++) {
		const struct ident *id = &exec_snaps[(exec_snap_next - i) % EXEC_SNAPS];

		if (id->pid == pid)
			return comm && comm[0] && strcmp(comm, id->comm) ? NULL : id;
	}
	return NULL;
}

static void proc_write(uint32_t pid, const char *comm_fallback, const struct tls_hint *hint)
{
	char rootpath[600];
	struct maplib libs[MAX_MAPLIBS];
	const char *lib = NULL, *via = NULL, *evidence = NULL, *version = NULL;
	struct ident now;
	const struct ident *id = &now;
	int n, i, first = 1, listed = 0, from_exec = 0;
	const char *exe;

	if (ebpf_active)
		ebpf_hook_process(pid);
	read_ident(pid, comm_fallback, &now);
	if (!now.alive) {
		const struct ident *snap = exec_snapshot(pid, now.comm);

		if (snap) {
			id = snap;
			from_exec = 1;
		}
	}
	exe = id->exe;

	n = now.alive ? read_maplibs(pid, libs, MAX_MAPLIBS) : 0;
	for (i = 0; i < n; i++) {
		if (!strcmp(libs[i].lib, "nspr"))
			continue;
		if (!lib || lib_rank(libs[i].lib) > lib_rank(lib)) {
			lib = libs[i].lib;
			via = "maps";
			evidence = libs[i].path;
			version = libs[i].version[0] ? libs[i].version : NULL;
		}
	}
	if (exe[0]) {
		const char *base = strrchr(exe, '/');

		if (id->have_ef) {
			if (id->ef.go_tls && (!lib || lib_rank("go-crypto-tls") > lib_rank(lib))) {
				lib = "go-crypto-tls";
				via = "buildid";
				evidence = exe;
				version = NULL;
			} else if (id->ef.exports_ssl_write && (!lib || strcmp(lib, "java-jsse"))) {
				lib = id->ef.boringssl ? "boringssl" : "openssl";
				via = "binary";
				evidence = exe;
				version = NULL;
			}
		}
		if (base && !strcmp(base + 1, "java")) {
			lib = "java-jsse";
			via = "binary";
			evidence = exe;
			version = NULL;
		}
	}

	if (!lib && hint) {
		lib = hint->lib;
		via = hint->via;
		evidence = hint->evidence;
		version = hint->version;
	}
	if (lib)
		set_add64(pid_tls_known, PID_SLOTS, pid);

	sb_reset(&jb);
	sb_printf(&jb, "{\"t\":\"proc\",\"pid\":%u,\"ppid\":%u,\"comm\":", pid, id->ppid);
	sb_json_str(&jb, now.comm);
	sb_puts(&jb, ",\"exe\":");
	sb_json_str(&jb, exe[0] ? exe : NULL);
	sb_puts(&jb, ",\"cmdline\":");
	sb_json_str(&jb, id->cmdline[0] ? id->cmdline : NULL);
	sb_puts(&jb, ",\"cgroup\":");
	sb_json_str(&jb, id->cgroup[0] ? id->cgroup : NULL);
	sb_puts(&jb, ",\"containerId\":");
	sb_json_str(&jb, id->cid[0] ? id->cid : NULL);
	/* (a process whose exec the helper saw started after the capture began) */
	sb_printf(&jb, ",\"startedBeforeCapture\":%s,\"alive\":%s,%s\"tls\":",
		  now.alive && now.start && now.start < capture_start_ticks ? "true" : "false", now.alive ? "true" : "false",
		  from_exec ? "\"readAt\":\"exec\"," : "");
	if (lib) {
		sb_puts(&jb, "{\"library\":");
		sb_json_str(&jb, lib);
		sb_puts(&jb, ",\"via\":");
		sb_json_str(&jb, via);
		sb_puts(&jb, ",\"evidence\":");
		sb_json_str(&jb, evidence);
		sb_puts(&jb, ",\"version\":");
		sb_json_str(&jb, version);
		sb_putc(&jb, '}');
	} else {
		sb_puts(&jb, "null");
	}
	sb_puts(&jb, ",\"hooks\":[");
	if (ebpf_active) {
		for (i = 0; i < n; i++) {
			if (!strcmp(libs[i].lib, "nss") || !strcmp(libs[i].lib, "java-jsse"))
				continue; /* NSS is hooked through libnspr4.so; the JVM entry is the executable's */
			struct stat st;

			maplib_stat(pid, &libs[i], &st);
			if (ebpf_hook_json(&jb, !first, &st, libs[i].path, strcmp(libs[i].lib, "nspr") ? libs[i].lib : "nss"))
				first = 0;
			if (hint && hint->open_path && !strcmp(libs[i].path, hint->evidence))
				listed = 1;
		}
		/* an opened library is not mapped yet: its hook is listed from the file */
		if (hint && hint->open_path && !listed) {
			struct stat st;

			if (stat(hint->open_path, &st) == 0 && ebpf_hook_json(&jb, !first, &st, hint->evidence, hint->lib))
				first = 0;
		}
		if (exe[0] && lib && (!strcmp(via, "binary") || !strcmp(via, "buildid"))) {
			struct stat st;

			snprintf(rootpath, sizeof(rootpath), "/proc/%u/exe", pid);
			/* (the process gone: its executable by path, which resolves here when it shared our mount namespace) */
			if ((stat(now.alive ? rootpath : exe, &st) == 0) && ebpf_hook_json(&jb, !first, &st, exe, lib))
				first = 0;
		}
	}
	sb_puts(&jb, "]}");
	pcapng_custom_json(jb.p, jb.len);
}

void tuple_addr_str(const struct tuple *t, int local, char *out, int outlen)
{
	const uint8_t *a = local ? t->saddr : t->daddr;
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (t->family == 2)
		inet_ntop(AF_INET, a, out, (socklen_t)outlen);
	else if (!memcmp(a, v4mapped, 12))
		inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen);
	else
		inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
}

static uint64_t tuple_key(const struct tuple *t)
{
	uint64_t h = 1469598103934665603ull;
	const uint8_t *p = (const uint8_t *)t;
	size_t i;

	for (i = 0; i < offsetof(struct tuple, family); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (h ^ t->proto) * 1099511628211ull;
}

/* A connection's key in conn_seen. why the namespace: pods' own loopback connections can share one 5-tuple */
static uint64_t conn_key(const struct tuple *t, uint32_t netns)
{
	return (tuple_key(t) ^ netns) * 1099511628211ull;
}

static int end_excluded(const struct tuple *t, const uint8_t *addr, uint16_t port)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	int i, v4 = t->family == AF_INET || (t->family == AF_INET6 && !memcmp(addr, v4mapped, 12));
	const uint8_t *a = t->family == AF_INET6 && v4 ? addr + 12 : addr;

	for (i = 0; i < opts.n_excludes; i++) {
		const struct exclude *x = &opts.excludes[i];

		if (x->port == port && x->family == (v4 ? AF_INET : AF_INET6) && !memcmp(x->addr, a, v4 ? 4 : 16))
			return 1;
	}
	return 0;
}

int tuple_excluded(const struct tuple *t)
{
	if (!opts.n_excludes || !t->family || t->proto != 6 /* IPPROTO_TCP */)
		return 0;
	return end_excluded(t, t->saddr, t->sport) || end_excluded(t, t->daddr, t->dport);
}

void conn_note(const struct tuple *t, uint32_t netns, int role, uint32_t pid, uint32_t tid, const char *comm,
	       const char *via, uint64_t ts_ns)
{
	char l[64], r[64];

	if (tuple_excluded(t)) {
		ctr.excluded++;
		return;
	}
	/* why: with a capture filter, the connections it leaves out are not the capture's (a pod's capture on a busy
	 * node would otherwise stream the whole node's connections); matched as a packet of the connection carrying data */
	if (!filter_record(t, 1))
		return;

	if (!set_add64(conn_seen, CONN_SLOTS, conn_key(t, netns)))
		return;
	ctr.conns++;
	proc_note(pid, comm);
	tuple_addr_str(t, 1, l, sizeof(l));
	tuple_addr_str(t, 0, r, sizeof(r));
	sb_reset(&jb);
	sb_printf(&jb, "{\"t\":\"conn\",\"proto\":\"%s\",\"local\":{\"ip\":\"%s\",\"port\":%u},\"remote\":{\"ip\":\"%s\",\"port\":%u},"
		  "\"role\":\"%s\",\"pid\":%u,\"tid\":%u,\"comm\":",
		  t->proto == 17 ? "udp" : "tcp", l, t->sport, r, t->dport,
		  role == ROLE_CLIENT ? "client" : role == ROLE_SERVER ? "server" : "unknown", pid, tid);
	sb_json_str(&jb, comm);
	sb_printf(&jb, ",\"via\":\"%s\",\"tsNs\":%llu", via, (unsigned long long)ts_ns);
	if (netns)
		sb_printf(&jb, ",\"netns\":%u", netns);
	sb_putc(&jb, '}');
	pcapng_custom_json(jb.p, jb.len);
}

struct sockrow {
	struct tuple t;
	uint64_t ino;
	int listen;
};

static void parse_hex_addr(const char *hex, uint8_t *out, int words)
{
	int w;

	for (w = 0; w < words; w++) {
		char tmp[9];
		uint32_t v;

		memcpy(tmp, hex + w * 8, 8);
		tmp[8] = 0;
		v = (uint32_t)strtoul(tmp, NULL, 16);
		memcpy(out + w * 4, &v, 4);
	}
}

static int read_net(const char *file, int family, uint8_t proto, struct sockrow *rows, int n, int max)
{
	char line[512];
	FILE *f = fopen(file, "r");

	if (!f)
		return n;
	/* why: every read() of the file resumes the kernel's hash table walk; bigger reads, fewer walks */
	setvbuf(f, NULL, _IOFBF, 1u << 16);
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return n;
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		char la[40], ra[40];
		unsigned lp, rp, st;
		unsigned long long ino;
		struct sockrow *r = &rows[n];

		if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %*s %*s %*s %*s %*s %llu", la, &lp, ra, &rp, &st,
			   &ino) != 6)
			continue;
		memset(r, 0, sizeof(*r));
		r->t.family = (uint16_t)family;
		r->t.proto = proto;
		parse_hex_addr(la, r->t.saddr, family == 2 ? 1 : 4);
		parse_hex_addr(ra, r->t.daddr, family == 2 ? 1 : 4);
		r->t.sport = (uint16_t)lp;
		r->t.dport = (uint16_t)rp;
		r->ino = ino;
		r->listen = proto == 6 ? st == 0x0A : rp == 0;
		n++;
	}
	fclose(f);
	return n;
}

#define MAX_ROWS 8192

void proc_scan_conns(void) { proc_scan(1); }

static void scan(int with_tcp, int bound_udp_only);

void proc_scan(int with_tcp) { scan(with_tcp, 0); }

void proc_scan_bound_udp(void) { scan(0, 1); }

static void scan(int with_tcp, int bound_udp_only)
{
	static struct sockrow rows[MAX_ROWS];
	static uint16_t listen_ports[1024];
	int n = 0, i, n_listen = 0, unknown = 0;
	DIR *proc;
	struct dirent *de;

	/* why: each /proc/net/tcp* read walks the kernel's whole established hash table (every namespace's;
	 * 256 Ki buckets here), 2-15 ms under load: drain the capture ring between the files */
	if (with_tcp) {
		n = read_net("/proc/self/net/tcp", 2, 6, rows, n, MAX_ROWS);
		capture_yield();
		n = read_net("/proc/self/net/tcp6", 10, 6, rows, n, MAX_ROWS);
		capture_yield();
	}
	n = read_net("/proc/self/net/udp", 2, 17, rows, n, MAX_ROWS);
	n = read_net("/proc/self/net/udp6", 10, 17, rows, n, MAX_ROWS);
	capture_yield();
	for (i = 0; i < n; i++) {
		/* why UDP's are not skipped: a UDP socket bound and not connected (a DNS, QUIC or DTLS server's) is named by
		 * no connect or accept; its conn CB has no remote end, and every peer's datagrams are its */
		if (rows[i].listen && rows[i].t.proto == 6) {
			if (n_listen < 1024)
				listen_ports[n_listen++] = rows[i].t.sport;
			continue;
		}
		/* why: in ebpf mode connect and accept name every connected socket; a scan for those would walk every
		 * process's fds each time a DNS lookup made a new one */
		if (bound_udp_only && !rows[i].listen)
			rows[i].ino = 0;
		if (rows[i].ino && !set_has64(inode_seen, INODE_SLOTS, rows[i].ino))
			unknown++;
	}
	if (!unknown)
		return;
	/* why: walking every process's fds is the expensive part; do it only when new sockets exist */
	proc = opendir("/proc");
	if (!proc)
		return;
	while ((de = readdir(proc))) {
		char fddir[64], comm[64];
		uint32_t pid;
		DIR *fds;
		struct dirent *fe;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = (uint32_t)strtoul(de->d_name, NULL, 10);
		if (pid == self_pid)
			continue;
		capture_yield();
		snprintf(fddir, sizeof(fddir), "/proc/%u/fd", pid);
		fds = opendir(fddir);
		if (!fds)
			continue;
		comm[0] = 0;
		while ((fe = readdir(fds))) {
			unsigned long long ino = fd_socket_inode(fddir, fe->d_name);

			if (!ino)
				continue;
			for (i = 0; i < n; i++) {
				int j, role = ROLE_CLIENT;

				if (rows[i].ino != ino || (rows[i].listen && rows[i].t.proto == 6) || set_has64(inode_seen, INODE_SLOTS, ino))
					continue;
				if (!comm[0]) {
					char cpath[64];

					snprintf(cpath, sizeof(cpath), "/proc/%u/comm", pid);
					read_small(cpath, comm, sizeof(comm), 0);
				}
				for (j = 0; j < n_listen; j++)
					if (listen_ports[j] == rows[i].t.sport)
						role = ROLE_SERVER;
				if (rows[i].t.proto == 17)
					role = 0;
				/* the helper's own /proc/net: sockets of its network namespace */
				conn_note(&rows[i].t, capture_netns, role, pid, pid, comm, "proc", now_realtime_ns());
			}
		}
		closedir(fds);
	}
	closedir(proc);
	for (i = 0; i < n; i++)
		if (rows[i].ino && !(rows[i].listen && rows[i].t.proto == 6))
			set_add64(inode_seen, INODE_SLOTS, rows[i].ino);
}

/* ---- a new socket resolved at its first packet (sock_diag + cached inode -> pid map): in afpacket mode a TCP
 * flow's at its SYN, in both modes a UDP socket's at its first datagram out ---- */

#define PENDING_MAX 256
#define PENDING_TTL_NS (500ull * 1000000ull)
#define PENDING_RETRY_NS (5ull * 1000000ull)
#define WALK_MIN_NS (20ull * 1000000ull)
/* why a few: each stops at the socket's owner, and one that misses reads every new process's fds */
#define NEW_WALKS_MAX 8
#define INO_SLOTS 32768
/* UDP ends looked up lately: direct-mapped by the end's hash, each entry good for UDP_END_TTL_NS */
#define UDP_ENDS 4096
#define UDP_END_TTL_NS (2000ull * 1000000ull)

struct pending {
	struct tuple t; /* oriented local end first; once sock_diag found the socket, the socket's own ends */
	int role;
	int dnat_tried; /* the lookup by client end was made (once: the socket is there while its SYN is new) */
	uint64_t ino;   /* the socket's, once found: later tries only look for its process */
	uint64_t first_ns, next_ns;
};

static struct pending pending[PENDING_MAX];
static int n_pending;
static int diag_fd = -1;
static uint32_t diag_seq;
static uint64_t last_walk_ns;
static struct {
	uint64_t ino;
	uint32_t pid;
} ino_pid[INO_SLOTS];
static struct {
	uint64_t key, until_ns;
} udp_ends[UDP_ENDS];

/* Queues tuple t (local end first) for proc_resolve_pending: 0, or -1 when the list is full. */
static int pending_add(const struct tuple *t, int role)
{
	struct pending *it;

	if (n_pending >= PENDING_MAX)
		return -1;
	it = &pending[n_pending++];
	memset(it, 0, sizeof(*it));
	it->t = *t;
	it->role = role;
	it->first_ns = now_monotonic_ns();
	return 0;
}

void proc_note_syn(const struct tuple *pkt, int dir)
{
	int k;

	for (k = 0; k < 2; k++) {
		struct tuple t;

		/* outbound SYN: a local client socket; inbound: a local server (accepted) socket; loopback: both */
		if ((dir > 0 && k == 1) || (dir < 0 && k == 0))
			continue;
		memset(&t, 0, sizeof(t));
		t.family = pkt->family;
		t.proto = 6;
		/* the SYN's source is the local end of a client socket here, or the remote end of a server one */
		memcpy(t.saddr, k ? pkt->daddr : pkt->saddr, 16);
		memcpy(t.daddr, k ? pkt->saddr : pkt->daddr, 16);
		t.sport = k ? pkt->dport : pkt->sport;
		t.dport = k ? pkt->sport : pkt->dport;
		if (pending_add(&t, k ? ROLE_SERVER : ROLE_CLIENT) < 0)
			return;
	}
}

/* A UDP local end's key in udp_ends: its address, port and family mixed. why not tuple_key: this runs for every
 * datagram going out, and FNV over the whole tuple costs more than the rest of the datagram's handling */
static uint64_t udp_end_key(const struct tuple *t)
{
	uint64_t a, b;

	memcpy(&a, t->saddr, 8);
	memcpy(&b, t->saddr + 8, 8);
	return ((a * 0x9E3779B97F4A7C15ull) ^ (b + ((uint64_t)t->sport << 16 | t->family))) * 0xC2B2AE3D27D4EB4Full;
}

int proc_note_udp(const struct tuple *pkt, uint64_t now_ns)
{
	uint64_t key = udp_end_key(pkt);
	int slot = (int)(key >> 52) & (UDP_ENDS - 1);

	/* why per local end, not per datagram or peer: one lookup names the socket whatever its peers, and a flood from
	 * one socket then costs a table probe per datagram, not a sock_diag query */
	if (udp_ends[slot].key == key && now_ns < udp_ends[slot].until_ns)
		return 0;
	/* (the datagram's source is the sending socket's local end, its destination that socket's peer) */
	if (pending_add(pkt, 0) < 0)
		return 1;
	udp_ends[slot].key = key;
	udp_ends[slot].until_ns = now_ns + UDP_END_TTL_NS;
	return 1;
}

/* A NETLINK_SOCK_DIAG socket whose reads give up after 20 ms; -1 on failure. */
static int diag_open(void)
{
	struct timeval tv = {0, 20000};
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* The header and request of a sock_diag query about t's family and protocol: `len` bytes in all, `flags` besides
 * NLM_F_REQUEST. */
static void diag_request(struct nlmsghdr *nlh, struct inet_diag_req_v2 *r, size_t len, uint16_t flags, const struct tuple *t)
{
	nlh->nlmsg_len = (uint32_t)len;
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	r->sdiag_family = (uint8_t)t->family;
	r->sdiag_protocol = t->proto;
}

/* Exact socket lookup by tuple t (local end first; NETLINK_SOCK_DIAG, inet_diag_req_v2 without NLM_F_DUMP). Returns
 * the socket's inode and fills *sock with its own ends (local first), or 0 when there is none (yet: for TCP, only a
 * listener or a TIME_WAIT socket without an inode). For UDP, t is a datagram the socket sent: an unconnected
 * socket's *sock has no remote end, and one bound to a wildcard address has that address as its local one. */
static uint64_t diag_inode(const struct tuple *t, struct tuple *sock)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	union {
		char buf[1024];
		struct nlmsghdr align;
	} resp;
	struct nlmsghdr *h;
	ssize_t n;
	size_t alen = t->family == AF_INET ? 4 : 16;
	int udp = t->proto == IPPROTO_UDP;

	if (diag_fd < 0 && (diag_fd = diag_open()) < 0)
		return 0;
	memset(&req, 0, sizeof(req));
	diag_request(&req.nlh, &req.r, sizeof(req), 0, t);
	req.r.idiag_states = ~0u;
	/* why the ends swapped for UDP: the kernel answers with the socket that would receive a datagram from the
	 * id's source to its destination (udp_dump_one -> __udp4_lib_lookup(src, sport, dst, dport)), which is the
	 * sender's socket, connected or not, when the datagram's destination is named as the source */
	req.r.id.idiag_sport = htons(udp ? t->dport : t->sport);
	req.r.id.idiag_dport = htons(udp ? t->sport : t->dport);
	memcpy(req.r.id.idiag_src, udp ? t->daddr : t->saddr, alen);
	memcpy(req.r.id.idiag_dst, udp ? t->saddr : t->daddr, alen);
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	req.nlh.nlmsg_seq = ++diag_seq;
	if (send(diag_fd, &req, sizeof(req), 0) < 0)
		return 0;
	for (;;) {
		n = recv(diag_fd, &resp, sizeof(resp), 0);
		if (n <= 0)
			return 0;
		/* why: a reply that came after an earlier timeout belongs to another lookup */
		if (resp.align.nlmsg_seq == diag_seq)
			break;
	}
	for (h = &resp.align; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		const struct inet_diag_msg *m;

		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) {
			return 0; /* NLMSG_ERROR: no such socket */
		}
		m = NLMSG_DATA(h);
		if (ntohs(m->id.idiag_sport) != t->sport || (!udp && ntohs(m->id.idiag_dport) != t->dport))
			return 0;
		/* why: a lookup falls back to the listener; the accepted socket appears a moment later */
		if (!udp && (m->idiag_state == 10 /* TCP_LISTEN */ || !m->id.idiag_dport))
			return 0;
		*sock = *t;
		if (udp) {
			/* (an IPv6 socket, not IPv6-only, sends IPv4 datagrams: its ends are then IPv4-mapped) */
			memset(sock, 0, sizeof(*sock));
			sock->family = m->idiag_family;
			sock->proto = IPPROTO_UDP;
			alen = m->idiag_family == AF_INET ? 4 : 16;
			memcpy(sock->saddr, m->id.idiag_src, alen);
			memcpy(sock->daddr, m->id.idiag_dst, alen);
			sock->sport = t->sport;
			sock->dport = ntohs(m->id.idiag_dport);
		}
		return m->idiag_inode;
	}
	return 0;
}

/* A client socket with local end t's source (address and port) whose remote end is not t's destination: the
 * socket of a connection that DNAT (OUTPUT: a Service address, a published port) sent elsewhere, the SYN's
 * addresses being those after DNAT. Asks sock_diag for the sockets with that source port (a bytecode filter, so
 * a busy node's other connections are not dumped); fills *sock (local end first) and returns its inode, else 0. */
static uint64_t diag_dnat_inode(const struct tuple *t, struct tuple *sock)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
		struct nlattr bc_attr;
		struct inet_diag_bc_op bc[4];
	} req;
	union {
		char buf[8192];
		struct nlmsghdr align;
	} resp;
	uint64_t found = 0;
	size_t alen = t->family == AF_INET ? 4 : 16;
	int done = 0;
	/* why its own socket: a dump's many replies must not mix with diag_inode's exact lookups */
	int fd = diag_open();

	if (fd < 0)
		return 0;
	memset(&req, 0, sizeof(req));
	diag_request(&req.nlh, &req.r, sizeof(req), NLM_F_DUMP, t);
	req.nlh.nlmsg_seq = 1;
	/* SYN_SENT (2) and ESTABLISHED (1): the SYN-ACK may have come back before this lookup */
	req.r.idiag_states = (1u << 1) | (1u << 2);
	req.bc_attr.nla_len = (uint16_t)(sizeof(req.bc_attr) + sizeof(req.bc));
	req.bc_attr.nla_type = INET_DIAG_REQ_BYTECODE;
	/* source port >= p, then <= p: each condition is an op and an op holding the port; a jump past the end rejects */
	req.bc[0] = (struct inet_diag_bc_op){INET_DIAG_BC_S_GE, 8, 20};
	req.bc[1] = (struct inet_diag_bc_op){0, 0, t->sport};
	req.bc[2] = (struct inet_diag_bc_op){INET_DIAG_BC_S_LE, 8, 12};
	req.bc[3] = (struct inet_diag_bc_op){0, 0, t->sport};
	if (send(fd, &req, sizeof(req), 0) < 0) {
		close(fd);
		return 0;
	}
	while (!done) {
		ssize_t n = recv(fd, &resp, sizeof(resp), 0);
		struct nlmsghdr *h;

		if (n <= 0)
			break;
		for (h = &resp.align; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			const struct inet_diag_msg *m;

			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = 1;
				break;
			}
			m = NLMSG_DATA(h);
			if (found || ntohs(m->id.idiag_sport) != t->sport || memcmp(m->id.idiag_src, t->saddr, alen) ||
			    (ntohs(m->id.idiag_dport) == t->dport && !memcmp(m->id.idiag_dst, t->daddr, alen)) || !m->idiag_inode)
				continue;
			memset(sock, 0, sizeof(*sock));
			sock->family = t->family;
			sock->proto = 6;
			memcpy(sock->saddr, m->id.idiag_src, alen);
			memcpy(sock->daddr, m->id.idiag_dst, alen);
			sock->sport = t->sport;
			sock->dport = ntohs(m->id.idiag_dport);
			found = m->idiag_inode;
		}
	}
	close(fd);
	return found;
}

static uint32_t ino_pid_get(uint64_t ino)
{
	uint32_t h = (uint32_t)((ino * 0x9E3779B97F4A7C15ull) >> 40), i;

	for (i = 0; i < 64; i++) {
		uint32_t s = (h + i) & (INO_SLOTS - 1);

		if (!ino_pid[s].ino)
			return 0;
		if (ino_pid[s].ino == ino)
			return ino_pid[s].pid;
	}
	return 0;
}

static void ino_pid_put(uint64_t ino, uint32_t pid)
{
	uint32_t h = (uint32_t)((ino * 0x9E3779B97F4A7C15ull) >> 40), i;

	for (i = 0; i < 64; i++) {
		uint32_t s = (h + i) & (INO_SLOTS - 1);

		if (!ino_pid[s].ino || ino_pid[s].ino == ino) {
			ino_pid[s].ino = ino;
			ino_pid[s].pid = pid;
			return;
		}
	}
}

/* per pid: when it was first seen by a walk, in 100 ms units + 1 (0 = never); sized by pid_max */
static uint16_t *walk_seen;
static uint32_t walk_seen_max;

/* adds pid's sockets to the inode -> pid map: 0, or -1 when the process is gone (or its fds cannot be read) */
static int walk_pid_fds(uint32_t pid)
{
	char fddir[64];
	struct dirent *fe;
	DIR *fds;

	snprintf(fddir, sizeof(fddir), "/proc/%u/fd", pid);
	fds = opendir(fddir);
	if (!fds)
		return -1;
	while ((fe = readdir(fds))) {
		unsigned long long ino = fd_socket_inode(fddir, fe->d_name);

		if (ino)
			ino_pid_put(ino, pid);
	}
	closedir(fds);
	return 0;
}

/* Allocates walk_seen on first use: 0, or -1 when it cannot be had (every walk is then a full one). */
static int walk_seen_alloc(void)
{
	char v[32];

	if (walk_seen)
		return 0;
	read_small("/proc/sys/kernel/pid_max", v, sizeof(v), 0);
	walk_seen_max = (uint32_t)strtoul(v, NULL, 10);
	if (walk_seen_max < 32768 || walk_seen_max > 4194304)
		walk_seen_max = 4194304;
	/* why calloc: only the pages of pids in use are ever touched */
	walk_seen = calloc(walk_seen_max + 1, sizeof(*walk_seen));
	return walk_seen ? 0 : -1;
}

/* Marks the processes running at the capture's start as seen long ago. why: else the first walk finds every process
 * new, and for its first 2 s a look at "new" processes reads every process's fds (3-8 ms on the lab VM under load),
 * while a client that sends one datagram and exits closes its socket within a millisecond */
static void walk_seen_prime(void)
{
	uint16_t old = (uint16_t)((now_monotonic_ns() / 100000000ull) - 30) | 1;
	struct dirent *de;
	DIR *proc;

	if (walk_seen_alloc() < 0 || !(proc = opendir("/proc")))
		return;
	while ((de = readdir(proc))) {
		uint32_t pid = (uint32_t)strtoul(de->d_name, NULL, 10);

		if (isdigit((unsigned char)de->d_name[0]) && pid <= walk_seen_max)
			walk_seen[pid] = old;
	}
	closedir(proc);
}

/* Fills the socket inode -> pid map from /proc/PID/fd: all processes (full, rebuilds the map: the
 * expensive part, rate-limited by the caller) or only those first seen in the last 2 s (cheap: a new
 * short-lived connection usually belongs to a process that started a moment ago), newest first and, when want is
 * an inode, only until its process is found. */
static void ino_pid_walk(int full, uint64_t want)
{
	static uint32_t fresh[1024];
	int n_fresh = 0;
	DIR *proc;
	struct dirent *de;
	uint16_t tnow = (uint16_t)(now_monotonic_ns() / 100000000ull) | 1;

	if (walk_seen_alloc() < 0)
		full = 1;
	proc = opendir("/proc");
	if (!proc)
		return;
	if (full)
		memset(ino_pid, 0, sizeof(ino_pid));
	while ((de = readdir(proc))) {
		uint32_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = (uint32_t)strtoul(de->d_name, NULL, 10);
		if (pid == self_pid)
			continue;
		if (walk_seen && pid <= walk_seen_max) {
			if (!walk_seen[pid])
				walk_seen[pid] = tnow;
			else if (!full && (uint16_t)(tnow - walk_seen[pid]) > 20)
				continue;
		}
		if (!full && n_fresh < (int)(sizeof(fresh) / sizeof(fresh[0]))) {
			fresh[n_fresh++] = pid;
			continue;
		}
		capture_yield();
		walk_pid_fds(pid);
	}
	closedir(proc);
	/* why newest first (pids grow until they wrap), and no further than the socket's owner: a client that sends one
	 * datagram and exits closes its socket within a millisecond, and on a busy node the processes started in the last
	 * 2 s (test runners, shells, short jobs) can hold hundreds of fds between them */
	while (n_fresh > 0 && !(want && ino_pid_get(want))) {
		capture_yield();
		walk_pid_fds(fresh[--n_fresh]);
	}
}

/* pids that owned the last connections resolved, most recent first: a process that opened one
 * connection tends to open the next (a client's requests, a pool) */
#define RECENT_OWNERS 8
static uint32_t recent_owners[RECENT_OWNERS];

static void recent_owner_note(uint32_t pid)
{
	int i;

	for (i = 0; i < RECENT_OWNERS - 1 && recent_owners[i] != pid; i++)
		;
	memmove(recent_owners + 1, recent_owners, sizeof(recent_owners[0]) * (size_t)i);
	recent_owners[0] = pid;
}

/* why: without it every new connection of a long-running client (older than the 2 s "new process"
 * window) cost a walk of every process's fds: curl making one connection per request ran at half speed
 * in afpacket mode on the 2-core lab VM (native/README.md) */
static void walk_recent_owners(void)
{
	int i, j = 0;

	/* (one that is gone leaves the list: short-lived clients would otherwise cost a failed open each, every time) */
	for (i = 0; i < RECENT_OWNERS && recent_owners[i]; i++)
		if (walk_pid_fds(recent_owners[i]) == 0)
			recent_owners[j++] = recent_owners[i];
	for (; j < i; j++)
		recent_owners[j] = 0;
}

int proc_pending(void) { return n_pending; }

/* The process owning socket inode ino: the cached map, else the last owners' fds, else new processes' (up to
 * NEW_WALKS_MAX walks per resolve pass, counted in *new_walks), else every process's (at most every WALK_MIN_NS);
 * 0 when none yet. */
static uint32_t ino_owner(uint64_t ino, uint64_t now, int *new_walks)
{
	uint32_t pid = ino_pid_get(ino);

	if (!pid) {
		walk_recent_owners();
		pid = ino_pid_get(ino);
	}
	if (pid)
		return pid;
	/* why: a new socket usually belongs to a new process; only when the cheap look at new pids fails is every
	 * process walked again (pid reuse after wrap, fds passed between processes) */
	if (*new_walks < NEW_WALKS_MAX) {
		ino_pid_walk(0, ino);
		++*new_walks;
		pid = ino_pid_get(ino);
	}
	if (!pid && now - last_walk_ns >= WALK_MIN_NS) {
		ino_pid_walk(1, 0);
		last_walk_ns = now_monotonic_ns();
		pid = ino_pid_get(ino);
	}
	return pid;
}

/* The socket of a pending item, looked up by its packet's tuple: its inode, with it->t made the socket's own ends,
 * or 0. */
static uint64_t pending_socket(struct pending *it)
{
	struct tuple sock;
	uint64_t ino = diag_inode(&it->t, &sock);

	/* why: an outbound SYN whose addresses no socket has may be one DNAT rewrote (its socket names the
	 * address before DNAT; the core joins the two by the client end); its conn CB names the socket's */
	if (!ino && it->t.proto == IPPROTO_TCP && it->role == ROLE_CLIENT && !it->dnat_tried) {
		it->dnat_tried = 1;
		ino = diag_dnat_inode(&it->t, &sock);
	}
	if (ino)
		it->t = sock;
	return ino;
}

void proc_resolve_pending(void)
{
	uint64_t now = now_monotonic_ns();
	int i, j = 0, queries = 0, new_walks = 0;

	for (i = 0; i < n_pending; i++) {
		struct pending *it = &pending[i];
		uint32_t pid;

		if (now - it->first_ns > PENDING_TTL_NS)
			continue;
		/* why: bounded work per loop iteration; the rest waits for the next one */
		if (it->next_ns > now || queries >= 64) {
			pending[j++] = *it;
			continue;
		}
		queries++;
		if (!it->ino) {
			it->ino = pending_socket(it);
			/* why no retry: a datagram leaves from a socket that exists; one sock_diag does not find has closed
			 * since, or is not this host's (a forwarded datagram). A SYN's accepted socket appears later */
			if (!it->ino && it->t.proto == IPPROTO_UDP)
				continue;
			/* why: a socket already reported (by a scan, a tracepoint, an earlier packet) needs no walk of /proc,
			 * and in eBPF mode connect and bind have named most UDP sockets the watch sees */
			if (it->ino && (set_has64(inode_seen, INODE_SLOTS, it->ino) ||
					set_has64(conn_seen, CONN_SLOTS, conn_key(&it->t, capture_netns))))
				continue;
		}
		pid = it->ino ? ino_owner(it->ino, now, &new_walks) : 0;
		if (!pid) {
			it->next_ns = now + PENDING_RETRY_NS;
			pending[j++] = *it;
			continue;
		}
		{
			char cpath[64], comm[64];

			snprintf(cpath, sizeof(cpath), "/proc/%u/comm", pid);
			read_small(cpath, comm, sizeof(comm), 0);
			/* (UDP: role unknown, as the scans say: a socket's first datagram out tells nothing of who began) */
			conn_note(&it->t, capture_netns, it->role, pid, pid, comm, "proc", now_realtime_ns());
			set_add64(inode_seen, INODE_SLOTS, it->ino);
			recent_owner_note(pid);
		}
	}
	n_pending = j;
}
