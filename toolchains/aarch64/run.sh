#!/usr/bin/env bash
# Run the kernel parity tests and the ONNX Runtime smoke test inside the arm64 root, under qemu-user.
#
#   toolchains/aarch64/run.sh [TEST_PATH ...]     # default: tests/kernels tests/aarch64 (missing paths are skipped)
#
# The staged package from build.sh (aarch64 modules) and the repo's tests/ are copied into /opt/edge in the root,
# /proc is mounted (and /dev bound if the root has no device nodes), and pytest runs there through chroot; the kernel
# binary-format handler (binfmt_misc + qemu-aarch64) makes the arm64 python3 run on this x86_64 host. /sys is left
# out on purpose: onnxruntime's CPU probing segfaults under qemu when it sees the host's /sys. Mounts come off on
# exit, whatever happens. Prints PASS/FAIL/SKIP per test; exits non-zero if any test failed or nothing ran.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEFAULT_PATHS=(tests/kernels tests/aarch64)
ORT_SMOKE=tests/aarch64/test_ort_smoke.py
TARGET_SRC=/opt/edge          # inside the root
RESULTS=$WORK/results         # on the host: junit XML of the last run

# Test paths that exist in the repo; the missing ones are named, not silently dropped.
existing_paths() {
    local p
    for p in "$@"; do
        if [[ -e $REPO/$p ]]; then echo "$p"; else log "skipping missing test path: $p"; fi
    done
}

check_prerequisites() {
    [[ -e $ROOT_READY ]] || die "no complete root filesystem at $ROOTFS; run toolchains/aarch64/rootfs.sh"
    compgen -G "$STAGE/edge/_native/*.so" >/dev/null || die "no staged aarch64 modules in $STAGE; run toolchains/aarch64/build.sh"
    [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] \
        || die "binfmt_misc has no qemu-aarch64 handler (mount binfmt_misc; update-binfmts --import qemu-aarch64)"
}

# A fresh copy every run: the staged package (never the host's x86 modules), the tests, the pytest settings.
copy_in() {
    local dst=$ROOTFS$TARGET_SRC
    rm -rf "$dst"
    mkdir -p "$dst" "$dst/results"
    cp -a "$STAGE/edge" "$REPO/tests" "$REPO/pyproject.toml" "$dst/"
    find "$dst" -name __pycache__ -type d -prune -exec rm -rf {} +
    chmod 1777 "$ROOTFS/tmp"
}

mount_pseudo_filesystems() {
    mount -t proc proc "$ROOTFS/proc"
    if [[ ! -c $ROOTFS/dev/null ]]; then   # debootstrap inside a container cannot mknod: borrow the host's /dev
        mount --bind /dev "$ROOTFS/dev"
    fi
}

# Run a command with the target's python3 inside the root, in a clean environment.
in_root() {
    chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
        PYTHONDONTWRITEBYTECODE=1 EDGE_REQUIRE_ORT=1 /bin/sh -c "cd $TARGET_SRC && exec \"\$@\"" sh "$@"
}

# Refuse to test anything but the cross-built kernels on an arm64 interpreter.
preflight() {
    in_root python3 -c '
import platform, sys
import numpy, onnxruntime
import edge.kernels as k
assert platform.machine() == "aarch64", platform.machine()
assert k.BACKEND == "native", "compiled kernels did not load: " + k.BACKEND
print(f"target: {platform.machine()} python {platform.python_version()} numpy {numpy.__version__} "
      f"onnxruntime {onnxruntime.__version__} kernels {k.BACKEND}")
'
}

# pytest in the root; $1 names the run (and its junit file), the rest are pytest arguments.
run_pytest() {
    local name=$1; shift
    log "pytest ($name): $*"
    local rc=0
    # hypothesis is installed (a shared conftest may import it) but its pytest plugin costs ~6 s of start-up per
    # session under emulation, and the kernel parity tests are plain seeded parametrizations.
    in_root python3 -m pytest -v -p no:cacheprovider -p no:hypothesispytest --junitxml="results/$name.xml" "$@" || rc=$?
    cp "$ROOTFS$TARGET_SRC/results/$name.xml" "$RESULTS/" 2>/dev/null || true
    # 5 = no tests collected: a stage that ran nothing has not passed
    return "$rc"
}

# One line per test from the junit files: PASS/FAIL/SKIP and the test id.
report() {
    "$HOST_PYTHON" - "$RESULTS"/*.xml <<'PY'
import sys, xml.etree.ElementTree as ET
totals = {"PASS": 0, "FAIL": 0, "SKIP": 0}
print("\naarch64 test results (under qemu-user):")
for path in sys.argv[1:]:
    for case in ET.parse(path).iter("testcase"):
        kinds = {child.tag for child in case}
        verdict = "FAIL" if kinds & {"failure", "error"} else "SKIP" if "skipped" in kinds else "PASS"
        totals[verdict] += 1
        print(f"  {verdict}  {case.get('classname')}::{case.get('name')}")
print("  " + ", ".join(f"{v} {k.lower()}" for k, v in totals.items()))
PY
}

main() {
    require_root
    check_prerequisites
    local paths
    mapfile -t paths < <(existing_paths "${@:-${DEFAULT_PATHS[@]}}")
    [[ ${#paths[@]} -gt 0 ]] || die "none of the test paths exist: ${*:-${DEFAULT_PATHS[*]}}"

    unmount_on_exit
    unmount_all                      # leftovers of a run that was killed before its trap could run
    copy_in
    mount_pseudo_filesystems
    rm -rf "$RESULTS"; mkdir -p "$RESULTS"
    preflight

    local parity_rc=0 ort_rc=0
    run_pytest parity --ignore="$ORT_SMOKE" "${paths[@]}" || parity_rc=$?
    run_pytest ort-smoke "$ORT_SMOKE" || ort_rc=$?
    report
    log "parity tests: $( ((parity_rc == 0)) && echo passed || echo "FAILED (pytest exit $parity_rc)")"
    log "onnxruntime smoke test: $( ((ort_rc == 0)) && echo passed || echo "FAILED (pytest exit $ort_rc)")"
    ((parity_rc == 0 && ort_rc == 0))
}

main "$@"
