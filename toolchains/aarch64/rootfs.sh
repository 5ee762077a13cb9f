#!/usr/bin/env bash
# Make (or reuse) the arm64 Debian root filesystem the aarch64 kernels are built against and tested in.
#
#   toolchains/aarch64/rootfs.sh                 # create $EDGE_AARCH64_ROOT (default /var/cache/edge/aarch64/rootfs)
#   toolchains/aarch64/rootfs.sh --fresh         # throw the cached root away and make a new one (the "cold" run)
#   toolchains/aarch64/rootfs.sh [--fresh] --phase=unpack    # the two halves, so that the slow one can overlap
#   toolchains/aarch64/rootfs.sh --phase=configure           # the cross build (see .ci/aarch64)
#
# The root is Debian bookworm minbase with python3 and libpython3.11-dev (the target's headers and sysconfig).
# Debian's numpy is 1.24 and the project needs numpy 2, so the Python packages come as aarch64 wheels from PyPI,
# installed from the host with pip's --platform options into /usr/local/lib/python3.11/dist-packages: nothing is
# pip-installed under emulation (slow, and it would need the host's CA bundle inside the root).
#
# Phases. "unpack" (host-side, ~30 s): debootstrap --foreign (download and unpack), the wheels, and the target's
# Python headers and sysconfig unpacked from their .debs, which is everything build.sh needs. "configure" (~4 min,
# almost all of the cold time): debootstrap's second stage, dpkg and maintainer scripts running as arm64 code under
# qemu; only the tests need it. Each phase does nothing when the root is already complete.
# Needs root, debootstrap, and binfmt_misc with qemu-aarch64 registered (the second stage runs arm64 code).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The .debs whose files the cross build reads (headers, pyconfig.h, _sysconfigdata), unpacked early for build.sh.
BUILD_DEBS=(libpython3.11-dev libpython3.11-minimal)
WHEELS_STAMP=$ROOTFS/.edge-rootfs-wheels   # the requirement list the installed wheels were made from

# Project runtime dependencies from pyproject.toml (one place to change them), plus the test runner.
target_requirements() {
    "$HOST_PYTHON" - "$REPO/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
    tr ' ' '\n' <<<"$TARGET_EXTRA_WHEELS"
}

remove_root() {
    [[ -e $ROOTFS ]] || return 0
    [[ -z $(mounts_under "$ROOTFS") ]] || die "refusing to delete $ROOTFS: something is still mounted under it"
    log "removing the old root $ROOTFS"
    rm -rf --one-file-system "$ROOTFS"
}

debootstrap_first_stage() {
    log "debootstrap --foreign $TARGET_SUITE/$TARGET_DEB_ARCH (minbase) into $ROOTFS"
    mkdir -p "$(dirname "$ROOTFS")"
    debootstrap --foreign --arch="$TARGET_DEB_ARCH" --variant=minbase --include="$TARGET_DEB_PACKAGES" \
        "$TARGET_SUITE" "$ROOTFS" "$TARGET_MIRROR"
}

# dpkg-deb -x of the build's .debs from debootstrap's download cache. The second stage unpacks the same files again
# (dpkg replaces files no package owns yet), so the finished root is exactly what debootstrap alone would make.
unpack_build_headers() {
    local pkg deb
    for pkg in "${BUILD_DEBS[@]}"; do
        deb=$(compgen -G "$ROOTFS/var/cache/apt/archives/${pkg}_*_$TARGET_DEB_ARCH.deb" | head -n 1) \
            || die "debootstrap did not download $pkg (is it in TARGET_DEB_PACKAGES' dependencies?)"
        dpkg-deb -x "$deb" "$ROOTFS"
    done
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
    rm -rf "${ROOTFS:?}$TARGET_SITE/bin"
    target_requirements >"$WHEELS_STAMP"
}

phase_unpack() {
    local fresh=$1
    if [[ $fresh == 0 && -e $ROOT_READY ]]; then
        log "reusing $ROOTFS (rootfs.sh --fresh rebuilds it)"
        # a cached root follows pyproject.toml / toolchain.env: new requirements, new wheels (host-side, seconds)
        [[ $(target_requirements) == "$(cat "$WHEELS_STAMP" 2>/dev/null)" ]] || install_wheels
        return
    fi
    remove_root
    debootstrap_first_stage
    unpack_build_headers
    install_wheels
    touch "$ROOT_UNPACKED"
}

phase_configure() {
    [[ -e $ROOT_READY ]] && return
    [[ -e $ROOT_UNPACKED ]] || die "$ROOTFS is not unpacked; run rootfs.sh --phase=unpack first"
    log "debootstrap --second-stage under qemu (the slow part)"
    chroot "$ROOTFS" /debootstrap/debootstrap --second-stage
    rm -f "$ROOTFS"/var/cache/apt/archives/*.deb   # only the installed packages are needed, not the downloads
    touch "$ROOT_READY"
    log "root ready: $ROOTFS"
}

main() {
    local fresh=0 phase=all arg
    for arg in "$@"; do
        case $arg in
            --fresh) fresh=1 ;;
            --phase=unpack | --phase=configure | --phase=all) phase=${arg#--phase=} ;;
            *) die "usage: rootfs.sh [--fresh] [--phase=unpack|configure|all]" ;;
        esac
    done
    require_root
    unmount_on_exit   # the second stage mounts /proc and /sys in the root; never leave them behind on failure
    unmount_all
    case $phase in
        unpack) phase_unpack "$fresh" ;;
        configure) phase_configure ;;
        all)
            phase_unpack "$fresh"
            phase_configure
            ;;
    esac
}

main "$@"
