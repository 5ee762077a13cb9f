"""The ROS 2 message types: DDS type names, topic names, and CDR bytes as rmw_cyclonedds writes them (XCDR1)."""

# no "from __future__ import annotations": cyclonedds resolves GenericImage's field types at class creation
import dataclasses
import struct

import pytest
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.annotations import final
from cyclonedds.idl.types import sequence, uint8, uint32
from cyclonedds.qos import Policy

from edge.io import ros2_msgs as m
from edge.io.ros2_dds import command_qos, sensor_data_qos


@final
@dataclasses.dataclass
class GenericImage(IdlStruct, typename="test.GenericImage"):
    """sensor_msgs/Image with cyclonedds' generic ``sequence[uint8]`` codec for ``data``."""

    header: m.Header
    height: uint32
    width: uint32
    encoding: str
    is_bigendian: uint8
    step: uint32
    data: sequence[uint8]


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (m.Time, "builtin_interfaces::msg::dds_::Time_"),
        (m.Header, "std_msgs::msg::dds_::Header_"),
        (m.String, "std_msgs::msg::dds_::String_"),
        (m.Vector3, "geometry_msgs::msg::dds_::Vector3_"),
        (m.Quaternion, "geometry_msgs::msg::dds_::Quaternion_"),
        (m.Twist, "geometry_msgs::msg::dds_::Twist_"),
        (m.Image, "sensor_msgs::msg::dds_::Image_"),
        (m.CompressedImage, "sensor_msgs::msg::dds_::CompressedImage_"),
        (m.Imu, "sensor_msgs::msg::dds_::Imu_"),
        (m.KeyValue, "diagnostic_msgs::msg::dds_::KeyValue_"),
        (m.DiagnosticStatus, "diagnostic_msgs::msg::dds_::DiagnosticStatus_"),
        (m.DiagnosticArray, "diagnostic_msgs::msg::dds_::DiagnosticArray_"),
    ],
)
def test_dds_type_names_are_ros2s(cls: type, name: str) -> None:
    cls.__idl__.populate()
    assert cls.__idl__.idl_transformed_typename == name


def test_fields_follow_the_msg_files_in_order() -> None:
    names = {cls: [f.name for f in dataclasses.fields(cls)] for cls in (m.Image, m.Imu, m.DiagnosticStatus)}
    assert names[m.Image] == ["header", "height", "width", "encoding", "is_bigendian", "step", "data"]
    assert names[m.Imu] == [
        "header",
        "orientation",
        "orientation_covariance",
        "angular_velocity",
        "angular_velocity_covariance",
        "linear_acceleration",
        "linear_acceleration_covariance",
    ]
    assert names[m.DiagnosticStatus] == ["level", "name", "message", "hardware_id", "values"]
    assert m.Quaternion().w == 1.0  # ROS 2's default orientation is the identity


def test_topic_names_get_the_rt_prefix() -> None:
    assert m.dds_topic("/camera/image_raw") == "rt/camera/image_raw"
    assert m.dds_topic("cmd_vel") == "rt/cmd_vel"
    for bad in ("", "/", "a b"):
        with pytest.raises(ValueError, match="ROS 2 topic"):
            m.dds_topic(bad)


def _cdr_string(s: str, pos: int) -> tuple[bytes, int]:
    """XCDR1 string at offset ``pos`` of the payload: pad to 4, uint32 length incl. NUL, bytes, NUL."""
    pad = b"\0" * (-pos % 4)
    raw = s.encode() + b"\0"
    out = pad + struct.pack("<I", len(raw)) + raw
    return out, pos + len(out)


def test_image_cdr_is_the_hand_computed_xcdr1_layout() -> None:
    img = m.Image(
        header=m.Header(m.Time(sec=7, nanosec=9), "cam"),
        height=2,
        width=1,
        encoding="rgb8",
        is_bigendian=0,
        step=3,
        data=bytes(range(6)),
    )
    payload = struct.pack("<iI", 7, 9)
    s, pos = _cdr_string("cam", len(payload))
    payload += s
    payload += b"\0" * (-pos % 4) + struct.pack("<II", 2, 1)
    s, pos = _cdr_string("rgb8", len(payload))
    payload += s + struct.pack("<B", 0)
    payload += b"\0" * (-len(payload) % 4) + struct.pack("<II", 3, 6) + bytes(range(6))
    assert img.serialize() == b"\x00\x01\x00\x00" + payload  # CDR_LE encapsulation, then the payload
    assert m.Image.deserialize(img.serialize()) == img


def test_imu_aligns_float64_to_8_like_ros2() -> None:
    imu = m.Imu(header=m.Header(m.Time(1, 2), "i"))  # header: 8 + 4 + 2 bytes, then float64s aligned to 8
    raw = imu.serialize()[4:]
    assert raw[:14] == struct.pack("<iII", 1, 2, 2) + b"i\0"
    assert raw[14:16] == b"\0\0" and struct.unpack_from("<4d", raw, 16) == (0.0, 0.0, 0.0, 1.0)
    assert len(raw) == 16 + 8 * (4 + 9 + 3 + 9 + 3 + 9)


def test_the_bytes_codec_of_image_data_matches_the_generic_sequence_codec() -> None:
    data = bytes(range(256)) * 3
    ours = m.Image(m.Header(m.Time(3, 4), "f"), 16, 16, "mono8", 0, 48, data)
    generic = GenericImage(m.Header(m.Time(3, 4), "f"), 16, 16, "mono8", 0, 48, list(data))
    assert ours.serialize() == generic.serialize()
    assert ours.serialize(use_version_2=True) == generic.serialize(use_version_2=True)
    assert isinstance(m.Image.deserialize(ours.serialize()).data, bytes)


def test_diagnostics_round_trip() -> None:
    arr = m.DiagnosticArray(
        status=[m.DiagnosticStatus(level=m.DiagnosticStatus.ERROR, name="edge", values=[m.KeyValue("seq", "3")])]
    )
    back = m.DiagnosticArray.deserialize(arr.serialize())
    assert back == arr and back.status[0].level == 2


def test_qos_profiles_are_ros2s() -> None:
    sensor, command = sensor_data_qos(), command_qos()
    assert sensor[Policy.Reliability] == Policy.Reliability.BestEffort
    assert sensor[Policy.History] == Policy.History.KeepLast(5)
    assert sensor[Policy.Durability] == Policy.Durability.Volatile
    assert isinstance(command[Policy.Reliability], Policy.Reliability.Reliable)
    assert command[Policy.History] == Policy.History.KeepLast(10)
    assert command[Policy.DataRepresentation] == Policy.DataRepresentation(use_cdrv0_representation=True)
