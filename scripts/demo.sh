#!/usr/bin/env bash
# demo.sh - FVM in one minute: real programs (Wine's cmd.exe and reg.exe)
# write and change files and a registry key in a demo box; the box's delta is
# shown, and a hash of the host folder before and after, and the host
# registry, show the host untouched.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FVM_TOP"

export FVM_ROOT='C:\FVM-demo'
host_win='C:\fvm-demo-host'
host="$WINEPREFIX/drive_c/fvm-demo-host"
box_dir="$WINEPREFIX/drive_c/FVM-demo/boxes/demo"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
tree_hash() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

mkdir -p "$host"
printf 'quarterly numbers: 42\r\n' > "$host/report.txt"
printf 'obsolete\r\n' > "$host/old.txt"
./fvm rm --force demo >/dev/null 2>&1 || true

say "The host folder $host_win before"
ls -l "$host"
before=$(tree_hash "$host")
echo "host tree hash: $before"

say "fvm create demo"
./fvm create demo

say "fvm run --box demo cmd /c ...   (a real program changing files)"
./fvm run --box demo cmd /c "echo new file written in the box> $host_win\\new.txt & \
echo quarterly numbers: 666 (changed in the box)>> $host_win\\report.txt & \
del $host_win\\old.txt & \
mkdir $host_win\\subdir & echo nested>$host_win\\subdir\\nested.txt & \
echo --- what the boxed program sees: & type $host_win\\report.txt & type $host_win\\new.txt"

say "fvm run --box demo reg add ...   (a real program changing the registry)"
wine reg delete 'HKCU\Software\FvmDemo' /f >/dev/null 2>&1 || true
./fvm run --box demo reg add 'HKCU\Software\FvmDemo' /v Greeting /d "written in the box" /f
./fvm run --box demo reg query 'HKCU\Software\FvmDemo'
echo "--- the same key on the host:"
if wine reg query 'HKCU\Software\FvmDemo' >/dev/null 2>&1; then
    echo "HOST CHANGED: the key exists on the host" >&2
    exit 1
fi
echo "(not there: the host registry is untouched)"

say "fvm diff demo   (the box's changes: A added, C changed, D deleted)"
./fvm diff demo

say "The box's delta on disk (its folder $FVM_ROOT\\boxes\\demo)"
(cd "$box_dir" && find . -type f -printf '%8s bytes  %p\n' | sort -k3)
echo "--- report.txt in the box:"
cat "$box_dir/drive/C/fvm-demo-host/report.txt"

say "The host folder after"
ls -l "$host"
after=$(tree_hash "$host")
echo "host tree hash: $after"
echo "--- report.txt on the host:"
cat "$host/report.txt"
if [ "$before" = "$after" ]; then
    echo "host untouched: the tree hash is the same before and after"
else
    echo "HOST CHANGED: the tree hash differs" >&2
    exit 1
fi

say "fvm list"
./fvm list
echo
echo "Run it again with: ./fvm run --box demo cmd /c type $host_win\\report.txt"
echo "Remove the box with: FVM_ROOT='$FVM_ROOT' ./fvm rm demo"
