/* guard.c - fault-guarded access to the caller's memory (see guard.h).
 *
 * The idea is the kernel's exception table: one small copy routine whose
 * instructions are the only ones allowed to fault. A vectored exception
 * handler, registered on first use, recognises an access violation raised
 * inside that routine and resumes at its failure exit instead of letting
 * the process crash; any other exception passes on untouched. So the common
 * case (good pointers) costs a plain copy and no system call. */
#include "runtime/guard.h"

/* BOOL guard_copy_raw(void *dst, const void *src, SIZE_T n): 1 on success,
 * 0 when the copy faulted. Only the rep movsb at guard_copy_fault_ip may
 * fault; the handler moves such a fault to guard_copy_failed. rsi and rdi
 * are callee-saved on x64 Windows. */
extern char guard_copy_fault_ip[], guard_copy_failed[];
int guard_copy_raw(void *dst, const void *src, SIZE_T n);
__asm__(".text\n"
        ".globl guard_copy_raw\n"
        "guard_copy_raw:\n"
        "    pushq %rsi\n"
        "    pushq %rdi\n"
        "    movq %rcx, %rdi\n"
        "    movq %rdx, %rsi\n"
        "    movq %r8, %rcx\n"
        ".globl guard_copy_fault_ip\n"
        "guard_copy_fault_ip:\n"
        "    rep movsb\n"
        "    movl $1, %eax\n"
        "    popq %rdi\n"
        "    popq %rsi\n"
        "    ret\n"
        ".globl guard_copy_failed\n"
        "guard_copy_failed:\n"
        "    cld\n"
        "    xorl %eax, %eax\n"
        "    popq %rdi\n"
        "    popq %rsi\n"
        "    ret\n");

static LONG CALLBACK guard_handler(EXCEPTION_POINTERS *info)
{
    NTSTATUS code = (NTSTATUS)info->ExceptionRecord->ExceptionCode;
    if ((code == STATUS_ACCESS_VIOLATION || code == STATUS_IN_PAGE_ERROR || code == STATUS_GUARD_PAGE_VIOLATION) &&
        info->ContextRecord->Rip == (DWORD64)(ULONG_PTR)guard_copy_fault_ip) {
        info->ContextRecord->Rip = (DWORD64)(ULONG_PTR)guard_copy_failed;
        return EXCEPTION_CONTINUE_EXECUTION;
    }
    return EXCEPTION_CONTINUE_SEARCH;
}

static void guard_ready(void)
{
    static volatile LONG registered;
    if (registered)
        return;
    /* First in the chain, so a program's own handler never sees (or
     * mishandles) a fault that belongs to FVM. */
    if (InterlockedCompareExchange(&registered, 1, 0) == 0)
        AddVectoredExceptionHandler(1, guard_handler);
}

BOOL guard_copy(void *dst, const void *src, SIZE_T n)
{
    if (!n)
        return TRUE;
    if (!src || !dst)
        return FALSE;
    guard_ready();
    return guard_copy_raw(dst, src, n) != 0;
}

#define GUARD_PAGE 4096u

/* One byte of every page in [p, p+n): the first, then each page start. */
BOOL guard_readable(const void *p, SIZE_T n)
{
    ULONG_PTR start = (ULONG_PTR)p, end = start + n;
    if (end < start)
        return FALSE;   /* wraps around the address space */
    char byte;
    for (ULONG_PTR at = start; at < end; at = (at | (GUARD_PAGE - 1)) + 1)
        if (!guard_copy(&byte, (const void *)at, 1))
            return FALSE;
    return TRUE;
}

/* Each touched byte is read and written back unchanged: the buffer is one
 * the call is about to fill anyway. */
BOOL guard_writable(void *p, SIZE_T n)
{
    ULONG_PTR start = (ULONG_PTR)p, end = start + n;
    if (end < start)
        return FALSE;
    char byte;
    for (ULONG_PTR at = start; at < end; at = (at | (GUARD_PAGE - 1)) + 1)
        if (!guard_copy(&byte, (const void *)at, 1) || !guard_copy((void *)at, &byte, 1))
            return FALSE;
    return TRUE;
}

NTSTATUS guard_unicode(const UNICODE_STRING *us)
{
    UNICODE_STRING copy;
    if (!us)
        return STATUS_SUCCESS;
    if (!guard_copy(&copy, us, sizeof copy) || (copy.Length && !guard_readable(copy.Buffer, copy.Length)))
        return STATUS_ACCESS_VIOLATION;
    return STATUS_SUCCESS;
}

NTSTATUS guard_attributes(const OBJECT_ATTRIBUTES *oa)
{
    OBJECT_ATTRIBUTES copy;
    if (!oa)
        return STATUS_SUCCESS;
    if (!guard_copy(&copy, oa, sizeof copy))
        return STATUS_ACCESS_VIOLATION;
    if (!copy.ObjectName)
        return STATUS_SUCCESS;
    return guard_unicode(copy.ObjectName);
}
