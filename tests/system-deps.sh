#!/usr/bin/env bash
# Install the Debian packages the test-suite needs, when they are missing. Idempotent: with
# everything present it does nothing (no apt-get update either).
#
#   prometheus               -> promtool (rule tests, check config, check metrics)
#   prometheus-alertmanager  -> amtool, prometheus-alertmanager (config check, routes, inhibition)
#   chromium chromium-driver -> headless browser test of the supervisor page
#   kcat jq                  -> the non-Python intake producer (tests/intake/nonpython/produce.sh)
#
# As root: installs what is missing. Otherwise: prints the command to run and exits 0 (the
# tests that need a missing tool then fail with the same hint; APPEALS_SKIP_SYSTEM_TOOLS=1
# skips them instead).
#
# The prometheus and alertmanager packages would start their daemons on :9090/:9093 where an
# init system runs; the tests start their own on free ports, so a policy-rc.d forbids service
# starts during the install (an existing policy-rc.d is restored afterwards, never deleted).
set -euo pipefail

PACKAGES=(prometheus prometheus-alertmanager chromium chromium-driver kcat jq)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "system-deps: all present (${PACKAGES[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]}"
  echo "system-deps: install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  exit 0
fi

policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
  backup="$(mktemp)"
  cp -p "$policy" "$backup"
fi
restore_policy() {
  if [ -n "$backup" ]; then
    cp -p "$backup" "$policy" && rm -f "$backup"
  else
    rm -f "$policy"
  fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# system-deps.sh: no service starts while installing test tools\nexit 101\n' >"$policy"
chmod 0755 "$policy"

# Daemons already running before we start are none of our business; note them.
before="$(pgrep -x 'prometheus|prometheus-aler|alertmanager' || true)"

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Belt and braces: stop a daemon the install started anyway (by pid, only new ones).
for pid in $(pgrep -x 'prometheus|prometheus-aler|alertmanager' || true); do
  if ! grep -qx "$pid" <<<"$before"; then
    echo "system-deps: stopping daemon started by the install (pid $pid)"
    kill "$pid" 2>/dev/null || true
  fi
done

for tool in promtool amtool prometheus-alertmanager kcat jq; do
  command -v "$tool" >/dev/null || { echo "system-deps: $tool still missing" >&2; exit 1; }
done
echo "system-deps: done"
