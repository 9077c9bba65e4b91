#!/usr/bin/env bash
# Installs what `make bench-time` needs beyond Go: chronyd, the NTP server
# that clockd's NTP server is compared with. Debian package: chrony.
set -euo pipefail

if command -v chronyd >/dev/null 2>&1 || [ -x /usr/sbin/chronyd ]; then
	exit 0
fi
echo "bench-deps: installing chrony for chronyd" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo=sudo
fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chrony >/dev/null
