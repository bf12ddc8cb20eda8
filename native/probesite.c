/* Implementation of probesite.h: a decoder for the handful of x86-64 instructions compilers put in
 * front of a function's first push/call/branch (endbr64, stack protector load, test/cmp, register
 * moves and clears, frame setup). Anything else ends the search: the probe stays at the entry.
 * On arm64, only what finds a wrapper's callee (OpenSSL 3's SSL_read_ex → ssl_read_internal). */
#include "probesite.h"

#include <string.h>

#if defined(__x86_64__)

/* 1 when the kernel emulates the instruction at c (arch/x86/kernel/uprobes.c: push, call, jmp, jcc,
 * nop), i.e. a hit needs no single-step */
static int emulated(const uint8_t *c, size_t n)
{
	if (c[0] >= 0x50 && c[0] <= 0x57)
		return 1; /* push %reg */
	if (c[0] == 0xe8 || c[0] == 0xe9 || c[0] == 0xeb || c[0] == 0x90 || (c[0] >= 0x70 && c[0] <= 0x7f))
		return 1; /* call, jmp, jcc rel8, nop */
	if (n >= 2 && c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57)
		return 1; /* push %r8-%r15 */
	if (n >= 2 && c[0] == 0x0f && ((c[1] >= 0x80 && c[1] <= 0x8f) || c[1] == 0x1f))
		return 1; /* jcc rel32, multi-byte nop */
	return 0;
}

/* Bytes of ModRM + SIB + displacement at c, 0 for forms not decoded here (RIP-relative). */
static size_t modrm_len(const uint8_t *c, size_t n)
{
	uint8_t mod = c[0] >> 6, rm = c[0] & 7;
	size_t len = 1;

	if (mod == 3)
		return 1;
	if (rm == 4) {
		if (n < 2)
			return 0;
		len++;
		if (mod == 0 && (c[1] & 7) == 5)
			return len + 4; /* SIB with disp32 and no base, e.g. %fs:0x28 */
	} else if (mod == 0 && rm == 5) {
		return 0;
	}
	return len + (mod == 1 ? 1 : mod == 2 ? 4 : 0);
}

/* Length of a skippable instruction at c and the registers it writes (flags and memory are not
 * tracked: no BPF program reads them), or 0 when it is not one we know. */
static size_t skippable(const uint8_t *c, size_t n, uint32_t *writes)
{
	size_t p = 0, ml;
	uint8_t rex = 0, op, ext;
	int reg, rm, mod;

	*writes = 0;
	if (n >= 4 && c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa)
		return 4; /* endbr64 */
	if (c[p] == 0x64 || c[p] == 0x65)
		p++; /* %fs/%gs segment prefix */
	if (p < n && (c[p] & 0xf0) == 0x40)
		rex = c[p++];
	if (p + 2 > n)
		return 0;
	op = c[p++];
	mod = c[p] >> 6;
	ext = (c[p] >> 3) & 7;
	reg = ext | (rex & 4 ? 8 : 0);
	rm = (c[p] & 7) | (rex & 1 ? 8 : 0);
	ml = modrm_len(c + p, n - p);
	if (!ml || p + ml > n)
		return 0;
	switch (op) {
	case 0x85: /* test */
	case 0x39: /* cmp */
	case 0x3b:
		return p + ml;
	case 0x31: /* xor r/m, reg */
	case 0x89: /* mov r/m, reg */
		if (mod == 3)
			*writes = 1u << rm;
		return p + ml;
	case 0x33: /* xor reg, r/m */
	case 0x8b: /* mov reg, r/m */
	case 0x8d: /* lea */
		if (op == 0x8d && mod == 3)
			return 0;
		*writes = 1u << reg;
		return p + ml;
	case 0x80: /* arithmetic with an immediate: only cmp anywhere, add/sub on a register */
	case 0x81:
	case 0x83:
		if (ext == 7)
			return p + ml + (op == 0x81 ? 4 : 1);
		if ((ext != 0 && ext != 5) || mod != 3 || op == 0x80)
			return 0;
		*writes = 1u << rm;
		return p + ml + (op == 0x81 ? 4 : 1);
	default:
		return 0;
	}
}

long probe_skip(const uint8_t *code, size_t n, uint32_t keep, int with_return)
{
	size_t off = 0, len;
	uint32_t w;

	while (off < n) {
		if (emulated(code + off, n - off))
			return (long)off;
		len = skippable(code + off, n - off, &w);
		if (!len || (w & keep) || (with_return && (w & PS_REG(PS_SP))))
			return -1;
		off += len;
	}
	return -1;
}

/* Target (file offset) of the rel32 call/jmp of insn_len bytes at code[at], code starting at code_off. */
static uint64_t rel32_target(const uint8_t *code, uint64_t code_off, size_t at, size_t insn_len)
{
	int32_t rel;

	memcpy(&rel, code + at + insn_len - 4, 4);
	return (uint64_t)((int64_t)code_off + (int64_t)(at + insn_len) + rel);
}

int wrapper_callee(const uint8_t *code, size_t n, uint64_t code_off, uint64_t *callee_off)
{
	size_t p = n >= 4 && code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa ? 4 : 0;

	if (n < p + 9 || code[p] != 0x48 || code[p + 1] != 0x83 || code[p + 2] != 0xec || code[p + 4] != 0xe8)
		return 0;
	*callee_off = rel32_target(code, code_off, p + 4, 5);
	return 1;
}

int tail_call_with_arg2(const uint8_t *code, size_t n, uint64_t code_off, uint32_t imm, uint64_t *callee_off)
{
	size_t i, j, len;
	uint32_t v;

	for (i = 0; i + 5 <= n; i++) {
		memcpy(&v, code + i + 1, 4);
		if (code[i] != 0xbe || v != imm)
			continue;
		/* why decode instead of searching for 0xe9: a byte inside another instruction is not a jmp, and
		 * a probe off an instruction boundary would corrupt the traced program */
		for (j = i + 5; j + 5 <= n && j < i + 5 + 24; j += len) {
			uint32_t w;

			if (code[j] == 0xe9) {
				*callee_off = rel32_target(code, code_off, j, 5);
				return 1;
			}
			len = skippable(code + j, n - j, &w);
			if (!len)
				break;
		}
	}
	return 0;
}

int calls_target(const uint8_t *code, size_t n, uint64_t code_off, uint64_t target)
{
	size_t i;

	for (i = 0; i + 5 <= n; i++)
		if (code[i] == 0xe8 && rel32_target(code, code_off, i, 5) == target)
			return 1;
	return 0;
}

/* `cmp 0x10(%r14),%rsp` and `cmp 0x10(%r14),%r12`: the goroutine's stack guard against the stack pointer (or it less the frame) */
static const uint8_t GO_CMP_RSP[] = {0x49, 0x3b, 0x66, 0x10};
static const uint8_t GO_CMP_R12[] = {0x4d, 0x3b, 0x66, 0x10};

long go_stack_check(const uint8_t *code, size_t n)
{
	size_t at = 0;

	/* (a frame larger than the red zone: `lea -N(%rsp),%r12` first, disp8 or disp32) */
	if (n >= 5 && code[0] == 0x4c && code[1] == 0x8d && code[2] == 0x64 && code[3] == 0x24)
		at = 5;
	else if (n >= 8 && code[0] == 0x4c && code[1] == 0x8d && code[2] == 0xa4 && code[3] == 0x24)
		at = 8;
	if (at + 6 > n || memcmp(code + at, at ? GO_CMP_R12 : GO_CMP_RSP, 4))
		return -1;
	at += 4;
	/* jbe rel8, or jbe rel32 */
	if (code[at] == 0x76 || (code[at] == 0x0f && code[at + 1] == 0x86))
		return (long)at;
	return -1;
}

#elif defined(__aarch64__)

/* arm64: every instruction is one little-endian 32-bit word, so code is read word by word; the kernel simulates
 * or single-steps out of line whatever it probes, and probes stay at a function's first instruction. */

static uint32_t insn(const uint8_t *code, size_t i)
{
	return (uint32_t)code[i] | (uint32_t)code[i + 1] << 8 | (uint32_t)code[i + 2] << 16 | (uint32_t)code[i + 3] << 24;
}

/* BL imm26: the offset (relative to code_off's base) it calls, for a BL at byte i */
static int bl_target(uint32_t w, uint64_t code_off, size_t i, uint64_t *target)
{
	int64_t imm;

	if ((w & 0xfc000000u) != 0x94000000u)
		return 0;
	imm = (int64_t)(w & 0x03ffffffu);
	if (imm & 0x02000000)
		imm -= 0x04000000;
	*target = code_off + i + (uint64_t)(imm * 4);
	return 1;
}

/* 1 for the frame setup a compiler puts before a wrapper's call, which leaves x0-x7 (the arguments) alone:
 * `stp x29, x30, [sp, #-N]!`, `mov x29, sp`, `bti c`, `paciasp`, `nop` */
static int frame_setup(uint32_t w)
{
	return (w & 0xffc07fffu) == 0xa9807bfdu || w == 0x910003fdu || w == 0xd503245fu || w == 0xd503233fu || w == 0xd503201fu;
}

long probe_skip(const uint8_t *code, size_t n, uint32_t keep, int with_return) { return 0; }

int wrapper_callee(const uint8_t *code, size_t n, uint64_t code_off, uint64_t *callee_off)
{
	size_t i;

	/* (up to `bti c` or `paciasp`, `stp`, `mov` before the BL: builds with branch protection start with one) */
	for (i = 0; i + 4 <= n && i < 20; i += 4) {
		uint32_t w = insn(code, i);

		if (bl_target(w, code_off, i, callee_off))
			return 1;
		if (!frame_setup(w))
			return 0;
	}
	return 0;
}

int tail_call_with_arg2(const uint8_t *code, size_t n, uint64_t code_off, uint32_t imm, uint64_t *callee_off) { return 0; }

int calls_target(const uint8_t *code, size_t n, uint64_t code_off, uint64_t target)
{
	uint64_t t;
	size_t i;

	for (i = 0; i + 4 <= n; i += 4)
		if (bl_target(insn(code, i), code_off, i, &t) && t == target)
			return 1;
	return 0;
}

long go_stack_check(const uint8_t *code, size_t n)
{
	size_t i = 0;

	/* ldr x16, [x28, #16]: the goroutine's stack guard */
	if (n < 12 || insn(code, 0) != 0xf9400b90)
		return -1;
	i = 4;
	/* sub x17, sp, #N (a frame larger than the guard's slack) */
	if ((insn(code, i) & 0xff8003ffu) == 0xd10003f1u)
		i += 4;
	/* cmp sp, x16 or cmp x17, x16 */
	if (i + 8 > n || (insn(code, i) != 0xeb3063ffu && insn(code, i) != 0xeb10023fu))
		return -1;
	i += 4;
	/* b.ls */
	return (insn(code, i) & 0xff00001fu) == 0x54000009u ? (long)i : -1;
}

#else

long probe_skip(const uint8_t *code, size_t n, uint32_t keep, int with_return) { return -1; }
int wrapper_callee(const uint8_t *code, size_t n, uint64_t code_off, uint64_t *callee_off) { return 0; }
int tail_call_with_arg2(const uint8_t *code, size_t n, uint64_t code_off, uint32_t imm, uint64_t *callee_off) { return 0; }
int calls_target(const uint8_t *code, size_t n, uint64_t code_off, uint64_t target) { return 0; }
long go_stack_check(const uint8_t *code, size_t n) { return -1; }

#endif
