#!/bin/sh
# The Debian packages the test suite drives as real programs, installed when missing (the README's test line runs this
# first). Today: headless Chromium, which opens the collector's dashboard in tests/collector/test_http.py, and
# PostgreSQL, whose initdb/pg_ctl start a throw-away server for the collector's store tests (tests/collector/pg_cluster.py), and
# nats-server, started with JetStream by the fleet tests (tests/collector/nats_server.py).
#
#   sh tests/system-packages.sh          # installs what is missing (needs root, or sudo), else does nothing
#
# Exit status: 0 when every package is there afterwards; 1 when one is missing and cannot be installed (the reason is
# printed). The tests never skip for a missing program: they fail and name this script.
set -eu

PACKAGES="chromium postgresql nats-server"

missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "tests/system-packages.sh: missing:$missing — this machine has no apt-get; install them with its package manager" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "tests/system-packages.sh: missing:$missing — run this script as root (or install sudo) to install them" >&2
    exit 1
fi

echo "tests/system-packages.sh: installing$missing (Debian packages)" >&2
$as_root apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
