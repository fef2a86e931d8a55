# env.sh - sourced by the scripts and the ./fvm wrapper: the project's Wine
# environment. WINEPREFIX is honoured when set; otherwise FVM uses its own
# prefix so it never touches ~/.wine.
export WINEPREFIX="${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/fvm/wineprefix}"
# err+virtual: Wine's own start-up failure "failed to map the shared user
# data" (about 1 start in 1000 here, docs/design.md "Wine starts that fail")
# is otherwise a silent exit code 1; it prints nothing in a normal run.
export WINEDEBUG="${WINEDEBUG:--all,err+virtual}"
# Debian's wine ships no Mono or Gecko; never offer to download them.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
export WINEARCH=win64
FVM_TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FVM_TOP
