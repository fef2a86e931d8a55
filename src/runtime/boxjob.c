/* boxjob.c - the box's job object, opened once for every module.
 *
 * The broker owns the box's job; every process of the box is in it (they
 * inherit it), so the job lives while any of them runs. proc.c puts new
 * processes in it; gui.c asks it whether a window's process belongs to the
 * box. Its name is one of FVM's own objects ("FVM.<hash>"), which the object
 * virtualizer refuses to boxed programs: the open runs with the runtime's
 * bypass set, or it would be refused too (gui.c once opened it without the
 * bypass, so windows of system classes in other processes of the box were
 * invisible to a process that had started no child). */
#include "runtime/runtime.h"

HANDLE runtime_box_job(void)
{
    if (!g_fvm.job) {
        wchar_t name[FVM_OBJ_NAME_MAX];
        fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_JOB, name, FVM_OBJ_NAME_MAX);
        runtime_bypass_enter();
        HANDLE job = OpenJobObjectW(JOB_OBJECT_ASSIGN_PROCESS | JOB_OBJECT_QUERY, FALSE, name);
        runtime_bypass_leave();
        if (job && InterlockedCompareExchangePointer(&g_fvm.job, job, NULL) != NULL)
            CloseHandle(job);
    }
    return g_fvm.job;
}
