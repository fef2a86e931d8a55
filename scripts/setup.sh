#!/usr/bin/env bash
# setup.sh - everything a fresh Debian 12 machine needs for FVM, idempotent:
# the Debian packages (compilers, Wine, test tools) and the project's own Wine
# prefix, created non-interactively. Safe to run again: it only does what is
# missing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# python3-pytest-xdist runs the end-to-end tests on two workers (test.sh).
# x11-utils (xwininfo) lists the windows of a box's own display (test_floor.py).
# xserver-xephyr shows a box's nested display (the default) on the user's display.
# nsis (makensis) and wixl build the real NSIS installer and MSI package
# that tests/e2e/test_installers.py installs in a box.
packages=(make gcc gcc-mingw-w64-x86-64 wine wine64 libcmocka-dev python3-pytest python3-pytest-xdist
          xvfb xserver-xephyr x11-utils clang libclang-rt-14-dev nsis wixl)
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

# Printing (tests/e2e/test_print.py): CUPS with cups-pdf as a real printer,
# the queue FVM_PDF writing each job as a PDF to /var/spool/cups-pdf/FVM
# (its own cups-pdf configuration, /etc/cups/cups-pdf-fvm.conf, picked by the
# device URI cups-pdf:/fvm). Wine's spooler finds CUPS queues by itself.
# Without systemd cupsd is started directly. Nothing here fails the setup:
# when CUPS cannot be made to work the print tests fail and say what is missing.
setup_printing() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    local print_packages=(cups cups-client printer-driver-cups-pdf poppler-utils) missing_print=() p
    for p in "${print_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing_print+=("$p")
    done
    if [ ${#missing_print[@]} -gt 0 ]; then
        echo "setup: installing ${missing_print[*]} (printing tests)"
        $sudo apt-get update -q || true
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing_print[@]}" || return 1
    fi
    local conf=/etc/cups/cups-pdf-fvm.conf
    local want=$'Out /var/spool/cups-pdf/FVM\nLabel 0\nTitlePref 1\nUserUMask 0022'
    if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
        printf '%s\n' "$want" | $sudo tee "$conf" >/dev/null || return 1
    fi
    $sudo mkdir -p /var/spool/cups-pdf/FVM && $sudo chmod 0755 /var/spool/cups-pdf/FVM || return 1
    if ! lpstat -r 2>/dev/null | grep -q "is running"; then
        echo "setup: starting cupsd"
        $sudo cupsd || return 1
        local i
        for i in $(seq 50); do
            lpstat -r 2>/dev/null | grep -q "is running" && break
            sleep 0.2
        done
        lpstat -r 2>/dev/null | grep -q "is running" || return 1
    fi
    if ! lpstat -v FVM_PDF >/dev/null 2>&1; then
        echo "setup: creating the print queue FVM_PDF (cups-pdf)"
        $sudo lpadmin -p FVM_PDF -E -v cups-pdf:/fvm -P /usr/share/ppd/cups-pdf/CUPS-PDF_noopt.ppd 2>/dev/null || return 1
    fi
    $sudo cupsenable FVM_PDF 2>/dev/null || true
    $sudo cupsaccept FVM_PDF 2>/dev/null || true
}
setup_printing || echo "setup: warning: CUPS or the FVM_PDF queue could not be set up; tests/e2e/test_print.py will fail"
