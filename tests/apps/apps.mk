# apps.mk - per-app link extras for tests/apps (included by the Makefile).
# APPLIB_LINK_<app> adds libraries or objects to tests/apps/<app>.c's link.
