#!/usr/bin/env bash
# Installs what the container-naming tests drive (tests/tests/containers.rs),
# when it is missing; does nothing when all is in place.
#
#   tests/install-deps.sh
#
#   podman, runc      run a real container (this machine's crun refuses its
#                     hybrid cgroup layout, so the tests pass --runtime runc)
#   busybox-static    /bin/busybox, a static binary the tests put into a
#                     FROM scratch image, so no registry is needed
#
# packaging/install-test-deps.sh installs podman and runc the same way for
# the packaging tests; either script may run first.
# apt needs root; without it the script says what to install and fails.
set -euo pipefail

say() { echo "install-deps: $*" >&2; }

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[[ -x /bin/busybox ]] || missing+=(busybox-static)
((${#missing[@]})) || exit 0

if [[ $(id -u) != 0 ]]; then
  say "missing ${missing[*]}; as root: apt-get install --no-install-recommends ${missing[*]}"
  exit 1
fi
say "installing ${missing[*]} (apt-get)"
apt=(apt-get -qq -o DPkg::Lock::Timeout=300)
"${apt[@]}" update
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
