# apps.mk - per-app link extras for tests/apps (included by the Makefile).
# APPLIB_LINK_<app> adds libraries or objects to tests/apps/<app>.c's link.

# probe.exe imports probedll.dll statically: its DllMain is the earliest
# foreign code of the process, which must already run hooked.
APPLIB_LINK_probe := -lprobedll
