# env.sh - sourced by the scripts and the ./fvm wrapper: the project's Wine
# environment. WINEPREFIX is honoured when set; otherwise FVM uses its own
# prefix so it never touches ~/.wine.
export WINEPREFIX="${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/fvm/wineprefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
# Debian's wine ships no Mono or Gecko; never offer to download them.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
export WINEARCH=win64
FVM_TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FVM_TOP
