/* test_x64dis.c - unit tests for the x64 length disassembler and trampolines.
 *
 * Three layers: (1) a table of encodings with their known lengths and
 * classes, including every prologue form Wine's DLLs use; (2) trampolines
 * built from synthetic code, checked by re-decoding the emitted bytes and
 * recomputing each absolute target, which must equal the original's; (3) the
 * real prologues dumped from Wine (prologues.h), decoded and relocated at
 * their real addresses. Refusals are tested as carefully as successes: a
 * guessed length is the one bug a hook engine must never have. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/x64dis.h"
#include "prologues.h"

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

/* ---- decoding: lengths and classes ------------------------------------- */

typedef struct length_case {
    const char *what;
    const uint8_t *code;
    size_t size;          /* bytes handed to the decoder (may exceed the length) */
    size_t length;        /* expected instruction length */
    x64_insn_class cls;
    uint32_t flags;       /* flags that must be set */
} length_case;

#define CASE(what, length, cls, flags, ...) { what, BYTES(__VA_ARGS__), length, cls, flags }
#define PLAIN X64_INSN_PLAIN
#define RIP X64_INSN_RIP_RELATIVE
#define D32 0x78, 0x56, 0x34, 0x12

static const length_case wine_prologue_forms[] = {
    /* the forms listed in docs/wine-platform.md section 2 */
    CASE("lea rsp,[rsp+0] (hot-patch)", 8, PLAIN, 0, 0x48, 0x8d, 0xa4, 0x24, 0x00, 0x00, 0x00, 0x00),
    CASE("push r15", 2, PLAIN, 0, 0x41, 0x57),
    CASE("push r12", 2, PLAIN, 0, 0x41, 0x54),
    CASE("push rbx", 1, PLAIN, 0, 0x53),
    CASE("push rbp", 1, PLAIN, 0, 0x55),
    CASE("sub rsp,imm8", 4, PLAIN, 0, 0x48, 0x83, 0xec, 0x28),
    CASE("sub rsp,imm32", 7, PLAIN, 0, 0x48, 0x81, 0xec, 0x08, 0x01, 0x00, 0x00),
    CASE("add rsp,imm8", 4, PLAIN, 0, 0x48, 0x83, 0xc4, 0x28),
    CASE("mov rax,[rsp+disp32]", 8, PLAIN, 0, 0x48, 0x8b, 0x84, 0x24, 0xb8, 0x00, 0x00, 0x00),
    CASE("mov eax,[rsp+disp32]", 7, PLAIN, 0, 0x8b, 0x84, 0x24, 0xa8, 0x00, 0x00, 0x00),
    CASE("mov [rsp+disp8],rax", 5, PLAIN, 0, 0x48, 0x89, 0x44, 0x24, 0x50),
    CASE("mov [rsp+disp32],rcx", 8, PLAIN, 0, 0x48, 0x89, 0x8c, 0x24, 0x90, 0x01, 0x00, 0x00),
    CASE("mov [rsp+disp8],eax", 4, PLAIN, 0, 0x89, 0x44, 0x24, 0x30),
    CASE("mov [rsp+disp8],r9d", 5, PLAIN, 0, 0x44, 0x89, 0x4c, 0x24, 0x20),
    CASE("lea r9,[rsp+disp8]", 5, PLAIN, 0, 0x4c, 0x8d, 0x4c, 0x24, 0x40),
    CASE("lea rdi,[rsp+disp8]", 5, PLAIN, 0, 0x48, 0x8d, 0x7c, 0x24, 0x30),
    CASE("or rax,[rsp+disp8]", 5, PLAIN, 0, 0x48, 0x0b, 0x44, 0x24, 0x68),
    CASE("mov rbx,rcx", 3, PLAIN, 0, 0x48, 0x89, 0xcb),
    CASE("mov r10,rcx (syscall stub)", 3, PLAIN, 0, 0x4c, 0x8b, 0xd1),
    CASE("mov eax,imm32 (syscall number)", 5, PLAIN, 0, 0xb8, 0x2f, 0x00, 0x00, 0x00),
    CASE("test byte [abs32],imm8 (SIB, no base: not RIP)", 8, PLAIN, 0,
         0xf6, 0x04, 0x25, 0x08, 0x03, 0xfe, 0x7f, 0x01),
    CASE("syscall", 2, PLAIN, X64_FLAG_SYSCALL, 0x0f, 0x05),
    CASE("ret", 1, PLAIN, X64_FLAG_RET | X64_FLAG_ENDS_FLOW, 0xc3),
    CASE("call [abs32]", 7, PLAIN, X64_FLAG_CALL | X64_FLAG_INDIRECT_CALL,
         0xff, 0x14, 0x25, 0x00, 0x10, 0xfe, 0x7f),
    CASE("jmp [rip+d] (thunk)", 6, RIP, X64_FLAG_INDIRECT_JMP | X64_FLAG_ENDS_FLOW,
         0xff, 0x25, 0xe6, 0xfb, 0x03, 0x00, 0x90),
    CASE("xchg ax,ax (66 90)", 2, PLAIN, X64_FLAG_OPSIZE16, 0x66, 0x90),
    CASE("nop", 1, PLAIN, 0, 0x90),
    CASE("nop [rax]", 3, PLAIN, 0, 0x0f, 0x1f, 0x00),
    CASE("nop [rax+0]", 4, PLAIN, 0, 0x0f, 0x1f, 0x40, 0x00),
    CASE("nop [rax+rax+0]", 5, PLAIN, 0, 0x0f, 0x1f, 0x44, 0x00, 0x00),
    CASE("nop [rax+disp32]", 7, PLAIN, 0, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00),
    CASE("nop [rax+rax+disp32]", 8, PLAIN, 0, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00),
    CASE("66 nop [rax+rax+disp32]", 9, PLAIN, 0, 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00),
    CASE("66 66 2e nop cs:[rax+rax+disp32]", 11, PLAIN, 0,
         0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00),
    CASE("test byte [rip+d],1", 7, RIP, 0, 0xf6, 0x05, 0x51, 0xc6, 0x02, 0x00, 0x01),
    CASE("mov rax,gs:[0x30]", 9, PLAIN, 0, 0x65, 0x48, 0x8b, 0x04, 0x25, 0x30, 0x00, 0x00, 0x00),
    CASE("test rbx,rbx", 3, PLAIN, 0, 0x48, 0x85, 0xdb),
    CASE("or r8,rdx", 3, PLAIN, 0, 0x49, 0x09, 0xd0),
    CASE("mov ebx,r9d", 3, PLAIN, 0, 0x44, 0x89, 0xcb),
    CASE("xor r9d,r9d", 3, PLAIN, 0, 0x45, 0x31, 0xc9),
    CASE("lea r12,[rip+d]", 7, RIP, 0, 0x4c, 0x8d, 0x25, 0x0b, 0x82, 0x00, 0x00),
    CASE("lea r13,[rip+d]", 7, RIP, 0, 0x4c, 0x8d, 0x2d, 0x39, 0x86, 0x00, 0x00),
    CASE("lea rdi,[rip+d]", 7, RIP, 0, 0x48, 0x8d, 0x3d, 0x7d, 0x03, 0x04, 0x00),
    CASE("lea rax,[rip+d]", 7, RIP, 0, 0x48, 0x8d, 0x05, D32),
    CASE("mov rdi,[rip+d]", 7, RIP, 0, 0x48, 0x8b, 0x3d, 0xd1, 0xd6, 0x05, 0x00),
    CASE("jne rel8", 2, X64_INSN_JCC_REL, 0, 0x75, 0x03),
    CASE("je rel8", 2, X64_INSN_JCC_REL, 0, 0x74, 0x41),
    CASE("jne rel32", 6, X64_INSN_JCC_REL, 0, 0x0f, 0x85, 0x7d, 0x00, 0x00, 0x00),
    CASE("jmp rel8", 2, X64_INSN_JMP_REL, X64_FLAG_ENDS_FLOW, 0xeb, 0x01),
    CASE("call rel32", 5, X64_INSN_CALL_REL, X64_FLAG_CALL, 0xe8, 0x54, 0xf9, 0xff, 0xff),
    CASE("mov dword [rsp+disp8],imm32", 8, PLAIN, 0, 0xc7, 0x44, 0x24, 0x20, 0x01, 0x00, 0x00, 0x00),
};

static const length_case immediate_forms[] = {
    CASE("add al,imm8", 2, PLAIN, 0, 0x04, 0x7f),
    CASE("add ax,imm16", 4, PLAIN, X64_FLAG_OPSIZE16, 0x66, 0x05, 0x34, 0x12),
    CASE("add eax,imm32", 5, PLAIN, 0, 0x05, D32),
    CASE("add rax,imm32", 6, PLAIN, 0, 0x48, 0x05, D32),
    CASE("cmp eax,imm32", 5, PLAIN, 0, 0x3d, D32),
    CASE("xor al,imm8", 2, PLAIN, 0, 0x34, 0x01),
    CASE("mov ax,imm16", 4, PLAIN, 0, 0x66, 0xb8, 0x34, 0x12),
    CASE("mov eax,imm32", 5, PLAIN, 0, 0xb8, D32),
    CASE("mov r8d,imm32", 6, PLAIN, 0, 0x41, 0xb8, D32),
    CASE("mov rax,imm64", 10, PLAIN, 0, 0x48, 0xb8, D32, D32),
    CASE("mov r15,imm64", 10, PLAIN, 0, 0x49, 0xbf, D32, D32),
    CASE("66 REX.W mov rax,imm64 (REX.W wins)", 11, PLAIN, 0, 0x66, 0x48, 0xb8, D32, D32),
    CASE("mov cl,imm8", 2, PLAIN, 0, 0xb1, 0x05),
    CASE("test cl,imm8 (F6 /0)", 3, PLAIN, 0, 0xf6, 0xc1, 0x01),
    CASE("test byte [rsp+8],imm8", 5, PLAIN, 0, 0xf6, 0x44, 0x24, 0x08, 0x01),
    CASE("neg al (F6 /3, no imm)", 2, PLAIN, 0, 0xf6, 0xd8),
    CASE("test ecx,imm32 (F7 /0)", 6, PLAIN, 0, 0xf7, 0xc1, D32),
    CASE("test cx,imm16", 5, PLAIN, 0, 0x66, 0xf7, 0xc1, 0x34, 0x12),
    CASE("test rcx,imm32", 7, PLAIN, 0, 0x48, 0xf7, 0xc1, D32),
    CASE("neg eax (F7 /3)", 2, PLAIN, 0, 0xf7, 0xd8),
    CASE("mul rcx (F7 /4)", 3, PLAIN, 0, 0x48, 0xf7, 0xe1),
    CASE("idiv dword [rip+d] (F7 /7)", 6, RIP, 0, 0xf7, 0x3d, D32),
    CASE("mov byte [rax],imm8", 3, PLAIN, 0, 0xc6, 0x00, 0x01),
    CASE("mov byte [rip+d],imm8", 7, RIP, 0, 0xc6, 0x05, D32, 0x01),
    CASE("mov dword [rax],imm32", 6, PLAIN, 0, 0xc7, 0x00, D32),
    CASE("mov dword [rip+d],imm32", 10, RIP, 0, 0xc7, 0x05, D32, D32),
    CASE("mov word [rip+d],imm16", 9, RIP, 0, 0x66, 0xc7, 0x05, D32, 0x34, 0x12),
    CASE("mov rax,imm32 sign-extended", 7, PLAIN, 0, 0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff),
    CASE("imul eax,eax,imm32", 6, PLAIN, 0, 0x69, 0xc0, D32),
    CASE("imul ax,ax,imm16", 5, PLAIN, 0, 0x66, 0x69, 0xc0, 0x34, 0x12),
    CASE("imul eax,eax,imm8", 3, PLAIN, 0, 0x6b, 0xc0, 0x07),
    CASE("imul rax,[rsp+8],imm8", 6, PLAIN, 0, 0x48, 0x6b, 0x44, 0x24, 0x08, 0x07),
    CASE("cmp byte [rax],imm8 (80)", 3, PLAIN, 0, 0x80, 0x38, 0x00),
    CASE("cmp byte [rip+d],imm8", 7, RIP, 0, 0x80, 0x3d, D32, 0x00),
    CASE("and ecx,imm32 (81)", 6, PLAIN, 0, 0x81, 0xe1, D32),
    CASE("and cx,imm16 (66 81)", 5, PLAIN, 0, 0x66, 0x81, 0xe1, 0x34, 0x12),
    CASE("and ecx,imm8 (83)", 3, PLAIN, 0, 0x83, 0xe1, 0x0f),
    CASE("cmp dword [rip+d],imm8 (83)", 7, RIP, 0, 0x83, 0x3d, D32, 0x00),
    CASE("shl al,4 (C0)", 3, PLAIN, 0, 0xc0, 0xe0, 0x04),
    CASE("shr eax,16 (C1)", 3, PLAIN, 0, 0xc1, 0xe8, 0x10),
    CASE("shl rax,32", 4, PLAIN, 0, 0x48, 0xc1, 0xe0, 0x20),
    CASE("shl al,1 (D0)", 2, PLAIN, 0, 0xd0, 0xe0),
    CASE("sar eax,1 (D1)", 2, PLAIN, 0, 0xd1, 0xf8),
    CASE("shl al,cl (D2)", 2, PLAIN, 0, 0xd2, 0xe0),
    CASE("shl eax,cl (D3)", 2, PLAIN, 0, 0xd3, 0xe0),
    CASE("test al,imm8 (A8)", 2, PLAIN, 0, 0xa8, 0x01),
    CASE("test eax,imm32 (A9)", 5, PLAIN, 0, 0xa9, D32),
    CASE("test ax,imm16 (66 A9)", 4, PLAIN, 0, 0x66, 0xa9, 0x34, 0x12),
    CASE("push imm8", 2, PLAIN, 0, 0x6a, 0x00),
    CASE("push imm32", 5, PLAIN, 0, 0x68, D32),
    CASE("ret imm16", 3, PLAIN, X64_FLAG_RET | X64_FLAG_ENDS_FLOW, 0xc2, 0x08, 0x00),
    CASE("enter imm16,imm8", 4, PLAIN, 0, 0xc8, 0x10, 0x00, 0x00),
    CASE("mov al,[moffs64]", 9, PLAIN, 0, 0xa0, D32, D32),
    CASE("mov al,[moffs32] (67)", 6, PLAIN, X64_FLAG_ADDR32, 0x67, 0xa0, D32),
    CASE("mov rax,[moffs64]", 10, PLAIN, 0, 0x48, 0xa1, D32, D32),
    CASE("int 0x29", 2, PLAIN, X64_FLAG_SYSCALL, 0xcd, 0x29),
    CASE("in al,imm8", 2, PLAIN, 0, 0xe4, 0x60),
};

static const length_case addressing_forms[] = {
    CASE("mov eax,[rsp]", 3, PLAIN, 0, 0x8b, 0x04, 0x24),
    CASE("mov eax,[rsp+8]", 4, PLAIN, 0, 0x8b, 0x44, 0x24, 0x08),
    CASE("mov eax,[rsp+disp32]", 7, PLAIN, 0, 0x8b, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00),
    CASE("mov eax,[abs32] (SIB base 101, mod 00)", 7, PLAIN, 0, 0x8b, 0x04, 0x25, D32),
    CASE("mov eax,[r12*4+disp32] (no base)", 8, PLAIN, 0, 0x42, 0x8b, 0x04, 0xa5, D32),
    CASE("mov eax,[rbp+0]", 3, PLAIN, 0, 0x8b, 0x45, 0x00),
    CASE("mov eax,[r13+0] (REX.B, needs disp8)", 4, PLAIN, 0, 0x41, 0x8b, 0x45, 0x00),
    CASE("mov eax,[rip+d]", 6, RIP, 0, 0x8b, 0x05, D32),
    CASE("mov eax,[rip+d] with REX.B (still RIP)", 7, RIP, 0, 0x41, 0x8b, 0x05, D32),
    CASE("mov eax,[r12]", 4, PLAIN, 0, 0x41, 0x8b, 0x04, 0x24),
    CASE("mov eax,[r12+r13]", 4, PLAIN, 0, 0x43, 0x8b, 0x04, 0x2c),
    CASE("mov eax,[r12+8]", 5, PLAIN, 0, 0x41, 0x8b, 0x44, 0x24, 0x08),
    CASE("mov eax,[rax+disp32]", 6, PLAIN, 0, 0x8b, 0x80, D32),
    CASE("mov eax,[rbp+rax*8+disp32]", 7, PLAIN, 0, 0x8b, 0x84, 0xc5, D32),
    CASE("mov eax,[eax] (67)", 3, PLAIN, X64_FLAG_ADDR32, 0x67, 0x8b, 0x00),
    CASE("mov eax,[eip+d] (67)", 7, RIP, X64_FLAG_ADDR32, 0x67, 0x8b, 0x05, D32),
    CASE("mov rax,fs:[0x28]", 9, PLAIN, 0, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00),
    CASE("lock cmpxchg [rdx],ecx", 4, PLAIN, X64_FLAG_LOCK, 0xf0, 0x0f, 0xb1, 0x0a),
    CASE("lock xadd [rdx],rax", 5, PLAIN, X64_FLAG_LOCK, 0xf0, 0x48, 0x0f, 0xc1, 0x02),
    CASE("lock inc dword [rip+d]", 7, RIP, X64_FLAG_LOCK, 0xf0, 0xff, 0x05, D32),
    CASE("rep stosq", 3, PLAIN, 0, 0xf3, 0x48, 0xab),
    CASE("rep movsb", 2, PLAIN, 0, 0xf3, 0xa4),
    CASE("endbr64", 4, PLAIN, 0, 0xf3, 0x0f, 0x1e, 0xfa),
    CASE("pause", 2, PLAIN, 0, 0xf3, 0x90),
    CASE("14 prefixes + nop = 15 bytes", 15, PLAIN, 0,
         0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90),
};

static const length_case opcode_map_forms[] = {
    CASE("cwde", 1, PLAIN, 0, 0x98),
    CASE("cdqe", 2, PLAIN, 0, 0x48, 0x98),
    CASE("cqo", 2, PLAIN, 0, 0x48, 0x99),
    CASE("leave", 1, PLAIN, 0, 0xc9),
    CASE("pushfq", 1, PLAIN, 0, 0x9c),
    CASE("sahf", 1, PLAIN, 0, 0x9e),
    CASE("xlat", 1, PLAIN, 0, 0xd7),
    CASE("hlt", 1, PLAIN, X64_FLAG_ENDS_FLOW, 0xf4),
    CASE("int3", 1, PLAIN, X64_FLAG_INT3 | X64_FLAG_ENDS_FLOW, 0xcc),
    CASE("iretq", 2, PLAIN, X64_FLAG_ENDS_FLOW, 0x48, 0xcf),
    CASE("movsxd rax,ecx", 3, PLAIN, 0, 0x48, 0x63, 0xc1),
    CASE("pop qword [rax]", 2, PLAIN, 0, 0x8f, 0x00),
    CASE("push qword [rax]", 2, PLAIN, 0, 0xff, 0x30),
    CASE("push qword [rip+d]", 6, RIP, 0, 0xff, 0x35, D32),
    CASE("call rax", 2, PLAIN, X64_FLAG_CALL | X64_FLAG_INDIRECT_CALL, 0xff, 0xd0),
    CASE("call r11", 3, PLAIN, X64_FLAG_CALL | X64_FLAG_INDIRECT_CALL, 0x41, 0xff, 0xd3),
    CASE("call [rip+d]", 6, RIP, X64_FLAG_CALL | X64_FLAG_INDIRECT_CALL, 0xff, 0x15, D32),
    CASE("jmp rax", 2, PLAIN, X64_FLAG_INDIRECT_JMP | X64_FLAG_ENDS_FLOW, 0xff, 0xe0),
    CASE("jmp qword [rax+8]", 3, PLAIN, X64_FLAG_INDIRECT_JMP | X64_FLAG_ENDS_FLOW, 0xff, 0x60, 0x08),
    CASE("inc al", 2, PLAIN, 0, 0xfe, 0xc0),
    CASE("dec byte [rax]", 2, PLAIN, 0, 0xfe, 0x08),
    CASE("inc rax", 3, PLAIN, 0, 0x48, 0xff, 0xc0),
    CASE("xchg cl,al", 2, PLAIN, 0, 0x86, 0xc1),
    CASE("mov eax,ds", 2, PLAIN, 0, 0x8c, 0xd8),
    CASE("jmp rel32", 5, X64_INSN_JMP_REL, X64_FLAG_ENDS_FLOW, 0xe9, D32),
    CASE("bnd jmp rel32", 6, X64_INSN_JMP_REL, X64_FLAG_ENDS_FLOW, 0xf2, 0xe9, D32),
    CASE("je rel8 with branch hint", 3, X64_INSN_JCC_REL, 0, 0x2e, 0x74, 0x05),
    CASE("jg rel32", 6, X64_INSN_JCC_REL, 0, 0x0f, 0x8f, D32),
    CASE("loop rel8", 2, X64_INSN_LOOP_REL, 0, 0xe2, 0xfe),
    CASE("jrcxz rel8", 2, X64_INSN_LOOP_REL, 0, 0xe3, 0x05),
    CASE("fldz", 2, PLAIN, 0, 0xd9, 0xee),
    CASE("fld qword [rip+d]", 6, RIP, 0, 0xdd, 0x05, D32),
    CASE("fnstcw [rsp+8]", 4, PLAIN, 0, 0xd9, 0x7c, 0x24, 0x08),
    /* 0F map */
    CASE("movzx eax,al", 3, PLAIN, 0, 0x0f, 0xb6, 0xc0),
    CASE("movsx rax,byte [rdx+rcx]", 5, PLAIN, 0, 0x48, 0x0f, 0xbe, 0x04, 0x0a),
    CASE("imul eax,ecx", 3, PLAIN, 0, 0x0f, 0xaf, 0xc1),
    CASE("cmove eax,ecx", 3, PLAIN, 0, 0x0f, 0x44, 0xc1),
    CASE("sete al", 3, PLAIN, 0, 0x0f, 0x94, 0xc0),
    CASE("cpuid", 2, PLAIN, 0, 0x0f, 0xa2),
    CASE("rdtsc", 2, PLAIN, 0, 0x0f, 0x31),
    CASE("ud2", 2, PLAIN, X64_FLAG_ENDS_FLOW, 0x0f, 0x0b),
    CASE("bt eax,5 (0F BA /4)", 4, PLAIN, 0, 0x0f, 0xba, 0xe0, 0x05),
    CASE("shld edx,eax,4", 4, PLAIN, 0, 0x0f, 0xa4, 0xc2, 0x04),
    CASE("bswap eax", 2, PLAIN, 0, 0x0f, 0xc8),
    CASE("movups xmm0,[rip+d]", 7, RIP, 0, 0x0f, 0x10, 0x05, D32),
    CASE("movdqa xmm0,[rip+d]", 8, RIP, 0, 0x66, 0x0f, 0x6f, 0x05, D32),
    CASE("movdqu xmm0,[rsp+16]", 6, PLAIN, 0, 0xf3, 0x0f, 0x6f, 0x44, 0x24, 0x10),
    CASE("pxor xmm0,xmm0", 4, PLAIN, 0, 0x66, 0x0f, 0xef, 0xc0),
    CASE("movaps xmm0,xmm1", 3, PLAIN, 0, 0x0f, 0x28, 0xc1),
    CASE("pshufd xmm0,xmm0,imm8", 5, PLAIN, 0, 0x66, 0x0f, 0x70, 0xc0, 0x1b),
    CASE("psrldq xmm0,imm8", 5, PLAIN, 0, 0x66, 0x0f, 0x73, 0xd8, 0x08),
    CASE("mfence", 3, PLAIN, 0, 0x0f, 0xae, 0xf0),
    CASE("stmxcsr [rsp+8]", 5, PLAIN, 0, 0x0f, 0xae, 0x5c, 0x24, 0x08),
    CASE("cmpps xmm0,xmm1,imm8", 4, PLAIN, 0, 0x0f, 0xc2, 0xc1, 0x00),
    CASE("shufpd xmm0,xmm1,imm8", 5, PLAIN, 0, 0x66, 0x0f, 0xc6, 0xc1, 0x00),
    CASE("prefetcht0 [rax]", 3, PLAIN, 0, 0x0f, 0x18, 0x08),
    CASE("prefetchw [rax]", 3, PLAIN, 0, 0x0f, 0x0d, 0x08),
    CASE("cmpxchg16b [rsi]", 4, PLAIN, 0, 0x48, 0x0f, 0xc7, 0x0e),
    CASE("popcnt eax,ecx", 4, PLAIN, 0, 0xf3, 0x0f, 0xb8, 0xc1),
    CASE("tzcnt rax,rax", 5, PLAIN, 0, 0xf3, 0x48, 0x0f, 0xbc, 0xc0),
    CASE("xgetbv", 3, PLAIN, 0, 0x0f, 0x01, 0xd0),
    CASE("rdtscp", 3, PLAIN, 0, 0x0f, 0x01, 0xf9),
    CASE("emms", 2, PLAIN, 0, 0x0f, 0x77),
    /* 0F 38 / 0F 3A */
    CASE("pshufb xmm0,xmm1", 5, PLAIN, 0, 0x66, 0x0f, 0x38, 0x00, 0xc1),
    CASE("crc32 eax,ecx", 5, PLAIN, 0, 0xf2, 0x0f, 0x38, 0xf1, 0xc1),
    CASE("movbe eax,[rdi]", 4, PLAIN, 0, 0x0f, 0x38, 0xf0, 0x07),
    CASE("aesenc xmm0,[rip+d]", 9, RIP, 0, 0x66, 0x0f, 0x38, 0xdc, 0x05, D32),
    CASE("palignr xmm0,xmm1,8", 6, PLAIN, 0, 0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08),
    CASE("pextrd eax,xmm0,1", 6, PLAIN, 0, 0x66, 0x0f, 0x3a, 0x16, 0xc0, 0x01),
    CASE("roundsd xmm0,[rip+d],imm8 (disp before imm)", 10, RIP, 0, 0x66, 0x0f, 0x3a, 0x0b, 0x05, D32, 0x04),
    /* VEX */
    CASE("vzeroupper", 3, PLAIN, X64_FLAG_VEX, 0xc5, 0xf8, 0x77),
    CASE("vmovups ymm0,[rip+d]", 8, RIP, X64_FLAG_VEX, 0xc5, 0xfc, 0x10, 0x05, D32),
    CASE("vmovdqa xmm0,xmm1", 4, PLAIN, X64_FLAG_VEX, 0xc5, 0xf9, 0x6f, 0xc1),
    CASE("vpshufd xmm0,xmm0,imm8", 5, PLAIN, X64_FLAG_VEX, 0xc5, 0xf9, 0x70, 0xc0, 0x1b),
    CASE("vbroadcastss ymm0,[rip+d]", 9, RIP, X64_FLAG_VEX, 0xc4, 0xe2, 0x7d, 0x18, 0x05, D32),
    CASE("vpshufb xmm0,xmm1,xmm2", 5, PLAIN, X64_FLAG_VEX, 0xc4, 0xe2, 0x71, 0x00, 0xc2),
    CASE("vinsertf128 ymm0,ymm0,xmm1,1", 6, PLAIN, X64_FLAG_VEX, 0xc4, 0xe3, 0x7d, 0x18, 0xc1, 0x01),
};

static void check_length_cases(const length_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        x64_insn insn;
        fvm_error err = { 0 };
        fvm_status status = x64_decode(cases[i].code, cases[i].size, &insn, &err);
        if (status != FVM_OK || insn.length != cases[i].length || insn.cls != cases[i].cls ||
            (insn.flags & cases[i].flags) != cases[i].flags) {
            print_error("%s: status %s (%s), length %u (want %u), class %d (want %d), flags %#x (want %#x)\n",
                        cases[i].what, fvm_status_name(status), err.message, insn.length,
                        (unsigned)cases[i].length, insn.cls, cases[i].cls, insn.flags, cases[i].flags);
            fail();
        }
        /* Only RIP-relative operands and relative branches carry a rel field. */
        assert_int_equal(insn.rel_size != 0, insn.cls != X64_INSN_PLAIN);
    }
}

static void test_decode_wine_prologue_forms(void **state)
{
    (void)state;
    check_length_cases(wine_prologue_forms, sizeof wine_prologue_forms / sizeof wine_prologue_forms[0]);
}

static void test_decode_immediates(void **state)
{
    (void)state;
    check_length_cases(immediate_forms, sizeof immediate_forms / sizeof immediate_forms[0]);
}

static void test_decode_addressing_and_prefixes(void **state)
{
    (void)state;
    check_length_cases(addressing_forms, sizeof addressing_forms / sizeof addressing_forms[0]);
}

static void test_decode_opcode_maps(void **state)
{
    (void)state;
    check_length_cases(opcode_map_forms, sizeof opcode_map_forms / sizeof opcode_map_forms[0]);
}

/* The fields the relocator relies on: where the rel/disp field sits. */
static void test_decode_field_offsets(void **state)
{
    x64_insn insn;
    (void)state;

    /* test byte [rip+0x2c651],1: disp32 at 2, imm8 after it; the target is
     * measured from the END of the instruction, i.e. after the immediate. */
    assert_int_equal(x64_decode(BYTES(0xf6, 0x05, 0x51, 0xc6, 0x02, 0x00, 0x01), &insn, NULL), FVM_OK);
    assert_int_equal(insn.rel_offset, 2);
    assert_int_equal(insn.rel_size, 4);
    assert_int_equal(insn.rel, 0x2c651);
    assert_int_equal(insn.imm_offset, 6);
    assert_int_equal(insn.imm_size, 1);
    assert_true(x64_insn_target(&insn, 0x1000) == 0x1000 + 7 + 0x2c651);

    /* lea r12,[rip+d]: REX, opcode, ModRM, disp */
    assert_int_equal(x64_decode(BYTES(0x4c, 0x8d, 0x25, 0x0b, 0x82, 0x00, 0x00), &insn, NULL), FVM_OK);
    assert_int_equal(insn.rel_offset, 3);
    assert_int_equal(insn.rex, 0x4c);
    assert_int_equal(insn.prefix_count, 1);
    assert_int_equal(insn.opcode, 0x8d);

    /* call rel32 backwards */
    assert_int_equal(x64_decode(BYTES(0xe8, 0x54, 0xf9, 0xff, 0xff), &insn, NULL), FVM_OK);
    assert_int_equal(insn.rel_offset, 1);
    assert_int_equal(insn.rel, -0x6ac);
    assert_true(x64_insn_target(&insn, 0x223d61ea7ull) == 0x223d61ea7ull + 5 - 0x6ac);

    /* jcc rel8: condition code and negative displacement */
    assert_int_equal(x64_decode(BYTES(0x7c, 0xf0), &insn, NULL), FVM_OK);
    assert_int_equal(insn.condition, 0xc);
    assert_int_equal(insn.rel, -16);
    assert_int_equal(insn.rel_size, 1);

    /* jcc rel32 in the 0F map */
    assert_int_equal(x64_decode(BYTES(0x0f, 0x85, 0x7d, 0x00, 0x00, 0x00), &insn, NULL), FVM_OK);
    assert_int_equal(insn.map, X64_MAP_0F);
    assert_int_equal(insn.condition, 5);
    assert_int_equal(insn.rel_offset, 2);
    assert_int_equal(insn.rel, 0x7d);

    /* SIB with disp8, ModRM flags */
    assert_int_equal(x64_decode(BYTES(0x48, 0x89, 0x44, 0x24, 0x50), &insn, NULL), FVM_OK);
    assert_int_equal(insn.disp_offset, 4);
    assert_int_equal(insn.disp_size, 1);
    assert_true(insn.has_modrm);

    /* mov rax,imm64: immediate of 8 */
    assert_int_equal(x64_decode(BYTES(0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8), &insn, NULL), FVM_OK);
    assert_int_equal(insn.imm_offset, 2);
    assert_int_equal(insn.imm_size, 8);
}

/* ---- decoding: refusals ----------------------------------------------- */

typedef struct refusal_case {
    const char *what;
    const uint8_t *code;
    size_t size;
    fvm_status status;
    const char *message_part; /* must appear in the error message */
} refusal_case;

#define REFUSE(what, status, part, ...) { what, BYTES(__VA_ARGS__), status, part }

static const refusal_case refusals[] = {
    REFUSE("3DNow!", FVM_E_UNSUPPORTED, "opcode 0f 0f at byte 0", 0x0f, 0x0f, 0xc1, 0x90),
    REFUSE("EVEX", FVM_E_UNSUPPORTED, "opcode 62 at byte 0", 0x62, 0xf1, 0x7c, 0x48, 0x10, 0xc1),
    REFUSE("push es", FVM_E_INVALID, "invalid in 64-bit mode", 0x06),
    REFUSE("far call ptr", FVM_E_INVALID, "opcode 9a", 0x9a, 1, 2, 3, 4, 5, 6),
    REFUSE("far jmp ptr", FVM_E_INVALID, "opcode ea", 0xea, 1, 2, 3, 4, 5, 6),
    REFUSE("aam", FVM_E_INVALID, "opcode d4", 0xd4, 0x0a),
    REFUSE("into", FVM_E_INVALID, "opcode ce", 0xce),
    REFUSE("82 alias", FVM_E_INVALID, "opcode 82", 0x82, 0xc0, 0x01),
    REFUSE("pusha", FVM_E_INVALID, "opcode 60", 0x60),
    REFUSE("prefix then unknown, offset names the opcode", FVM_E_UNSUPPORTED, "opcode 0f 04 at byte 1", 0x66,
           0x0f, 0x04),
    REFUSE("ud0", FVM_E_UNSUPPORTED, "opcode 0f ff", 0x0f, 0xff, 0xc0),
    REFUSE("mov eax,cr0", FVM_E_UNSUPPORTED, "opcode 0f 20", 0x0f, 0x20, 0xc0),
    REFUSE("vmread/extrq", FVM_E_UNSUPPORTED, "opcode 0f 78", 0x0f, 0x78, 0xc0),
    REFUSE("XOP", FVM_E_UNSUPPORTED, "XOP", 0x8f, 0xe8, 0x78, 0xc2, 0xc1, 0x00),
    REFUSE("xbegin", FVM_E_UNSUPPORTED, "opcode c7", 0xc7, 0xf8, 0, 0, 0, 0),
    REFUSE("xabort", FVM_E_UNSUPPORTED, "opcode c6", 0xc6, 0xf8, 0x01),
    REFUSE("test alias F6 /1", FVM_E_UNSUPPORTED, "opcode f6", 0xf6, 0xc8, 0x01),
    REFUSE("FE /2", FVM_E_INVALID, "opcode fe", 0xfe, 0xd0),
    REFUSE("FF /7", FVM_E_INVALID, "opcode ff", 0xff, 0xf8),
    REFUSE("far call through register", FVM_E_INVALID, "opcode ff", 0xff, 0xd8),
    REFUSE("lea with register operand", FVM_E_INVALID, "opcode 8d", 0x8d, 0xc0),
    REFUSE("jmpe (0F B8 without F3)", FVM_E_INVALID, "opcode 0f b8", 0x0f, 0xb8, 0xc1),
    REFUSE("0F BA /0", FVM_E_INVALID, "opcode 0f ba", 0x0f, 0xba, 0xc0, 0x05),
    REFUSE("0F 00 /7", FVM_E_INVALID, "opcode 0f 00", 0x0f, 0x00, 0xf8),
    REFUSE("66 call rel: vendor-specific width", FVM_E_UNSUPPORTED, "operand-size", 0x66, 0xe8, 0, 0, 0, 0),
    REFUSE("66 jcc rel32", FVM_E_UNSUPPORTED, "operand-size", 0x66, 0x0f, 0x84, 0, 0, 0, 0),
    REFUSE("REX then prefix", FVM_E_UNSUPPORTED, "REX prefix 48 at byte 0", 0x48, 0x66, 0x90),
    REFUSE("two REX", FVM_E_UNSUPPORTED, "REX prefix", 0x40, 0x48, 0x90),
    REFUSE("VEX after 66", FVM_E_INVALID, "VEX prefix at byte 1", 0x66, 0xc5, 0xf8, 0x77),
    REFUSE("VEX map 4", FVM_E_UNSUPPORTED, "VEX opcode map 4", 0xc4, 0xe4, 0x7d, 0x18, 0xc1),
    REFUSE("unknown VEX op", FVM_E_UNSUPPORTED, "VEX opcode map 1 op 0b", 0xc5, 0xf8, 0x0b, 0xc0),
    REFUSE("unknown 0F 38", FVM_E_UNSUPPORTED, "opcode 0f 38 ff", 0x0f, 0x38, 0xff, 0xc0),
    REFUSE("unknown 0F 3A", FVM_E_UNSUPPORTED, "opcode 0f 3a ff", 0x0f, 0x3a, 0xff, 0xc0, 0x00),
    REFUSE("16 bytes", FVM_E_INVALID, "longer than 15",
           0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90),
    REFUSE("truncated REX", FVM_E_INVALID, "truncated", 0x48),
    REFUSE("truncated prefix", FVM_E_INVALID, "truncated", 0x66),
    REFUSE("truncated escape", FVM_E_INVALID, "truncated", 0x0f),
    REFUSE("truncated 0F 38", FVM_E_INVALID, "truncated", 0x0f, 0x38),
    REFUSE("truncated rel32", FVM_E_INVALID, "needs byte 4", 0xe8, 0x00, 0x00),
    REFUSE("truncated disp32", FVM_E_INVALID, "truncated", 0x48, 0x8b, 0x84, 0x24, 0x00),
    REFUSE("truncated SIB", FVM_E_INVALID, "truncated", 0x8b, 0x04),
    REFUSE("truncated imm after rip disp", FVM_E_INVALID, "needs byte 6", 0xf6, 0x05, 0x00, 0x00, 0x00, 0x00),
    REFUSE("truncated imm64", FVM_E_INVALID, "truncated", 0x48, 0xb8, 1, 2, 3, 4),
    REFUSE("truncated VEX", FVM_E_INVALID, "truncated", 0xc4, 0xe2),
};

static void test_decode_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        x64_insn insn;
        fvm_error err = { 0 };
        fvm_status status = x64_decode(refusals[i].code, refusals[i].size, &insn, &err);
        if (status != refusals[i].status || !strstr(err.message, refusals[i].message_part)) {
            print_error("%s: status %s (want %s), message \"%s\" (want \"%s\")\n", refusals[i].what,
                        fvm_status_name(status), fvm_status_name(refusals[i].status), err.message,
                        refusals[i].message_part);
            fail();
        }
    }
}

static void test_decode_empty_and_null(void **state)
{
    x64_insn insn;
    fvm_error err = { 0 };
    (void)state;
    assert_int_equal(x64_decode((const uint8_t *)"", 0, &insn, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "truncated"));
    assert_int_equal(x64_decode(NULL, 0, &insn, &err), FVM_E_INVALID);
    assert_int_equal(x64_decode(NULL, 4, &insn, &err), FVM_E_INVALID);
    /* err and out may be NULL */
    assert_int_equal(x64_decode(BYTES(0x90), NULL, NULL), FVM_OK);
    assert_int_equal(x64_decode(BYTES(0x06), NULL, NULL), FVM_E_INVALID);
}

/* Every byte sequence either decodes to a length within the buffer or is
 * refused: never a length past what was given, never a crash (ASan). */
static void test_decode_never_overreads(void **state)
{
    uint8_t buf[X64_MAX_INSN_LEN];
    uint32_t seed = 12345;
    (void)state;
    for (int round = 0; round < 200000; round++) {
        size_t avail = (size_t)(round % (X64_MAX_INSN_LEN + 1));
        uint8_t *code;
        x64_insn insn;
        fvm_status status;
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)(seed >> 16);
        }
        /* the bytes end where buf ends, so ASan reports any read past them */
        code = buf + sizeof buf - avail;
        status = x64_decode(code, avail, &insn, NULL);
        if (status == FVM_OK) {
            assert_true(insn.length >= 1 && insn.length <= avail);
            assert_true(insn.rel_offset + insn.rel_size <= insn.length);
            assert_true(insn.imm_offset + insn.imm_size <= insn.length);
        }
    }
}

/* ---- emitted code inspection ------------------------------------------ */

/* What an emitted control transfer does, read back from the bytes. */
typedef enum emitted_kind { EMITTED_OTHER, EMITTED_JMP, EMITTED_CALL, EMITTED_JCC } emitted_kind;

typedef struct emitted {
    emitted_kind kind;
    int absolute;       /* went through an inline 8-byte address */
    uint8_t condition;  /* jcc */
    uint64_t target;
    size_t length;
} emitted;

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int32_t get_le32(const uint8_t *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Recognises exactly the forms x64_build_trampoline emits for branches. */
static emitted read_emitted(const uint8_t *p, size_t avail, uint64_t addr)
{
    static const uint8_t jmp_rip0[6] = { 0xff, 0x25, 0, 0, 0, 0 };
    static const uint8_t call_rip2[8] = { 0xff, 0x15, 2, 0, 0, 0, 0xeb, 0x08 };
    emitted e = { EMITTED_OTHER, 0, 0, 0, 0 };
    if (avail >= 5 && (p[0] == 0xe9 || p[0] == 0xe8)) {
        e.kind = p[0] == 0xe9 ? EMITTED_JMP : EMITTED_CALL;
        e.length = 5;
        e.target = addr + 5 + (uint64_t)(int64_t)get_le32(p + 1);
    } else if (avail >= 14 && memcmp(p, jmp_rip0, 6) == 0) {
        e.kind = EMITTED_JMP;
        e.absolute = 1;
        e.length = 14;
        e.target = get_le64(p + 6);
    } else if (avail >= 16 && memcmp(p, call_rip2, 8) == 0) {
        e.kind = EMITTED_CALL;
        e.absolute = 1;
        e.length = 16;
        e.target = get_le64(p + 8);
    } else if (avail >= 6 && p[0] == 0x0f && (p[1] & 0xf0) == 0x80) {
        e.kind = EMITTED_JCC;
        e.condition = p[1] & 0x0f;
        e.length = 6;
        e.target = addr + 6 + (uint64_t)(int64_t)get_le32(p + 2);
    } else if (avail >= 16 && (p[0] & 0xf0) == 0x70 && p[1] == 14 && memcmp(p + 2, jmp_rip0, 6) == 0) {
        e.kind = EMITTED_JCC;
        e.absolute = 1;
        e.condition = (p[0] & 0x0f) ^ 1; /* the short jcc skips the jump: inverted */
        e.length = 16;
        e.target = get_le64(p + 8);
    }
    return e;
}

/* Re-decodes the trampoline and checks that each stolen instruction does
 * the same thing at its new address: plain ones are byte-identical,
 * RIP-relative ones reach the same absolute address, branches go to the
 * same target, and the trampoline ends with a jump back. */
static void check_trampoline(const char *what, const uint8_t *src, uint64_t src_addr, size_t stolen,
                             const uint8_t *tramp, uint64_t tramp_addr, size_t tramp_len,
                             const x64_trampoline_map *map)
{
    size_t end = 0;
    emitted back;

    assert_true(map->count >= 1);
    assert_int_equal(map->src_offset[0], 0);
    assert_int_equal(map->dst_offset[0], 0);
    for (size_t i = 0; i < map->count; i++) {
        size_t s = map->src_offset[i], d = map->dst_offset[i];
        uint64_t want_target;
        x64_insn orig, copy;
        emitted e;

        assert_int_equal(x64_decode(src + s, stolen - s, &orig, NULL), FVM_OK);
        want_target = x64_insn_target(&orig, src_addr + s);
        switch (orig.cls) {
        case X64_INSN_PLAIN:
            if (memcmp(src + s, tramp + d, orig.length) != 0) {
                print_error("%s: plain instruction at %zu changed\n", what, s);
                fail();
            }
            end = d + orig.length;
            break;
        case X64_INSN_RIP_RELATIVE:
            assert_int_equal(x64_decode(tramp + d, tramp_len - d, &copy, NULL), FVM_OK);
            assert_int_equal(copy.length, orig.length);
            assert_int_equal(copy.cls, X64_INSN_RIP_RELATIVE);
            assert_memory_equal(src + s, tramp + d, orig.rel_offset);
            assert_memory_equal(src + s + orig.rel_offset + 4, tramp + d + orig.rel_offset + 4,
                                orig.length - orig.rel_offset - 4u);
            if (x64_insn_target(&copy, tramp_addr + d) != want_target) {
                print_error("%s: RIP-relative operand at %zu now reaches %#llx, want %#llx\n", what, s,
                            (unsigned long long)x64_insn_target(&copy, tramp_addr + d),
                            (unsigned long long)want_target);
                fail();
            }
            end = d + copy.length;
            break;
        default:
            e = read_emitted(tramp + d, tramp_len - d, tramp_addr + d);
            assert_int_equal(e.kind, orig.cls == X64_INSN_JMP_REL  ? EMITTED_JMP
                                     : orig.cls == X64_INSN_CALL_REL ? EMITTED_CALL
                                                                     : EMITTED_JCC);
            if (e.kind == EMITTED_JCC)
                assert_int_equal(e.condition, orig.condition);
            if (e.target != want_target) {
                print_error("%s: branch at %zu now goes to %#llx, want %#llx\n", what, s,
                            (unsigned long long)e.target, (unsigned long long)want_target);
                fail();
            }
            end = d + e.length;
            break;
        }
        if (i + 1 < map->count)
            assert_int_equal(map->dst_offset[i + 1], end);
    }
    back = read_emitted(tramp + end, tramp_len - end, tramp_addr + end);
    assert_int_equal(back.kind, EMITTED_JMP);
    assert_true(back.target == src_addr + stolen);
    assert_int_equal(end + back.length, tramp_len);
}

/* Builds a trampoline and verifies it; returns the stolen length. */
typedef struct built {
    fvm_status status;
    size_t stolen;
    size_t length;
    uint8_t code[X64_TRAMPOLINE_CAP(X64_MAX_PATCH_LEN)];
    x64_trampoline_map map;
    fvm_error err;
} built;

static built build(const char *what, const uint8_t *src, size_t avail, uint64_t src_addr, size_t min_len,
                   uint64_t dst_addr)
{
    built b;
    memset(&b, 0, sizeof b);
    b.status = x64_build_trampoline(src, avail, src_addr, min_len, b.code, dst_addr, sizeof b.code, &b.stolen,
                                    &b.length, &b.map, &b.err);
    if (b.status == FVM_OK) {
        assert_true(b.stolen >= min_len);
        assert_true(b.stolen <= avail);
        check_trampoline(what, src, src_addr, b.stolen, b.code, dst_addr, b.length, &b.map);
    }
    return b;
}

#define SRC_ADDR 0x7ff812340000ull
#define NEAR_DST (SRC_ADDR - 0x10000)      /* a near block, like the runtime's */
#define FAR_DST (SRC_ADDR + 0x300000000ull) /* 12 GB away: nothing rel32 fits */

/* ---- trampolines: relocation ------------------------------------------ */

static void test_trampoline_plain_copy(void **state)
{
    static const uint8_t code[] = { 0x48, 0x8d, 0xa4, 0x24, 0, 0, 0, 0, 0x41, 0x57, 0x41, 0x56 };
    built b;
    (void)state;
    b = build("hot-patch", code, sizeof code, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 8);
    assert_int_equal(b.length, 8 + 5);
    assert_int_equal(b.code[8], 0xe9);
    assert_int_equal(b.map.count, 1);
}

static void test_trampoline_jmp_rip(void **state)
{
    /* user32!GetDC: ff 25 at byte 0 */
    static const uint8_t code[] = { 0xff, 0x25, 0x02, 0x21, 0x03, 0x00, 0x90, 0x90, 0x90, 0x90 };
    built b;
    x64_insn copy;
    (void)state;
    b = build("ff 25", code, sizeof code, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 6);
    assert_int_equal(x64_decode(b.code, b.length, &copy, NULL), FVM_OK);
    assert_true(x64_insn_target(&copy, NEAR_DST) == SRC_ADDR + 6 + 0x32102);
    /* the displacement really changed: the trampoline is 64 KiB lower */
    assert_int_equal(get_le32(b.code + 2), 0x32102 + 0x10000);
}

static void test_trampoline_call_rel32(void **state)
{
    /* winspool!OpenPrinterW: sub rsp,28; xor r9d,r9d; call rel32 */
    static const uint8_t code[] = { 0x48, 0x83, 0xec, 0x28, 0x45, 0x31, 0xc9, 0xe8, 0x54, 0xf9, 0xff, 0xff,
                                    0x48, 0x83, 0xc4, 0x28, 0xc3 };
    built b;
    emitted e;
    (void)state;
    b = build("call rel32", code, sizeof code, SRC_ADDR, 8, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 12);
    e = read_emitted(b.code + 7, b.length - 7, NEAR_DST + 7);
    assert_int_equal(e.kind, EMITTED_CALL);
    assert_false(e.absolute);
    assert_true(e.target == SRC_ADDR + 12 - 0x6ac);
}

static void test_trampoline_test_rip_imm8(void **state)
{
    /* user32!SetWindowDisplayAffinity: push rbx; sub rsp,30; mov rbx,rcx; test byte [rip+d],1 */
    static const uint8_t code[] = { 0x53, 0x48, 0x83, 0xec, 0x30, 0x48, 0x89, 0xcb,
                                    0xf6, 0x05, 0x51, 0xc6, 0x02, 0x00, 0x01, 0x75, 0x1f };
    built b;
    (void)state;
    b = build("test [rip],imm8", code, sizeof code, SRC_ADDR, 9, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 15);
    assert_int_equal(b.map.count, 4);
    assert_int_equal(b.code[14], 0x01); /* the immediate survives after the new disp */
}

static void test_trampoline_lea_rip(void **state)
{
    /* ws2_32!bind: 8 pushes, sub rsp,68, lea r13,[rip+d]; and lea r12 / lea rax forms */
    static const uint8_t bind_code[] = { 0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x55, 0x57, 0x56, 0x53,
                                         0x48, 0x83, 0xec, 0x68, 0x4c, 0x8d, 0x2d, 0x39, 0x86, 0x00, 0x00, 0x49 };
    static const uint8_t lea_r12[] = { 0x4c, 0x8d, 0x25, 0xf0, 0xff, 0xff, 0xff, 0x90 };
    static const uint8_t lea_rax[] = { 0x48, 0x8d, 0x05, 0x00, 0x00, 0x00, 0x80, 0x90 }; /* -2 GB */
    built b;
    (void)state;
    b = build("lea r13,[rip]", bind_code, sizeof bind_code, SRC_ADDR, 17, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 23);
    b = build("lea r12,[rip-16]", lea_r12, sizeof lea_r12, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    /* lea rax,[rip-2GB]: at the very edge of reach from the original; a
     * trampoline above it is out of reach, one below it is closer. */
    b = build("lea rax,[rip-2G] from above", lea_rax, sizeof lea_rax, SRC_ADDR, 5, SRC_ADDR + 0x10000);
    assert_int_equal(b.status, FVM_E_RANGE);
    assert_non_null(strstr(b.err.message, "RIP-relative operand at byte 0"));
    b = build("lea rax,[rip-2G] from below", lea_rax, sizeof lea_rax, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
}

static void test_trampoline_jcc_rel8(void **state)
{
    /* test eax,eax; je +0x10; mov eax,1 */
    static const uint8_t code[] = { 0x85, 0xc0, 0x74, 0x10, 0xb8, 0x01, 0x00, 0x00, 0x00 };
    built b;
    emitted e;
    (void)state;
    b = build("jcc rel8", code, sizeof code, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 9);
    e = read_emitted(b.code + 2, b.length - 2, NEAR_DST + 2);
    assert_int_equal(e.kind, EMITTED_JCC);
    assert_int_equal(e.length, 6);          /* rel8 became 0F 84 rel32 */
    assert_int_equal(b.code[3], 0x84);
    assert_true(e.target == SRC_ADDR + 4 + 0x10);
    /* the next instruction moved by the 4 bytes the jcc grew */
    assert_int_equal(b.map.src_offset[2], 4);
    assert_int_equal(b.map.dst_offset[2], 8);
}

static void test_trampoline_jcc_rel32(void **state)
{
    /* user32!CreateDesktopW up to its jne rel32 at byte 21 */
    static const uint8_t code[] = { 0x57, 0x56, 0x53, 0x48, 0x83, 0xec, 0x70, 0x48, 0x8b, 0xb4, 0x24,
                                    0xb8, 0x00, 0x00, 0x00, 0x49, 0x09, 0xd0, 0x44, 0x89, 0xcb, 0x0f,
                                    0x85, 0x7d, 0x00, 0x00, 0x00, 0x48 };
    built b;
    (void)state;
    b = build("jcc rel32", code, sizeof code, SRC_ADDR, 22, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 27);
}

static void test_trampoline_jmp_rel8(void **state)
{
    /* xor eax,eax; nop; jmp +0x20 */
    static const uint8_t code[] = { 0x31, 0xc0, 0x90, 0xeb, 0x20 };
    built b;
    emitted e;
    (void)state;
    b = build("jmp rel8", code, sizeof code, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    e = read_emitted(b.code + 3, b.length - 3, NEAR_DST + 3);
    assert_int_equal(e.kind, EMITTED_JMP);
    assert_int_equal(b.code[3], 0xe9);
    assert_true(e.target == SRC_ADDR + 5 + 0x20);
}

static void test_trampoline_far_absolute_forms(void **state)
{
    /* every branch kind, with the trampoline 12 GB away */
    static const uint8_t jmp8[] = { 0x31, 0xc0, 0x90, 0xeb, 0x20 };
    static const uint8_t jcc8[] = { 0x85, 0xc0, 0x74, 0x10, 0x90 };
    static const uint8_t jcc32[] = { 0x0f, 0x8c, 0x00, 0x01, 0x00, 0x00 };
    static const uint8_t call32[] = { 0xe8, 0x54, 0xf9, 0xff, 0xff };
    static const uint8_t jmp32[] = { 0xe9, 0x00, 0x00, 0x00, 0x80 };
    static const uint8_t plain[] = { 0x48, 0x83, 0xec, 0x28, 0x90 };
    static const uint8_t rip[] = { 0xff, 0x25, 0x02, 0x21, 0x03, 0x00 };
    built b;
    emitted e;
    (void)state;

    b = build("far jmp rel8", jmp8, sizeof jmp8, SRC_ADDR, 5, FAR_DST);
    assert_int_equal(b.status, FVM_OK);
    e = read_emitted(b.code + 3, b.length - 3, FAR_DST + 3);
    assert_true(e.absolute);

    b = build("far jcc rel8", jcc8, sizeof jcc8, SRC_ADDR, 5, FAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.code[2], 0x75); /* je became jne over the absolute jump */
    assert_int_equal(b.code[3], 14);
    e = read_emitted(b.code + 2, b.length - 2, FAR_DST + 2);
    assert_true(e.absolute);

    b = build("far jcc rel32", jcc32, sizeof jcc32, SRC_ADDR, 5, FAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.code[0], 0x7d); /* jl -> jge */

    b = build("far call", call32, sizeof call32, SRC_ADDR, 5, FAR_DST);
    assert_int_equal(b.status, FVM_OK);
    e = read_emitted(b.code, b.length, FAR_DST);
    assert_int_equal(e.kind, EMITTED_CALL);
    assert_true(e.absolute);

    b = build("far jmp rel32 backwards 2 GB", jmp32, sizeof jmp32, SRC_ADDR, 5, FAR_DST);
    assert_int_equal(b.status, FVM_OK);

    /* the jump back itself becomes absolute */
    b = build("far plain", plain, sizeof plain, SRC_ADDR, 5, FAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.length, 5 + 14);

    /* but a RIP-relative operand cannot follow that far */
    b = build("far rip", rip, sizeof rip, SRC_ADDR, 5, FAR_DST);
    assert_int_equal(b.status, FVM_E_RANGE);
    assert_non_null(strstr(b.err.message, "beyond +-2 GB"));
}

static void test_trampoline_branch_to_stolen_end_is_fine(void **state)
{
    /* jne +1 lands exactly on the first byte after the stolen range */
    static const uint8_t code[] = { 0x85, 0xc0, 0x75, 0x01, 0x90, 0x90 };
    built b;
    (void)state;
    b = build("jne to stolen end", code, sizeof code, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.stolen, 5);
}

/* ---- trampolines: refusals -------------------------------------------- */

typedef struct tramp_refusal {
    const char *what;
    const uint8_t *code;
    size_t size;
    size_t min_len;
    fvm_status status;
    const char *message_part;
} tramp_refusal;

#define TREFUSE(what, min_len, status, part, ...) { what, BYTES(__VA_ARGS__), min_len, status, part }

static const tramp_refusal tramp_refusals[] = {
    TREFUSE("unknown opcode mid-range", 5, FVM_E_UNSUPPORTED, "opcode 0f 0f at byte 4",
            0x48, 0x83, 0xec, 0x28, 0x0f, 0x0f, 0xc1, 0x00),
    TREFUSE("jcc to itself", 5, FVM_E_UNSUPPORTED, "branch at byte 0 targets byte 0",
            0x75, 0xfe, 0x90, 0x90, 0x90, 0x90),
    TREFUSE("jmp to itself", 5, FVM_E_UNSUPPORTED, "function ends at byte 0 (jmp)",
            0xeb, 0xfe, 0x90, 0x90, 0x90, 0x90),
    TREFUSE("jmp rel32 to itself, long enough", 5, FVM_E_UNSUPPORTED, "branch at byte 0 targets byte 0",
            0xe9, 0xfb, 0xff, 0xff, 0xff),
    TREFUSE("jcc into the stolen bytes", 5, FVM_E_UNSUPPORTED, "branch at byte 0 targets byte 3",
            0x74, 0x01, 0x90, 0x90, 0x90, 0x90),
    TREFUSE("jcc back to the start", 5, FVM_E_UNSUPPORTED, "targets byte 0",
            0x90, 0x90, 0x75, 0xfc, 0x90, 0x90),
    TREFUSE("call into the stolen bytes", 8, FVM_E_UNSUPPORTED, "targets byte 1",
            0x90, 0x90, 0x90, 0xe8, 0xf9, 0xff, 0xff, 0xff, 0x90),
    TREFUSE("ret", 5, FVM_E_UNSUPPORTED, "function ends at byte 0 (ret)", 0xc3, 0xcc, 0xcc, 0xcc, 0xcc),
    TREFUSE("tiny function", 5, FVM_E_UNSUPPORTED, "function ends at byte 2 (ret)",
            0x31, 0xc0, 0xc3, 0xcc, 0xcc, 0xcc),
    TREFUSE("tail jmp", 5, FVM_E_UNSUPPORTED, "function ends at byte 0 (jmp)",
            0xeb, 0x10, 0xcc, 0xcc, 0xcc, 0xcc),
    TREFUSE("tail jmp rax", 5, FVM_E_UNSUPPORTED, "(jmp)", 0xff, 0xe0, 0xcc, 0xcc, 0xcc),
    TREFUSE("int3 padding", 5, FVM_E_UNSUPPORTED, "(int3)", 0x90, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc),
    TREFUSE("ud2", 5, FVM_E_UNSUPPORTED, "function ends at byte 0", 0x0f, 0x0b, 0x90, 0x90, 0x90),
    TREFUSE("call returning into the patch", 5, FVM_E_UNSUPPORTED, "call at byte 0 would return",
            0xff, 0xd0, 0x90, 0x90, 0x90),
    TREFUSE("loop", 5, FVM_E_UNSUPPORTED, "loop/jrcxz", 0xe2, 0x10, 0x90, 0x90, 0x90),
    TREFUSE("jrcxz", 5, FVM_E_UNSUPPORTED, "loop/jrcxz", 0x90, 0xe3, 0x10, 0x90, 0x90, 0x90),
    TREFUSE("[eip+d]", 5, FVM_E_UNSUPPORTED, "67 prefix", 0x67, 0x8b, 0x05, 0, 0, 0, 0),
    TREFUSE("truncated mid-instruction", 5, FVM_E_INVALID, "truncated", 0x90, 0x48, 0x8b, 0x84, 0x24),
    TREFUSE("truncated before min_len", 5, FVM_E_INVALID, "truncated", 0x90, 0x90, 0x90),
};

static void test_trampoline_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tramp_refusals / sizeof tramp_refusals[0]; i++) {
        const tramp_refusal *r = &tramp_refusals[i];
        built b = build(r->what, r->code, r->size, SRC_ADDR, r->min_len, NEAR_DST);
        if (b.status != r->status || !strstr(b.err.message, r->message_part)) {
            print_error("%s: status %s (want %s), message \"%s\" (want \"%s\")\n", r->what,
                        fvm_status_name(b.status), fvm_status_name(r->status), b.err.message, r->message_part);
            fail();
        }
        assert_int_equal(b.stolen, 0);
        assert_int_equal(b.length, 0);
    }
}

static void test_trampoline_bad_arguments(void **state)
{
    static const uint8_t code[] = { 0x90, 0x90, 0x90, 0x90, 0x90, 0x90 };
    uint8_t small[8], big[256];
    size_t stolen, len;
    fvm_error err = { 0 };
    (void)state;
    assert_int_equal(x64_build_trampoline(code, sizeof code, SRC_ADDR, 0, big, NEAR_DST, sizeof big, &stolen,
                                          &len, NULL, &err),
                     FVM_E_INVALID);
    assert_int_equal(x64_build_trampoline(code, sizeof code, SRC_ADDR, X64_MAX_PATCH_LEN + 1, big, NEAR_DST,
                                          sizeof big, &stolen, &len, NULL, &err),
                     FVM_E_INVALID);
    assert_int_equal(x64_build_trampoline(NULL, 0, SRC_ADDR, 5, big, NEAR_DST, sizeof big, &stolen, &len, NULL,
                                          &err),
                     FVM_E_INVALID);
    /* 5 nops + jmp rel32 need 10 bytes */
    assert_int_equal(x64_build_trampoline(code, sizeof code, SRC_ADDR, 5, small, NEAR_DST, sizeof small, &stolen,
                                          &len, NULL, &err),
                     FVM_E_RANGE);
    assert_non_null(strstr(err.message, "trampoline needs more than the 8 bytes"));
    assert_int_equal(x64_build_trampoline(code, sizeof code, SRC_ADDR, 5, big, NEAR_DST, 10, &stolen, &len, NULL,
                                          &err),
                     FVM_OK);
    assert_int_equal(len, 10);
}

static void test_trampoline_map_offsets(void **state)
{
    /* push rbx; je +5 (grows by 4); mov eax,1 */
    static const uint8_t code[] = { 0x53, 0x74, 0x05, 0xb8, 0x01, 0x00, 0x00, 0x00 };
    built b;
    size_t dst = 99;
    (void)state;
    b = build("map", code, sizeof code, SRC_ADDR, 5, NEAR_DST);
    assert_int_equal(b.status, FVM_OK);
    assert_int_equal(b.map.count, 3);
    assert_true(x64_trampoline_map_offset(&b.map, 0, &dst));
    assert_int_equal(dst, 0);
    assert_true(x64_trampoline_map_offset(&b.map, 1, &dst));
    assert_int_equal(dst, 1);
    assert_true(x64_trampoline_map_offset(&b.map, 3, &dst));
    assert_int_equal(dst, 7);
    /* byte 2 is inside the jcc: not a place a thread can stop */
    assert_false(x64_trampoline_map_offset(&b.map, 2, &dst));
    assert_false(x64_trampoline_map_offset(&b.map, 8, &dst));
    assert_false(x64_trampoline_map_offset(NULL, 0, &dst));
}

static void test_write_jumps(void **state)
{
    uint8_t buf[16];
    fvm_error err = { 0 };
    emitted e;
    (void)state;

    assert_int_equal(x64_write_jmp_rel32(buf, sizeof buf, SRC_ADDR, NEAR_DST, &err), FVM_OK);
    e = read_emitted(buf, sizeof buf, SRC_ADDR);
    assert_int_equal(e.kind, EMITTED_JMP);
    assert_true(e.target == NEAR_DST);
    assert_int_equal(e.length, X64_JMP_REL32_LEN);

    assert_int_equal(x64_write_jmp_rel32(buf, sizeof buf, SRC_ADDR, FAR_DST, &err), FVM_E_RANGE);
    assert_non_null(strstr(err.message, "beyond +-2 GB"));
    assert_int_equal(x64_write_jmp_rel32(buf, 4, SRC_ADDR, NEAR_DST, &err), FVM_E_RANGE);

    assert_int_equal(x64_write_jmp_abs(buf, sizeof buf, FAR_DST, &err), FVM_OK);
    e = read_emitted(buf, sizeof buf, 0);
    assert_true(e.absolute);
    assert_true(e.target == FAR_DST);
    assert_int_equal(x64_write_jmp_abs(buf, 13, FAR_DST, &err), FVM_E_RANGE);

    /* the exact edges of rel32 reach */
    assert_true(x64_rel32_fits(0x100000000ull, 0x100000000ull + 0x7fffffffull));
    assert_false(x64_rel32_fits(0x100000000ull, 0x100000000ull + 0x80000000ull));
    assert_true(x64_rel32_fits(0x100000000ull, 0x100000000ull - 0x80000000ull));
    assert_false(x64_rel32_fits(0x100000000ull, 0x100000000ull - 0x80000001ull));
}

/* ---- the real prologues ----------------------------------------------- */

static const struct prologue_sample *find_sample(const char *name)
{
    for (size_t i = 0; i < sizeof prologue_samples / sizeof prologue_samples[0]; i++)
        if (strcmp(prologue_samples[i].name, name) == 0)
            return &prologue_samples[i];
    return NULL;
}

/* The functions the brief requires; each must be in prologues.h. */
static const char *const required_samples[] = {
    "ntdll!NtCreateUserProcess", "ntdll!NtCreateFile", "ntdll!NtOpenFile", "ntdll!NtQueryAttributesFile",
    "ntdll!NtCreateKey", "ntdll!NtOpenKeyEx", "ntdll!NtSetValueKey", "ntdll!NtCreateMutant",
    "ntdll!NtResumeThread", "ntdll!LdrLoadDll", "kernelbase!CreateFileW", "kernelbase!CreateProcessW",
    "kernelbase!CreateProcessInternalW", "kernel32!CreateFileW", "kernel32!CreateProcessW",
    "sechost!OpenSCManagerW", "sechost!CreateServiceW", "sechost!StartServiceW", "advapi32!OpenSCManagerW",
    "advapi32!CreateServiceW", "advapi32!StartServiceW", "user32!GetDC", "user32!GetWindowDC",
    "user32!SetWindowDisplayAffinity", "user32!FindWindowW", "user32!CreateDesktopW",
    "win32u!NtUserFindWindowEx", "gdi32!BitBlt", "gdi32!StartDocW", "gdi32!CreateDCW", "ws2_32!connect",
    "ws2_32!bind", "ws2_32!sendto", "ws2_32!WSAConnect", "ws2_32!GetAddrInfoW", "winspool!OpenPrinterW",
};

static void test_real_prologues_present(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof required_samples / sizeof required_samples[0]; i++) {
        if (!find_sample(required_samples[i])) {
            print_error("prologues.h lacks %s\n", required_samples[i]);
            fail();
        }
    }
}

/* Every instruction that starts in the first 32 bytes decodes, except one
 * cut off by the end of the dump (which must be reported as truncation). */
static void test_real_prologues_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof prologue_samples / sizeof prologue_samples[0]; i++) {
        const struct prologue_sample *s = &prologue_samples[i];
        size_t offset = 0;
        while (offset < 32) {
            x64_insn insn;
            fvm_error err = { 0 };
            fvm_status status = x64_decode(s->bytes + offset, 32 - offset, &insn, &err);
            if (status == FVM_E_INVALID && strstr(err.message, "truncated") && offset > 16)
                break;
            if (status != FVM_OK) {
                print_error("%s: byte %zu: %s\n", s->name, offset, err.message);
                fail();
            }
            offset += insn.length;
        }
    }
}

/* The exact instruction boundaries of the syscall stub, all 32 bytes. */
static void test_real_syscall_stub_boundaries(void **state)
{
    static const size_t lengths[] = { 3, 5, 8, 2, 2, 1, 2, 1, 7, 1 };
    static const x64_insn_class classes[] = { X64_INSN_PLAIN, X64_INSN_PLAIN, X64_INSN_PLAIN, X64_INSN_JCC_REL,
                                              X64_INSN_PLAIN, X64_INSN_PLAIN, X64_INSN_JMP_REL, X64_INSN_PLAIN,
                                              X64_INSN_PLAIN, X64_INSN_PLAIN };
    const struct prologue_sample *s = find_sample("ntdll!NtCreateFile");
    size_t offset = 0;
    (void)state;
    assert_non_null(s);
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        x64_insn insn;
        assert_int_equal(x64_decode(s->bytes + offset, 32 - offset, &insn, NULL), FVM_OK);
        assert_int_equal(insn.length, lengths[i]);
        assert_int_equal(insn.cls, classes[i]);
        offset += insn.length;
    }
    assert_int_equal(offset, 32);
}

/* Where the runtime would put the trampoline: a 64 KiB block just below. */
static uint64_t plausible_block(uint64_t target)
{
    return (target & ~0xffffull) - 0x10000;
}

typedef struct expected_steal {
    const char *name;
    size_t stolen; /* for a 5-byte patch */
} expected_steal;

static const expected_steal expected_steals[] = {
    { "ntdll!NtCreateFile", 8 },          /* mov r10,rcx; mov eax,N */
    { "ntdll!LdrLoadDll", 8 },            /* hot-patch lea */
    { "kernelbase!CreateFileW", 8 },
    { "kernel32!CreateFileW", 8 },
    { "user32!GetDC", 6 },                /* jmp [rip+d] */
    { "user32!SetWindowDisplayAffinity", 5 },
    { "user32!FindWindowW", 8 },
    { "user32!CreateDesktopW", 7 },
    { "gdi32!StartDocW", 5 },
    { "gdi32!CreateDCW", 6 },
    { "ws2_32!connect", 6 },
    { "ws2_32!sendto", 11 },
    { "ws2_32!WSAConnect", 7 },
    { "winspool!OpenPrinterW", 7 },
};

static void test_real_prologues_trampoline_5(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof prologue_samples / sizeof prologue_samples[0]; i++) {
        const struct prologue_sample *s = &prologue_samples[i];
        built b = build(s->name, s->bytes, 32, s->address, X64_JMP_REL32_LEN, plausible_block(s->address));
        if (b.status != FVM_OK) {
            print_error("%s: %s\n", s->name, b.err.message);
            fail();
        }
        /* from a near block, every branch stays rel32 */
        assert_true(b.length <= b.stolen + 4 * b.map.count + X64_JMP_REL32_LEN);
    }
    for (size_t i = 0; i < sizeof expected_steals / sizeof expected_steals[0]; i++) {
        const struct prologue_sample *s = find_sample(expected_steals[i].name);
        built b;
        assert_non_null(s);
        b = build(s->name, s->bytes, 32, s->address, 5, plausible_block(s->address));
        if (b.stolen != expected_steals[i].stolen) {
            print_error("%s: stole %zu bytes, want %zu\n", s->name, b.stolen, expected_steals[i].stolen);
            fail();
        }
    }
}

/* Longer patches reach the interesting instructions of real code. */
typedef struct real_relocation {
    const char *name;
    size_t min_len;
    size_t stolen;
    x64_insn_class last_class; /* class of the last stolen instruction */
} real_relocation;

static const real_relocation real_relocations[] = {
    { "kernel32!CreateFileW", 9, 14, X64_INSN_RIP_RELATIVE },            /* ff 25 thunk */
    { "advapi32!OpenSCManagerW", 14, 14, X64_INSN_RIP_RELATIVE },
    { "user32!GetDC", 5, 6, X64_INSN_RIP_RELATIVE },
    { "user32!SetWindowDisplayAffinity", 9, 15, X64_INSN_RIP_RELATIVE }, /* f6 05 test [rip],1 */
    { "winspool!OpenPrinterW", 8, 12, X64_INSN_CALL_REL },               /* e8 call rel32 */
    { "gdi32!StartDocW", 14, 19, X64_INSN_RIP_RELATIVE },                /* lea rdi,[rip] */
    { "ws2_32!connect", 15, 21, X64_INSN_RIP_RELATIVE },                 /* lea r12,[rip] */
    { "ws2_32!bind", 17, 23, X64_INSN_RIP_RELATIVE },                    /* lea r13,[rip] */
    { "ws2_32!GetAddrInfoW", 17, 23, X64_INSN_RIP_RELATIVE },
    { "ntdll!LdrLoadDll", 21, 27, X64_INSN_RIP_RELATIVE },               /* lea r12,[rip] */
    { "user32!FindWindowW", 18, 19, X64_INSN_JCC_REL },                  /* je rel8 */
    { "user32!FindWindowW", 25, 31, X64_INSN_RIP_RELATIVE },             /* mov rdi,[rip] */
    { "user32!CreateDesktopW", 22, 27, X64_INSN_JCC_REL },               /* jne rel32 */
    { "ntdll!NtCreateFile", 17, 18, X64_INSN_JCC_REL },                  /* jne over syscall */
    { "ntdll!NtCreateFile", 21, 21, X64_INSN_PLAIN },                    /* ...through the ret */
};

static void test_real_prologues_relocations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof real_relocations / sizeof real_relocations[0]; i++) {
        const real_relocation *r = &real_relocations[i];
        const struct prologue_sample *s = find_sample(r->name);
        x64_insn last;
        built b;
        size_t last_offset;
        assert_non_null(s);
        b = build(r->name, s->bytes, 32, s->address, r->min_len, plausible_block(s->address));
        if (b.status != FVM_OK || b.stolen != r->stolen) {
            print_error("%s min %zu: %s, stole %zu (want %zu)\n", r->name, r->min_len, b.err.message, b.stolen,
                        r->stolen);
            fail();
        }
        last_offset = b.map.src_offset[b.map.count - 1];
        assert_int_equal(x64_decode(s->bytes + last_offset, 32 - last_offset, &last, NULL), FVM_OK);
        assert_int_equal(last.cls, r->last_class);
    }
}

/* From 12 GB away, the RIP-relative ones must be refused with a range error
 * and the others must still work through absolute jumps. */
static void test_real_prologues_far_block(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof prologue_samples / sizeof prologue_samples[0]; i++) {
        const struct prologue_sample *s = &prologue_samples[i];
        built near = build(s->name, s->bytes, 32, s->address, 5, plausible_block(s->address));
        built far = build(s->name, s->bytes, 32, s->address, 5, s->address + 0x300000000ull);
        int has_rip = 0;
        for (size_t k = 0; k < near.map.count; k++) {
            x64_insn insn;
            assert_int_equal(x64_decode(s->bytes + near.map.src_offset[k], 32, &insn, NULL), FVM_OK);
            has_rip |= insn.cls == X64_INSN_RIP_RELATIVE;
        }
        assert_int_equal(far.status, has_rip ? FVM_E_RANGE : FVM_OK);
    }
}

/* The 14-byte absolute patch over real code: a call that would return into
 * the patch and a thunk shorter than the patch are refused, everything else
 * works. */
static void test_real_prologues_trampoline_14(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof prologue_samples / sizeof prologue_samples[0]; i++) {
        const struct prologue_sample *s = &prologue_samples[i];
        built b = build(s->name, s->bytes, 32, s->address, X64_JMP_ABS_LEN, plausible_block(s->address));
        if (strcmp(s->name, "winspool!OpenPrinterW") == 0) {
            assert_int_equal(b.status, FVM_E_UNSUPPORTED);
            assert_non_null(strstr(b.err.message, "call at byte 7 would return"));
            continue;
        }
        if (strcmp(s->name, "user32!GetDC") == 0 || strcmp(s->name, "user32!GetWindowDC") == 0) {
            assert_int_equal(b.status, FVM_E_UNSUPPORTED);
            assert_non_null(strstr(b.err.message, "function ends at byte 0 (jmp) before the 14-byte patch"));
            continue;
        }
        if (b.status != FVM_OK) {
            print_error("%s: %s\n", s->name, b.err.message);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_wine_prologue_forms),
        cmocka_unit_test(test_decode_immediates),
        cmocka_unit_test(test_decode_addressing_and_prefixes),
        cmocka_unit_test(test_decode_opcode_maps),
        cmocka_unit_test(test_decode_field_offsets),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_decode_empty_and_null),
        cmocka_unit_test(test_decode_never_overreads),
        cmocka_unit_test(test_trampoline_plain_copy),
        cmocka_unit_test(test_trampoline_jmp_rip),
        cmocka_unit_test(test_trampoline_call_rel32),
        cmocka_unit_test(test_trampoline_test_rip_imm8),
        cmocka_unit_test(test_trampoline_lea_rip),
        cmocka_unit_test(test_trampoline_jcc_rel8),
        cmocka_unit_test(test_trampoline_jcc_rel32),
        cmocka_unit_test(test_trampoline_jmp_rel8),
        cmocka_unit_test(test_trampoline_far_absolute_forms),
        cmocka_unit_test(test_trampoline_branch_to_stolen_end_is_fine),
        cmocka_unit_test(test_trampoline_refusals),
        cmocka_unit_test(test_trampoline_bad_arguments),
        cmocka_unit_test(test_trampoline_map_offsets),
        cmocka_unit_test(test_write_jumps),
        cmocka_unit_test(test_real_prologues_present),
        cmocka_unit_test(test_real_prologues_decode),
        cmocka_unit_test(test_real_syscall_stub_boundaries),
        cmocka_unit_test(test_real_prologues_trampoline_5),
        cmocka_unit_test(test_real_prologues_relocations),
        cmocka_unit_test(test_real_prologues_far_block),
        cmocka_unit_test(test_real_prologues_trampoline_14),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
