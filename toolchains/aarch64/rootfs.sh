#!/usr/bin/env bash
# Make (or reuse) the arm64 Debian root filesystem the aarch64 kernels are built against and tested in.
#
#   toolchains/aarch64/rootfs.sh            # create $EDGE_AARCH64_ROOT (default build/aarch64/rootfs) if missing
#   toolchains/aarch64/rootfs.sh --fresh    # throw the cached root away and make a new one (the "cold" run)
#
# The root is Debian bookworm minbase with python3 and libpython3.11-dev (the target's headers and sysconfig).
# Debian's numpy is 1.24 and the project needs numpy 2, so the Python packages come as aarch64 wheels from PyPI,
# installed from the host with pip's --platform options into /usr/local/lib/python3.11/dist-packages: nothing is
# pip-installed under emulation (slow, and it would need the host's CA bundle inside the root).
# Needs root, debootstrap, and binfmt_misc with qemu-aarch64 registered (debootstrap's second stage runs arm64 code).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MARKER=.edge-rootfs-ready   # written last: a root without it is a half-made one and is rebuilt

# Project runtime dependencies from pyproject.toml (one place to change them), plus the test runner.
target_requirements() {
    "$HOST_PYTHON" - "$REPO/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
    tr ' ' '\n' <<<"$TARGET_EXTRA_WHEELS"
}

debootstrap_root() {
    log "debootstrap $TARGET_SUITE/$TARGET_DEB_ARCH (minbase) into $ROOTFS"
    mkdir -p "$(dirname "$ROOTFS")"
    debootstrap --arch="$TARGET_DEB_ARCH" --variant=minbase --include="$TARGET_DEB_PACKAGES" \
        "$TARGET_SUITE" "$ROOTFS" "$TARGET_MIRROR"
    # Only the packages are needed, not the downloaded .debs.
    rm -f "$ROOTFS"/var/cache/apt/archives/*.deb
}

install_wheels() {
    local platforms=() p
    for p in $TARGET_WHEEL_PLATFORMS; do platforms+=(--platform "$p"); done
    log "installing aarch64 wheels into $TARGET_SITE: $(target_requirements | tr '\n' ' ')"
    "$HOST_PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
        --target "$ROOTFS$TARGET_SITE" --upgrade \
        "${platforms[@]}" --python-version "$TARGET_PY_VERSION" --implementation cp --abi "$TARGET_PY_ABI" \
        --only-binary=:all: -r <(target_requirements)
    # pip --target writes console scripts with the host interpreter in their #! line: useless in the root.
    rm -rf "$ROOTFS$TARGET_SITE/bin"
}

main() {
    require_root
    [[ ${1:-} == --fresh || ${1:-} == "" ]] || die "usage: rootfs.sh [--fresh]"
    unmount_on_exit   # debootstrap mounts /proc and /sys in the root; never leave them behind on failure
    unmount_all
    if [[ ${1:-} == --fresh || ! -e $ROOTFS/$MARKER ]]; then
        if [[ -e $ROOTFS ]]; then
            [[ -z $(mounts_under "$ROOTFS") ]] || die "refusing to delete $ROOTFS: something is still mounted under it"
            log "removing the old root $ROOTFS"
            rm -rf --one-file-system "$ROOTFS"
        fi
        debootstrap_root
        install_wheels
        touch "$ROOTFS/$MARKER"
    else
        log "reusing $ROOTFS (rootfs.sh --fresh rebuilds it)"
    fi
}

main "$@"
