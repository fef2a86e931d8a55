/* share.c - sharing modes across copy-up (issue 18).
 *
 * A write open in a box copies the host file into the box and opens the
 * copy, so the host's sharing check never meets the handles other programs
 * (or the box itself, through a read open of the host file) hold on the
 * host file: the box would open for writing what the host refuses with
 * STATUS_SHARING_VIOLATION. Before a copy-up the runtime asks here: the
 * broker, a host process, opens the host file with the rights and share
 * mode the program asked for and closes it at once, and wineserver's own
 * sharing check gives the answer. The program never holds that handle. The
 * name is outside input: only \??\X:\ names without "." or ".." components
 * are taken, the file is first opened without data rights and must be a
 * file on a file system (no device, pipe or folder is ever opened for
 * writing here), and no disposition but FILE_OPEN is used. */
#include "broker/broker.h"
#include "common/brokerproto.h"

#include <winternl.h>

#define DATA_RIGHTS (FILE_READ_DATA | FILE_EXECUTE | FILE_WRITE_DATA | FILE_APPEND_DATA | DELETE)
/* What FileFsDeviceInformation says for a file on a file system (Wine:
 * regular files and folders; a character or block device, a FIFO or a
 * socket says something else). */
#define DEVICE_DISK_FILE_SYSTEM 0x08
#define DEVICE_CD_ROM_FILE_SYSTEM 0x03
#define DEVICE_NETWORK_FILE_SYSTEM 0x14

typedef struct fs_device_information {
    ULONG DeviceType;
    ULONG Characteristics;
} fs_device_information;

static BOOL plain_drive_name(const uint16_t *n, size_t units)
{
    if (units < 8 || n[0] != '\\' || n[1] != '?' || n[2] != '?' || n[3] != '\\' ||
        !((n[4] >= 'A' && n[4] <= 'Z') || (n[4] >= 'a' && n[4] <= 'z')) || n[5] != ':' || n[6] != '\\')
        return FALSE;
    for (size_t i = 6, start = 7; i <= units; i++) {
        if (i < units && n[i] == 0)
            return FALSE;
        if (i == units || n[i] == '\\') {
            size_t len = i - start;
            if (i > 6 && (len == 0 || (len == 1 && n[start] == '.') ||
                          (len == 2 && n[start] == '.' && n[start + 1] == '.')))
                return FALSE;
            start = i + 1;
        }
    }
    return TRUE;
}

void broker_share_probe(const void *request, size_t len, fvm_share_reply *reply)
{
    const fvm_share_request *req = request;
    reply->version = FVM_BROKER_PROTO_VERSION;
    reply->status = 0;
    if (len != sizeof *req || !req->units || req->units > FVM_SHARE_NAME_UNITS ||
        !plain_drive_name(req->name, req->units))
        return;
    ACCESS_MASK access = req->access & DATA_RIGHTS;
    if (!access)
        return;   /* no data rights: sharing is not checked */
    UNICODE_STRING us = {(USHORT)(req->units * 2), (USHORT)(req->units * 2), (PWSTR)req->name};
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    IO_STATUS_BLOCK io;
    HANDLE h;
    if (NtOpenFile(&h, FILE_READ_ATTRIBUTES | SYNCHRONIZE, &oa, &io, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                   FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT) < 0)
        return;
    fs_device_information device = {0};
    NTSTATUS st = NtQueryVolumeInformationFile(h, &io, &device, sizeof device, FileFsDeviceInformation);
    NtClose(h);
    if (st < 0 || (device.DeviceType != DEVICE_DISK_FILE_SYSTEM && device.DeviceType != DEVICE_CD_ROM_FILE_SYSTEM &&
                   device.DeviceType != DEVICE_NETWORK_FILE_SYSTEM))
        return;
    st = NtOpenFile(&h, access | SYNCHRONIZE, &oa, &io, req->share & (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE),
                    FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    if (st >= 0)
        NtClose(h);
    else if (st == (NTSTATUS)0xC0000043L)   /* STATUS_SHARING_VIOLATION */
        reply->status = (uint32_t)st;
}
