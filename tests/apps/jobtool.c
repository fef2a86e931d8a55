/* jobtool.c - jobtool.exe, run unboxed: a process that enters a box's job
 * without fvm.dll, as a process started by the platform on a boxed
 * process's behalf would. The box's broker must stop it.
 *
 *   jobtool.exe join BOXPATH   put this process in the job of the box whose
 *                              folder is BOXPATH, print "joined", then wait
 *                              up to 20 s; print "survived" and exit 0 if
 *                              still alive (exit 2: cannot join) */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

#include "common/boxcfg.h"

int wmain(int argc, wchar_t **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 3 || wcscmp(argv[1], L"join"))
        return 2;
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(argv[2], FVM_OBJ_JOB, name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_ASSIGN_PROCESS, FALSE, name);
    if (!job || !AssignProcessToJobObject(job, GetCurrentProcess())) {
        printf("cannot join (error %lu)\n", (unsigned long)GetLastError());
        return 2;
    }
    printf("joined\n");
    Sleep(20000);
    printf("survived\n");
    return 0;
}
