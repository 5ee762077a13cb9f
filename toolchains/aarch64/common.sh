# shellcheck shell=bash
# Shared helpers for the aarch64 scripts (sourced, not run). Paths, logging and mount handling live here so that
# every script agrees on where the root filesystem is and how to tear its mounts down.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=toolchains/aarch64/toolchain.env
source "$HERE/toolchain.env"

# Generated files: the staged package, the build venv and scratch space under build/aarch64 (ignored by git); the
# root filesystem (~400 MB, reused between runs) outside the repo by default, because setup.py's package discovery
# (pyproject's packages.find, namespaces on) walks the whole source tree following symlinks: a root inside it makes
# every host build crawl 20k files, and through a mounted /proc it never ends. EDGE_AARCH64_ROOT moves it (CI cache).
WORK=${EDGE_AARCH64_WORK:-$REPO/build/aarch64}
ROOTFS=${EDGE_AARCH64_ROOT:-/var/cache/edge/aarch64/rootfs}
if [[ $(realpath -m "$ROOTFS") == / ]]; then
    echo "EDGE_AARCH64_ROOT must not be /" >&2
    exit 1
fi
STAGE=$WORK/stage
ROOT_READY=$ROOTFS/.edge-rootfs-ready        # written last by rootfs.sh: the root is complete
ROOT_UNPACKED=$ROOTFS/.edge-rootfs-unpacked  # rootfs.sh's first phase is done: enough for build.sh
# The host interpreter for host-side helpers (pip --target for the root's wheels, reading pyproject.toml, reports):
# the repo's venv when present, else python3. Cython and setuptools run in build.sh's own venv ($BUILD_VENV), made
# from pyproject.toml's [build-system] requires, because `pip install -e .` keeps those in an isolated env.
HOST_PYTHON=${EDGE_HOST_PYTHON:-$REPO/.venv/bin/python}
[[ -x $HOST_PYTHON ]] || HOST_PYTHON=python3
BUILD_VENV=$WORK/host-venv

log() { printf '[aarch64 %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Mount points under $1, deepest first (so nested mounts come off before their parents).
mounts_under() {
    local root
    root=$(realpath -m "$1")
    awk -v root="$root" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

# Unmount everything under the root filesystem. Safe to call twice and from a trap; a busy mount is detached
# lazily rather than left behind, because a stale /dev bind under build/ is dangerous to `rm -rf`.
unmount_all() {
    local mp
    for mp in $(mounts_under "$ROOTFS"); do
        umount "$mp" 2>/dev/null || umount -l "$mp" || log "WARNING: could not unmount $mp"
    done
}

# Unmount on every way out: normal exit, error (set -e), Ctrl-C, or CI killing the job (bash runs no EXIT trap
# for a signal it does not handle, hence the INT/TERM/HUP traps that turn the signal into an exit).
unmount_on_exit() {
    trap unmount_all EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot and mount do)"
}
