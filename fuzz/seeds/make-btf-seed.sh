#!/usr/bin/env bash
# Rebuilds fuzz/corpus/btf/kernel-structs.btf from kernel_structs.c: gcc's
# BTF output (gcc 12+), the .BTF section alone, as /sys/kernel/btf/vmlinux is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
gcc -gbtf -c "$here/kernel_structs.c" -o "$tmp/k.o"
objcopy --dump-section .BTF="$here/../corpus/btf/kernel-structs.btf" "$tmp/k.o" "$tmp/unused.o"
