#!/usr/bin/env bash
# Cross-build every native/*.pyx kernel for aarch64 into a staging copy of the package, without running the
# target interpreter.
#
#   toolchains/aarch64/build.sh        # -> build/aarch64/stage/edge/ (Python sources + aarch64 edge/_native/*.so)
#
# Cython runs on the host (its C output is target-neutral); setup.py's build_ext then compiles with
# aarch64-linux-gnu-gcc. setuptools is pointed at the target's sysconfig (extension suffix, platform tag,
# compiler flags) by _PYTHON_SYSCONFIGDATA_NAME / _PYTHON_HOST_PLATFORM, and the target's Python and numpy
# headers are put first on the include path (setup.py adds the host's, which must lose). The host's own x86
# modules in edge/_native/ are never touched: build_ext writes to --build-lib, not --inplace.
# Needs the root filesystem from rootfs.sh (it holds the target's headers, sysconfig and numpy).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SYSCONFIG_DIR=$WORK/sysconfig   # only the target's _sysconfigdata module: the host must not import its stdlib
SRC=$WORK/src                   # a copy of just what setup.py needs (see copy_sources)

target_numpy_include() {
    local inc
    for inc in "$ROOTFS$TARGET_SITE/numpy/_core/include" "$ROOTFS$TARGET_SITE/numpy/core/include"; do
        [[ -f $inc/numpy/ndarrayobject.h ]] && { echo "$inc"; return; }
    done
    die "no numpy headers in the root ($ROOTFS$TARGET_SITE/numpy); run toolchains/aarch64/rootfs.sh"
}

check_prerequisites() {
    [[ -e $ROOT_UNPACKED ]] || die "no root filesystem at $ROOTFS; run toolchains/aarch64/rootfs.sh"
    command -v "$TARGET_CC" >/dev/null || die "$TARGET_CC not found (apt-get install gcc-$TARGET_TRIPLE libc6-dev-arm64-cross)"
    [[ -f $ROOTFS/usr/include/$TARGET_PYTHON/Python.h ]] \
        || die "no target Python headers in $ROOTFS; run toolchains/aarch64/rootfs.sh"
    local data=$ROOTFS/usr/lib/$TARGET_PYTHON/$TARGET_SYSCONFIGDATA.py
    [[ -f $data ]] || die "no target sysconfig ($data); run toolchains/aarch64/rootfs.sh"
    mkdir -p "$SYSCONFIG_DIR"
    cp "$data" "$SYSCONFIG_DIR/"
}

# A host venv with exactly the project's build requirements (setuptools>=70, Cython, numpy 2); made once, reused.
ensure_build_env() {
    local stamp=$BUILD_VENV/.requires want
    want=$("$HOST_PYTHON" -c 'import sys, tomllib; print(*tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"], sep="\n")' \
        "$REPO/pyproject.toml")
    if [[ -x $BUILD_VENV/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        return
    fi
    log "making the host build venv $BUILD_VENV: $(tr '\n' ' ' <<<"$want")"
    rm -rf "$BUILD_VENV"
    local requires
    mapfile -t requires <<<"$want"
    python3 -m venv "$BUILD_VENV"
    "$BUILD_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${requires[@]}" \
        || die "could not install the build requirements into $BUILD_VENV"
    echo "$want" >"$stamp"
}

# setup.py runs in a minimal copy of the sources, not the checkout: its package discovery walks the whole tree
# (following symlinks), and a checkout can hold venvs, build trees or a root filesystem with /proc mounted.
# cp -p keeps modification times, so Cython regenerates C only when a .pyx really changed (its C lives in $SRC/build).
copy_sources() {
    mkdir -p "$SRC"
    rm -rf "${SRC:?}/edge" "$SRC/native"
    (cd "$REPO" && cp -p --parents setup.py pyproject.toml README.md -t "$SRC" && cp -rp edge native -t "$SRC")
    find "$SRC/edge" \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +
}

cross_build() {
    local numpy_inc cflags
    numpy_inc=$(target_numpy_include)
    # Debian's /usr/include/python3.11/pyconfig.h includes <aarch64-linux-gnu/python3.11/pyconfig.h>, hence the
    # root's /usr/include — searched *after* the cross toolchain's own libc headers (-idirafter), not before.
    cflags="-I$ROOTFS/usr/include/$TARGET_PYTHON -I$ROOTFS/usr/include/$TARGET_TRIPLE/$TARGET_PYTHON -I$numpy_inc"
    cflags+=" -idirafter $ROOTFS/usr/include"
    log "cross-compiling native/*.pyx with $TARGET_CC (numpy headers: ${numpy_inc#"$ROOTFS"})"
    rm -rf "$STAGE" "$WORK/temp"
    (
        cd "$SRC"
        env EDGE_REQUIRE_NATIVE=1 \
            PYTHONPATH="$SYSCONFIG_DIR" \
            _PYTHON_HOST_PLATFORM="$TARGET_HOST_PLATFORM" \
            _PYTHON_SYSCONFIGDATA_NAME="$TARGET_SYSCONFIGDATA" \
            CC="$TARGET_CC" LDSHARED="$TARGET_LDSHARED" CFLAGS="$cflags" LDFLAGS="" CPPFLAGS="" \
            "$BUILD_VENV/bin/python" setup.py --quiet build_ext --build-lib "$STAGE" --build-temp "$WORK/temp" --parallel 2
    )
}

# The staged package = the Python sources of edge/ + the aarch64 modules just built (no host .so, no caches).
stage_python_sources() {
    (cd "$SRC" && find edge -name '*.py' -print0 | xargs -0 cp --parents -t "$STAGE")
}

# Every .pyx must have produced an aarch64 ELF module with the target's extension suffix (except the x86-64-only
# builds for a wider instruction set, native/*_avx2.pyx, which setup.py leaves out for this target).
check_modules() {
    local pyx so machine missing=0
    for pyx in "$SRC"/native/*.pyx; do
        [[ $pyx == *_avx2.pyx ]] && continue
        so=$(compgen -G "$STAGE/edge/_native/$(basename "$pyx" .pyx).cpython-*-$TARGET_TRIPLE.so" || true)
        if [[ -z $so ]]; then
            log "missing module for $(basename "$pyx")"; missing=1; continue
        fi
        # e_machine: 2 bytes, little endian, at offset 18 of the ELF header
        machine=$(od -An -tu2 -j18 -N2 "$so" | tr -d ' ')
        [[ $machine == "$TARGET_ELF_MACHINE" ]] || { log "$so is not $TARGET_TRIPLE code (e_machine $machine)"; missing=1; }
    done
    [[ $missing -eq 0 ]] || die "cross build incomplete"
    log "built: $(cd "$STAGE" && echo edge/_native/*.so)"
}

main() {
    check_prerequisites
    ensure_build_env
    copy_sources
    cross_build
    stage_python_sources
    check_modules
}

main "$@"
