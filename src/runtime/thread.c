/* thread.c - the per-thread block: everything the runtime keeps per thread,
 * behind one TLS slot.
 *
 * The block is made the first time a thread needs it and freed when the
 * thread ends (dllmain.c calls runtime_thread_detach, which asks each
 * virtualizer to free its part first). Reading it must not disturb the
 * program: TlsGetValue sets LastError to 0 on success (on Windows and on
 * Wine), so a Win32-level hook that looked at its per-thread state between
 * the program's failing call and its GetLastError would lose the error. The
 * slot is read from the TEB's TlsSlots array instead, which changes nothing
 * (x64 layout: TEB+0x1480, 64 slots; a later slot goes through TlsGetValue
 * with LastError saved and restored). */
#include "runtime/runtime.h"

#define TEB_TLS_SLOTS_OFFSET 0x1480
#define TEB_TLS_SLOT_COUNT   64

static DWORD g_slot = TLS_OUT_OF_INDEXES;

BOOL runtime_thread_start(void)
{
    g_slot = TlsAlloc();
    if (g_slot == TLS_OUT_OF_INDEXES) {
        fvm_report("runtime: no TLS slot left for the per-thread block");
        return FALSE;
    }
    return TRUE;
}

static void *slot_value(void)
{
    if (g_slot < TEB_TLS_SLOT_COUNT) {
        void *value;
        __asm__("movq %%gs:(%1), %0" : "=r"(value) : "r"((uintptr_t)(TEB_TLS_SLOTS_OFFSET + g_slot * 8)));
        return value;
    }
    DWORD error = GetLastError();
    void *value = TlsGetValue(g_slot);
    SetLastError(error);
    return value;
}

fvm_thread *fvm_thread_peek(void)
{
    if (g_slot == TLS_OUT_OF_INDEXES)
        return NULL;
    return slot_value();
}

fvm_thread *fvm_thread_get(void)
{
    if (g_slot == TLS_OUT_OF_INDEXES)
        return NULL;
    fvm_thread *t = slot_value();
    if (t)
        return t;
    DWORD error = GetLastError();
    t = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *t);
    if (t && !TlsSetValue(g_slot, t)) {
        HeapFree(GetProcessHeap(), 0, t);
        t = NULL;
    }
    SetLastError(error);
    return t;
}

void runtime_thread_detach(void)
{
    fvm_thread *t = fvm_thread_peek();
    if (!t)
        return;
    for (size_t i = 0; i < g_virtualizer_count; i++)
        if (g_virtualizers[i]->thread_detach)
            g_virtualizers[i]->thread_detach(t);
    runtime_policy_thread_detach(t);
    TlsSetValue(g_slot, NULL);
    HeapFree(GetProcessHeap(), 0, t);
}

/* ---- the bypass for FVM's own calls ---------------------------------------------- */

void runtime_bypass_enter(void)
{
    fvm_thread *t = fvm_thread_get();
    if (t)
        t->bypass++;
}

void runtime_bypass_leave(void)
{
    fvm_thread *t = fvm_thread_peek();
    if (t && t->bypass > 0)
        t->bypass--;
}

BOOL runtime_bypassed(void)
{
    fvm_thread *t = fvm_thread_peek();
    return t && t->bypass > 0;
}
