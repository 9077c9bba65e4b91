#!/usr/bin/env bash
# Installs what `make test` needs beyond Go: systemd's own checkers
# (systemd-analyze, systemd-sysusers, systemd-tmpfiles), which the tests of
# deploy/ run against the unit. Debian package: systemd.
set -euo pipefail

missing=()
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "test-deps: installing systemd for ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo=sudo
fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
