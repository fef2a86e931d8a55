#!/usr/bin/env bash
# setup.sh - everything a fresh Debian 12 machine needs for FVM, idempotent:
# the Debian packages (compilers, Wine, test tools) and the project's own Wine
# prefix, created non-interactively. Safe to run again: it only does what is
# missing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# nsis (makensis) and wixl build the real NSIS installer and MSI package
# that tests/e2e/test_installers.py installs in a box.
packages=(make gcc gcc-mingw-w64-x86-64 wine wine64 libcmocka-dev python3-pytest
          xvfb clang libclang-rt-14-dev nsis wixl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

# The prefix is ready once wineboot has finished and written this marker;
# a half-made prefix (interrupted wineboot) is made again from scratch.
marker="$WINEPREFIX/.fvm-prefix-ready"
if [ ! -f "$marker" ]; then
    echo "setup: creating Wine prefix $WINEPREFIX"
    rm -rf "$WINEPREFIX"
    mkdir -p "$(dirname "$WINEPREFIX")"
    wineboot -i >/dev/null 2>&1
    wineserver -w
    touch "$marker"
fi
