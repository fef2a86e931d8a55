/* nt.h - the ntdll declarations the runtime's modules share.
 *
 * mingw-w64's winternl.h declares only part of the native API, and what it
 * lacks each module used to declare for itself. Declarations used by more
 * than one module live here, once; a module keeps in its own file only the
 * types of the calls it alone hooks. The x64 layouts are those of Windows
 * (Wine uses the same). */
#ifndef FVM_RUNTIME_NT_H
#define FVM_RUNTIME_NT_H

#include <windows.h>
#include <winternl.h>

/* ---- ntdll exports the runtime calls directly ---- */
NTSTATUS NTAPI NtClose(HANDLE);
NTSTATUS NTAPI NtQueryObject(HANDLE, OBJECT_INFORMATION_CLASS, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtReadFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, PLARGE_INTEGER, PULONG);
NTSTATUS NTAPI NtWriteFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, PLARGE_INTEGER, PULONG);
NTSTATUS NTAPI NtQueryInformationFile(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, FILE_INFORMATION_CLASS);
NTSTATUS NTAPI NtCreateFile(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG,
                            ULONG, ULONG, PVOID, ULONG);
NTSTATUS NTAPI NtOpenSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQuerySymbolicLinkObject(HANDLE, PUNICODE_STRING, PULONG);
NTSTATUS NTAPI NtSetEvent(HANDLE, PLONG);
NTSTATUS NTAPI NtTerminateProcess(HANDLE process, NTSTATUS status);
NTSTATUS NTAPI NtResumeThread(HANDLE thread, ULONG *previous_count);

/* ---- types of calls hooked in one module and called from others ---- */
typedef NTSTATUS (NTAPI *NtClose_fn)(HANDLE);
typedef NTSTATUS (NTAPI *NtQueryObject_fn)(HANDLE, OBJECT_INFORMATION_CLASS, PVOID, ULONG, PULONG);
typedef NTSTATUS (NTAPI *NtDuplicateObject_fn)(HANDLE source_process, HANDLE source, HANDLE target_process,
                                               PHANDLE target, ACCESS_MASK access, ULONG attributes, ULONG options);
typedef NTSTATUS (NTAPI *NtCreateFile_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                          PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS (NTAPI *NtOpenFile_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG);
typedef NTSTATUS (NTAPI *NtQueryAttributesFile_fn)(POBJECT_ATTRIBUTES, FILE_BASIC_INFORMATION *);
typedef NTSTATUS (NTAPI *NtQueryFullAttributesFile_fn)(POBJECT_ATTRIBUTES, FILE_NETWORK_OPEN_INFORMATION *);
typedef NTSTATUS (NTAPI *NtSetInformationFile_fn)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, FILE_INFORMATION_CLASS);
typedef NTSTATUS (NTAPI *NtQueryInformationFile_fn)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, FILE_INFORMATION_CLASS);
typedef NTSTATUS (NTAPI *NtWriteFile_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG,
                                         PLARGE_INTEGER, PULONG);
typedef NTSTATUS (NTAPI *NtQueryDirectoryFile_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, PVOID,
                                                  ULONG, FILE_INFORMATION_CLASS, BOOLEAN, PUNICODE_STRING, BOOLEAN);

/* The unhooked originals of the calls the handle registry hooks
 * (handles.c): FVM's own handles are closed and named through them. NULL
 * until the start-up batch is installed. */
extern NtClose_fn real_NtClose;
extern NtQueryObject_fn real_NtQueryObject;

#ifndef DUPLICATE_CLOSE_SOURCE
#define DUPLICATE_CLOSE_SOURCE 0x00000001
#endif

/* ---- the loader's DLL notifications (LdrRegisterDllNotification; no SDK
 * header has them) ---- */
typedef struct dll_loaded_notification {
    ULONG flags;
    const UNICODE_STRING *full_name;
    const UNICODE_STRING *base_name;
    void *base;
    ULONG size;
} dll_loaded_notification;

typedef void (CALLBACK *dll_notification_fn)(ULONG reason, const dll_loaded_notification *data, void *ctx);
typedef NTSTATUS (NTAPI *LdrRegisterDllNotification_fn)(ULONG flags, dll_notification_fn callback, void *ctx,
                                                        void **cookie);
#define DLL_NOTIFICATION_LOADED   1
#define DLL_NOTIFICATION_UNLOADED 2

#endif
