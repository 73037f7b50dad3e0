#!/usr/bin/env bash
# Installs what the packaging tests, the benches and `cargo xtask package`
# drive, when it is missing; does nothing when all is in place (a fraction
# of a second).
#
#   packaging/install-test-deps.sh [podman] [systemd-analyze] [kubernetes-validate]
#                                  [openapi-spec-validator] [strace] [man] [promtool]
#                                  [chromium] [bpftrace]
#
# Without arguments: all of them.
#   podman               podman and runc (apt; this machine's crun refuses its
#                        hybrid cgroup layout, so the tests run podman with
#                        --runtime runc)
#   systemd-analyze      the systemd package (apt), for `systemd-analyze verify`
#   kubernetes-validate  kubernetes-validate from PyPI, in a venv at
#                        $LISTNS_VENV (default ~/.local/share/listns/venv):
#                        it carries the Kubernetes schemas and runs offline
#   openapi-spec-validator  openapi-spec-validator from PyPI, in the same venv,
#                        for schema/openapi.json (the inventory API)
#   strace               strace (apt), to compare the system calls listns
#                        makes with the unit's SystemCallFilter=
#   man                  man-db (apt), to render the generated man pages
#   promtool             Debian's prometheus package (apt), whose promtool
#                        checks and unit-tests packaging/prometheus's rules
#   chromium             chromium and chromium-driver (apt): the web page's
#                        tests drive a headless browser over WebDriver
#   bpftrace             bpftrace (apt): the peer one-liner that
#                        `cargo xtask bench sustained` runs beside listns
#
# apt needs root; without it the script says what to install and fails.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
venv="${LISTNS_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/listns/venv}"

wanted=("$@")
((${#wanted[@]})) || wanted=(podman systemd-analyze kubernetes-validate openapi-spec-validator strace man promtool chromium bpftrace)

say() { echo "install-test-deps: $*" >&2; }

apt_missing=()
for w in "${wanted[@]}"; do
  case "$w" in
    podman)
      command -v podman >/dev/null 2>&1 || apt_missing+=(podman)
      command -v runc >/dev/null 2>&1 || apt_missing+=(runc)
      ;;
    systemd-analyze)
      command -v systemd-analyze >/dev/null 2>&1 || apt_missing+=(systemd)
      ;;
    strace)
      command -v strace >/dev/null 2>&1 || apt_missing+=(strace)
      ;;
    man)
      command -v man >/dev/null 2>&1 || apt_missing+=(man-db)
      ;;
    promtool)
      command -v promtool >/dev/null 2>&1 || apt_missing+=(prometheus)
      ;;
    chromium)
      command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
      command -v chromedriver >/dev/null 2>&1 || apt_missing+=(chromium-driver)
      ;;
    bpftrace)
      command -v bpftrace >/dev/null 2>&1 || apt_missing+=(bpftrace)
      ;;
    kubernetes-validate | openapi-spec-validator) ;;
    *)
      say "unknown component '$w' (podman, systemd-analyze, kubernetes-validate, openapi-spec-validator, strace, man, promtool, chromium, bpftrace)"
      exit 2
      ;;
  esac
done

if ((${#apt_missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    say "missing ${apt_missing[*]}; as root: apt-get install --no-install-recommends ${apt_missing[*]}"
    exit 1
  fi
  say "installing ${apt_missing[*]} (apt-get)"
  # Other apt users on the machine: wait for the lock instead of failing.
  apt=(apt-get -qq -o DPkg::Lock::Timeout=300)
  "${apt[@]}" update
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${apt_missing[@]}"
fi

# The PyPI tools, pinned, in one venv: each installed when its command is
# missing or reports another version.
pip_missing=()
for w in "${wanted[@]}"; do
  case "$w" in
    kubernetes-validate) version=$KUBERNETES_VALIDATE_VERSION ;;
    openapi-spec-validator) version=$OPENAPI_SPEC_VALIDATOR_VERSION ;;
    *) continue ;;
  esac
  if ! "$venv/bin/$w" --version 2>/dev/null | grep -qF "$version"; then
    pip_missing+=("$w==$version")
  fi
done
if ((${#pip_missing[@]})); then
  python=$(command -v python3) || { say "python3 is missing (needed for ${pip_missing[*]})"; exit 1; }
  # A venv whose python no longer runs (python3 upgraded) is made again.
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
  fi
  say "installing ${pip_missing[*]} into $venv (pip)"
  "$venv/bin/pip" install -q --disable-pip-version-check "${pip_missing[@]}"
  for p in "${pip_missing[@]}"; do
    "$venv/bin/${p%%==*}" --version >/dev/null
  done
fi
