#!/usr/bin/env bash
# Installs Debian's prometheus (the real server the metrics test scrapes
# with) when it is missing; does nothing when it is there. No service is
# started: the test runs it by hand on a port of its own.
set -euo pipefail
command -v prometheus >/dev/null 2>&1 && exit 0
if [[ $(id -u) != 0 ]]; then
  echo "install-prometheus: prometheus missing; as root: apt-get install --no-install-recommends prometheus" >&2
  exit 1
fi
echo "install-prometheus: installing prometheus (apt-get)" >&2
apt=(apt-get -qq -o DPkg::Lock::Timeout=300)
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" install -y --no-install-recommends prometheus >/dev/null 2>&1 \
  || { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends prometheus >/dev/null; }
# The package may start a service where PID 1 is systemd; the test needs none.
command -v prometheus >/dev/null
