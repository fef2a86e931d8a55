/* resolve.c - host names resolved for the box's programs (FVMRSV01,
 * FVMRNI01), in a box on the host's Wine server.
 *
 * The broker is a host process in the host's network: it answers with
 * common/resolver.c, deciding the name rules again for the process the pipe
 * names (its image, never the message's word). */
#include <windows.h>

#include "broker/broker.h"
#include "common/resolver.h"

/* The asking process's image, as the policy's program scopes name it. */
static size_t client_image(uint32_t pid, wchar_t *out, DWORD cap)
{
    HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    DWORD len = cap;
    BOOL ok = process && QueryFullProcessImageNameW(process, 0, out, &len);
    if (process)
        CloseHandle(process);
    return ok ? len : 0;
}

size_t broker_resolve_request(uint32_t pid, const uint8_t *buf, size_t len, uint8_t *out, size_t cap)
{
    wchar_t image[FVM_PATH_MAX];
    size_t image_len = client_image(pid, image, FVM_PATH_MAX);
    static const uint8_t nothing[1];
    if (!image_len)   /* a process that cannot be named asks nothing (WSAEINVAL) */
        return resolver_answer(broker_policy_view(), NULL, 0, nothing, 0, out, cap);
    return resolver_answer(broker_policy_view(), image, image_len, buf, len, out, cap);
}
