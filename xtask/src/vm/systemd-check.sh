#!/bin/bash
# The checks of `cargo xtask integration-test systemd`, run in the guest by
# listns-check.service once the system is up (see systemd.rs). Each check
# prints one line on the serial console:
#   LISTNS-CHECK PASS|FAIL NAME: DETAIL
# then `LISTNS-CHECK DONE` and the guest powers off. Expected values come
# from /usr/local/lib/listns-check/expect.env, written by xtask.
set -u
exec >/dev/ttyS0 2>&1
. /usr/local/lib/listns-check/expect.env
W=/run/listns-check
mkdir -p "$W"

say() { echo "LISTNS-CHECK $1 $2: $3"; }
check() { # NAME DETAIL COMMAND...: PASS when COMMAND succeeds
  local name=$1 detail=$2
  shift 2
  if "$@"; then say PASS "$name" "$detail"; else say FAIL "$name" "$detail"; fi
}
# Runs a command with its output thrown away (a redirection after `check`
# would throw away the check's own line).
quiet() { "$@" >/dev/null 2>&1; }
# The (type, inode) pairs of a `listns -J` document, one per line, sorted.
keys() { jq -r '.namespaces[] | "\(.type) \(.ns)"' "$1" | sort -u; }
# Waits up to $1 seconds for a command to succeed.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}
finish() {
  echo "LISTNS-CHECK DONE"
  systemctl poweroff --no-block
  exit 0
}

say INFO kernel "$(uname -r), $(systemctl --version | head -1)"

# The release as a user installs it, with no cargo or Rust here: the
# tarball of `cargo xtask dist`, its static binary, man page and unit.
mkdir -p "$W/dist"
if tar -xzf /root/listns-dist.tar.gz -C "$W/dist" --strip-components=1 &&
  install -m 0755 "$W/dist/listns" /usr/local/bin/listns &&
  install -D -m 0644 "$W/dist/man/man1/listns.1" /usr/local/share/man/man1/listns.1 &&
  install -m 0644 "$W/dist/systemd/listns.service" /etc/systemd/system/listns.service &&
  systemctl daemon-reload; then
  check install "the release tarball: $(listns --version 2>&1), static, no cargo in the guest" \
    sh -c '! command -v cargo >/dev/null && { ldd /usr/local/bin/listns 2>&1 || true; } |
      grep -Eq "statically linked|not a dynamic executable" && listns --version >/dev/null'
else
  say FAIL install "unpacking and installing the release tarball failed"
  finish
fi

# The held state: one namespace of every kind the scan finds, each held by
# nothing else (listns-held, the same as the coverage test's).
mkfifo "$W/held.in"
listns-held <"$W/held.in" >"$W/held.json" 2>"$W/held.err" &
exec 9>"$W/held.in"
if ! wait_for 30 test -s "$W/held.json"; then
  say FAIL held "listns-held: $(head -c 300 "$W/held.err")"
  finish
fi
jq -r '.cases[] | "\(.type) \(.ns)"' "$W/held.json" | sort -u >"$W/held.keys"
say PASS held "$(wc -l <"$W/held.keys") namespaces held: $(jq -r '[.cases[].what] | join("; ")' "$W/held.json")"

# The service, started as users do.
t0=$(date +%s.%N)
if systemctl start listns; then
  check start "systemctl start listns" true
else
  say FAIL start "systemctl start listns: $(systemctl status --no-pager -l listns 2>&1 | tail -5 | tr '\n' '|')"
fi
healthy() { [ "$(curl -s -m 5 -o "$W/healthz" -w '%{http_code}' http://127.0.0.1:9433/healthz)" = 200 ]; }
wait_for 120 healthy
t1=$(date +%s.%N)
if ! healthy; then
  # What it is doing, for the console log.
  systemctl status --no-pager -l listns 2>&1 | tail -15 | sed 's/^/LISTNS-CHECK INFO status: /'
  journalctl -u listns -o cat --no-pager 2>&1 | grep -v '^{' | tail -25 | sed 's/^/LISTNS-CHECK INFO journal: /'
fi
check active "$(systemctl is-active listns)" test "$(systemctl is-active listns)" = active
check healthz "/healthz 200 after $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s; it says: $(head -c 200 "$W/healthz" | tr '\n' ' ')" healthy
curl -s -m 10 http://127.0.0.1:9433/metrics >"$W/metrics"
check metrics "$(grep -c '^listns_' "$W/metrics") listns_ samples; $(grep '^listns_hook_attached' "$W/metrics" | grep -c ' 1$') hooks attached" \
  grep -q '^listns_build_info' "$W/metrics"

# Root's own scan, the service's inventory through the API socket, root's
# scan again: what root lists both times, the service lists too.
listns -J >"$W/root1.json" 2>"$W/root1.err"
check root-scan "listns -J as root: $(jq '.namespaces | length' "$W/root1.json") namespaces; $(head -c 300 "$W/root1.err" | tr '\n' ' ')" \
  quiet jq -e '.namespaces | length > 0' "$W/root1.json"
listns --from -J >"$W/from.json" 2>"$W/from.err"
check api "listns --from -J (/run/listns/api.sock): $(jq '.namespaces | length' "$W/from.json" 2>/dev/null) namespaces; $(head -c 300 "$W/from.err" | tr '\n' ' ')" \
  quiet jq -e '.namespaces | length > 0' "$W/from.json"
listns -J >"$W/root2.json" 2>/dev/null
comm -12 <(keys "$W/root1.json") <(keys "$W/root2.json") >"$W/root.keys"
missing_root=$(comm -23 "$W/held.keys" "$W/root.keys" | tr '\n' ' ')
check held-by-root "root lists every held case${missing_root:+; misses $missing_root}" test -z "$missing_root"
keys "$W/from.json" >"$W/from.keys"
missing=$(comm -23 "$W/root.keys" "$W/from.keys" | tr '\n' ' ')
check coverage "the service lists all $(wc -l <"$W/root.keys") namespaces root lists${missing:+; misses $missing}" \
  test -s "$W/root.keys" -a -z "$missing"
missing_held=$(comm -23 "$W/held.keys" "$W/from.keys" | tr '\n' ' ')
check coverage-held "the service lists every held case${missing_held:+; misses $missing_held}" test -z "$missing_held"

# Its credentials: a dynamic user, no new privileges, and exactly the
# intended capabilities (after attaching, the loop keeps only what it uses).
pid=$(systemctl show --property=MainPID --value listns)
field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
check uid "Uid $(field Uid), NoNewPrivs $(field NoNewPrivs), Seccomp $(field Seccomp)" \
  test "$(field Uid)" != 0 -a "$(field NoNewPrivs)" = 1 -a "$(field Seccomp)" = 2
for f in CapEff CapPrm CapAmb CapInh CapBnd; do
  want=${!f}
  check "$f" "$(field "$f") (want $want)" test "$(field "$f")" = "$want"
done

# The start-up notes are in the journal.
journalctl -u listns -o cat --no-pager >"$W/journal" 2>&1
notes=$(grep -c '^listns: ' "$W/journal")
check journal "$notes start-up notes; e.g. $(grep -m1 '^listns: liveness' "$W/journal" | cut -c1-90)" \
  grep -q '^listns: liveness by' "$W/journal"
check no-tracer-error "no 'cannot start the tracer' in the journal" bash -c "! grep -q 'cannot start the tracer' '$W/journal'"

# systemctl stop: a clean exit, and every program it held is unloaded.
progs=$(cat /proc/"$pid"/fdinfo/* 2>/dev/null | awk '$1 == "prog_id:" { print $2 }' | sort -u)
systemctl stop listns
check stop "$(systemctl show --property=Result --property=ExecMainStatus listns | tr '\n' ' ')" \
  test "$(systemctl show --property=ExecMainStatus --value listns)" = 0
loaded() {
  local left=
  for id in $progs; do bpftool prog show id "$id" >/dev/null 2>&1 && left="$left $id"; done
  echo "$left"
}
unloaded() { [ -z "$(loaded)" ]; }
wait_for 10 unloaded
check bpf-unloaded "$(echo $progs | wc -w) programs held while running; still loaded after stop:$(loaded)" \
  test -n "$progs" -a -z "$(loaded)"

# systemd's own rating of the unit's sandbox.
score=$(systemd-analyze security --no-pager listns 2>/dev/null | sed -n 's/.*Overall exposure level for listns.service: //p')
check security "systemd-analyze security listns: $score" test -n "$score"

exec 9>&-
wait
finish
