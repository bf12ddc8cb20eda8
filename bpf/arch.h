/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What differs between the architectures the BPF programs are built for (-D__TARGET_ARCH_x86 or _arm64):
 * the C calling convention comes from libbpf's bpf_tracing.h (PT_REGS_PARMn, BPF_KPROBE); Go's register ABI
 * (ABIInternal, Go 1.17+ on amd64, 1.18+ on arm64) is here. */
#ifndef TAPSCOPE_BPF_ARCH_H
#define TAPSCOPE_BPF_ARCH_H

#if defined(__TARGET_ARCH_arm64)
#ifdef TAPSCOPE_FOREIGN_VMLINUX
/* why: the build's vmlinux.h comes from the build host's kernel (x86-64 when cross-building), which has no
 * arm64 register file; this is the arm64 uapi's (asm/ptrace.h), the layout an arm64 uprobe program sees */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif
/* integer arguments and results in R0, R1, R2, ...; the running goroutine in R28 */
#define GO_REG(x, n) (((const struct user_pt_regs *)(x))->regs[n])
#define GO_ARG1(x) GO_REG(x, 0)
#define GO_ARG2(x) GO_REG(x, 1)
#define GO_ARG3(x) GO_REG(x, 2)
#define GO_G(x) GO_REG(x, 28)
/* at a Go prologue's stack check `b.ls morestack` (after `cmp`): the branch is taken, C clear or Z set in NZCV */
#define GO_STACK_GROWS(x) \
	((((const struct user_pt_regs *)(x))->pstate & (1ULL << 29)) == 0 || (((const struct user_pt_regs *)(x))->pstate & (1ULL << 30)) != 0)
#elif defined(__TARGET_ARCH_x86)
/* integer arguments and results in RAX, RBX, RCX, ...; the running goroutine in R14 */
#define GO_ARG1(x) ((x)->ax)
#define GO_ARG2(x) ((x)->bx)
#define GO_ARG3(x) ((x)->cx)
#define GO_G(x) ((x)->r14)
/* at a Go prologue's stack check `jbe morestack` (after `cmp 16(%r14),...`): the branch is taken, CF or ZF set */
#define GO_STACK_GROWS(x) (((x)->flags & 0x41) != 0)
#else
#error "tapscope's BPF programs are built for x86 or arm64 (-D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64)"
#endif
/* a Go function's first result is where its first argument came in */
#define GO_RET1(x) GO_ARG1(x)

#endif
