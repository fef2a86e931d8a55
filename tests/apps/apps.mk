# apps.mk - per-app link extras for tests/apps (included by the Makefile).
# APPLIB_LINK_<app> adds libraries or objects to tests/apps/<app>.c's link.

# probe.exe imports probedll.dll statically: its DllMain is the earliest
# foreign code of the process, which must already run hooked.
APPLIB_LINK_probe := -lprobedll

# hooktest.exe links the hook engine's runtime objects directly (built with
# the runtime's flags by the $(B)/rt/%.o rule) and calls the Winsock API.
HOOKTEST_OBJ := $(B)/rt/src/runtime/hook/hook.o $(B)/rt/src/core/x64dis.o $(B)/rt/src/core/error.o
APPLIB_LINK_hooktest := $(HOOKTEST_OBJ) -lws2_32
$(B)/win/apps/hooktest.exe: $(HOOKTEST_OBJ)

# sdkclient.exe is the sample SDK client: it links the SDK archive.
APPLIB_LINK_sdkclient := $(B)/win/libfvm.a -ladvapi32 -lshlwapi
$(B)/win/apps/sdkclient.exe: $(B)/win/libfvm.a

# regtool.exe saves keys with RegSaveKeyW after enabling SeBackupPrivilege.
APPLIB_LINK_regtool := -ladvapi32

# regstoretool.exe uses common/regstore (and through it core/regfile) and
# the box index.
APPLIB_LINK_regstoretool := $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a
$(B)/win/apps/regstoretool.exe: $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a

# proctool.exe lists processes with EnumProcesses (psapi).
APPLIB_LINK_proctool := -lpsapi -ladvapi32

# spawn.exe starts programs with CreateProcess and ShellExecuteEx.
APPLIB_LINK_spawn := -lshell32

# jobtool.exe names a box's job with common/boxcfg.
APPLIB_LINK_jobtool := $(B)/win/libfvmcommon.a
$(B)/win/apps/jobtool.exe: $(B)/win/libfvmcommon.a

# trustattack.exe queries handle names with NtQueryObject.
APPLIB_LINK_trustattack := $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a -lntdll -lws2_32
$(B)/win/apps/trustattack.exe: $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a

# svctool.exe is a service (StartServiceCtrlDispatcher) and a raw svcctl RPC client.
APPLIB_LINK_svctool := -ladvapi32

# netprobe.exe makes sockets by every path (Winsock, ConnectEx, the driver
# directly) for test_net.py; it names another box's objects with common/boxcfg
# (test_net_ports.py).
APPLIB_LINK_netprobe := $(B)/win/libfvmcommon.a -lws2_32 -lmswsock
$(B)/win/apps/netprobe.exe: $(B)/win/libfvmcommon.a

# printtool.exe prints by every path (winspool jobs, GDI printer DCs, AddJob).
APPLIB_LINK_printtool := -lwinspool -lgdi32

# capture.exe reads pixels (gdi32), the clipboard and window titles.
APPLIB_LINK_capture := -lgdi32 -luser32

# synctool.exe reads and sets files' security descriptors as SDDL (advapi32).
APPLIB_LINK_synctool := -ladvapi32

# hostile_floor.exe connects through Winsock once its hook is undone.
APPLIB_LINK_hostile_floor := $(B)/win/libfvmcommon.a -lws2_32
$(B)/win/apps/hostile_floor.exe: $(B)/win/libfvmcommon.a
