"""The machine block: CPU model and int8 features parsed from /proc/cpuinfo texts of x86 and ARM machines."""

from __future__ import annotations

import json

from edge.models.machine import cpu_info, format_features, machine_block, parse_cpuinfo

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma avx512f avx512bw
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni
"""

ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes crc32 atomics asimddp i8mm
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""


def test_x86_features_come_from_the_first_processor() -> None:
    info = parse_cpuinfo(X86, "x86_64")
    assert info["cpu_model"] == "AMD EPYC 7B13"
    assert info["int8_features"]["avx2"] is True
    assert info["int8_features"]["avx512_vnni"] is False  # processor 0 has none
    assert info["int8_features"]["avx_vnni"] is False
    assert "asimddp" not in info["int8_features"]


def test_arm_features_and_model_from_implementer_and_part() -> None:
    info = parse_cpuinfo(ARM, "aarch64")
    assert info["cpu_model"] == "implementer 0x41 part 0xd0c"
    assert info["int8_features"] == {"asimd": True, "asimddp": True, "i8mm": True, "sve": False, "bf16": False}


def test_no_cpuinfo_gives_all_features_false() -> None:
    info = parse_cpuinfo("", "x86_64")
    assert not any(info["int8_features"].values())
    assert info["cpu_model"]


def test_format_features_names_every_flag() -> None:
    line = format_features(parse_cpuinfo(ARM, "aarch64"))
    assert line.startswith("cpu ") and "implementer 0x41" in line
    assert "asimddp yes" in line and "sve no" in line


def test_machine_block_is_json_and_carries_load_and_versions() -> None:
    block = json.loads(json.dumps(machine_block()))
    assert block["cpu_model"] == cpu_info()["cpu_model"]
    assert block["cores"] >= block["cores_usable"] >= 1
    assert len(block["load_average_start"]) == 3
    assert block["versions"]["onnxruntime"]
    assert block["kernel_backend"] in ("native", "numpy")
    assert block["kernel_isa"] in ("avx2", "baseline")
