#!/usr/bin/env bash
# Replace the CPU onnxruntime from PyPI with NVIDIA's onnxruntime-gpu build for this Jetson (TensorRT + CUDA providers).
# PyPI carries no aarch64 onnxruntime-gpu wheel; NVIDIA's Jetson AI Lab index does (JetPack 6), and the Jetson Zoo
# lists wheels for JetPack 5. Run it on the Jetson, in the venv that runs edge:
#
#   toolchains/jetson/install-onnxruntime-gpu.sh                # JetPack 6: from the Jetson AI Lab index
#   toolchains/jetson/install-onnxruntime-gpu.sh WHEEL_OR_URL   # any JetPack: a wheel you downloaded or its URL
#
# EDGE_ORT_GPU_INDEX overrides the index (it has moved before: pypi.jetson-ai-lab.dev -> pypi.jetson-ai-lab.io).
# Afterwards `python toolchains/jetson/check.py` proves the TensorRT and CUDA paths on this module.
set -euo pipefail

PY=${PYTHON:-python3}
release=$(head -n1 /etc/nv_tegra_release 2>/dev/null || true)   # e.g. "# R36 (release), REVISION: 4.0, ..."
l4t=$(sed -n 's/^# R\([0-9]*\).*/\1/p' <<<"$release")
echo "L4T: ${release:-not a Jetson (no /etc/nv_tegra_release)}"

if [[ $# -ge 1 ]]; then
    source=("$1")
elif [[ "$l4t" == 36 ]]; then                                     # JetPack 6.x (CUDA 12.6)
    index=${EDGE_ORT_GPU_INDEX:-https://pypi.jetson-ai-lab.io/jp6/cu126}
    source=(onnxruntime-gpu --index-url "$index" --extra-index-url https://pypi.org/simple)
else
    echo "No index known for L4T R${l4t:-?}. For JetPack 5 download the onnxruntime-gpu wheel that matches your" >&2
    echo "JetPack and Python from the Jetson Zoo (https://elinux.org/Jetson_Zoo#ONNX_Runtime) and pass its path." >&2
    exit 2
fi

# Both distributions install the same `onnxruntime` module: remove the CPU one first or they overwrite each other.
"$PY" -m pip uninstall -y onnxruntime || true
"$PY" -m pip install "${source[@]}"
"$PY" - <<'PYEOF'
import onnxruntime
have = onnxruntime.get_available_providers()
print("onnxruntime", onnxruntime.__version__, "providers:", ", ".join(have))
missing = {"TensorrtExecutionProvider", "CUDAExecutionProvider"} - set(have)
raise SystemExit(f"missing {', '.join(sorted(missing))}: check JetPack/CUDA/TensorRT versions" if missing else 0)
PYEOF
