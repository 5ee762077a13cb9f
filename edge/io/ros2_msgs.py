"""The standard ROS 2 message types edge speaks, as cyclonedds IDL dataclasses that interoperate with ROS 2 nodes.

A ROS 2 node (rmw_cyclonedds or any DDS RMW) matches a topic on two things only: the DDS **type name** and the
**CDR layout** of the sample. So each class here

* carries ROS 2's DDS type name, ``<package>::msg::dds_::<Type>_`` (cyclonedds-python turns the dots of
  ``typename`` into ``::``), e.g. ``sensor_msgs::msg::dds_::Image_``;
* declares the fields of the ``.msg`` file in the same order with the same IDL types (rosidl's mapping: ``uint32``
  → ``types.uint32``, ``float64`` → ``types.float64``, ``byte`` → ``types.byte`` (IDL ``octet``), ``string`` →
  ``str``, ``T[9]`` → ``types.array[T, 9]``, ``T[]`` → ``types.sequence[T]``), ``@final`` like every rosidl type;
* with one speed-up that changes nothing on the wire: ``uint8[] data`` of images is declared ``sequence[uint8]``
  (so the XTypes type object is ROS 2's), but cyclonedds-python would decode it into a Python list of ints (a
  640×480 RGB frame is 921,600 ints); :func:`_raw_octets` swaps that member's codec for cyclonedds' own ``bytes``
  codec, which writes the same CDR (a uint32 length, then the raw bytes) and reads it in one copy into ``bytes``.
  ``tests/io/test_ros2_msgs.py`` checks both codecs give identical bytes.

Writers must use plain CDR (XCDR1, what rmw_cyclonedds writes and reads): :func:`edge.io.ros2_qos` sets
``DataRepresentation`` to XCDR1 on every writer; with XCDR2 a ``float64`` after a 4-byte field would be aligned
differently and a ROS 2 reader would misread ``Imu``. rmw_cyclonedds registers its types without XTypes type
information, so a ROS 2 participant matches ours by type name alone; two edge (Python) participants match by name
and XTypes type object.

How the definitions were checked: field by field against the ``.msg`` files of ros2/common_interfaces
(``std_msgs``, ``sensor_msgs``, ``geometry_msgs``, ``diagnostic_msgs``) and ros2/rcl_interfaces
(``builtin_interfaces``), and against other pure-cyclonedds ROS 2 bridges (e.g. unitree_sdk2_python's
``sensor_msgs.msg.dds_.Image_``); ``tests/io/test_ros2_msgs.py`` pins the CDR bytes of a sample against a
hand-computed XCDR1 layout. No rclpy wheel installs on CPython 3.11 from PyPI, so no test runs a ROS 2 node.

Topics: ROS 2 prefixes DDS topic names with ``rt/`` (``/camera/image_raw`` → ``rt/camera/image_raw``):
:func:`dds_topic`.
"""

# no "from __future__ import annotations": cyclonedds resolves the field types at class creation

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl._machinery import BytesMachine
from cyclonedds.idl.annotations import final
from cyclonedds.idl.types import array, byte, float64, int32, sequence, uint8, uint32

__all__ = [
    "CompressedImage",
    "DiagnosticArray",
    "DiagnosticStatus",
    "Header",
    "Image",
    "Imu",
    "KeyValue",
    "Quaternion",
    "String",
    "Time",
    "Twist",
    "Vector3",
    "dds_topic",
]


def dds_topic(ros_topic: str) -> str:
    """The DDS topic name of ROS 2 topic ``ros_topic``: ``/camera/image_raw`` → ``rt/camera/image_raw``."""
    name = ros_topic.strip()
    if not name or name == "/" or " " in name:
        raise ValueError(f"ROS 2 topic: expected a name like '/camera/image_raw', got {ros_topic!r}")
    return "rt/" + name.lstrip("/")


# ----------------------------------------------------------------------- builtin_interfaces, std_msgs


@final
@dataclass
class Time(IdlStruct, typename="builtin_interfaces.msg.dds_.Time_"):
    """builtin_interfaces/msg/Time: ``int32 sec``, ``uint32 nanosec`` (in [0, 1e9))."""

    sec: int32 = 0
    nanosec: uint32 = 0


@final
@dataclass
class Header(IdlStruct, typename="std_msgs.msg.dds_.Header_"):
    """std_msgs/msg/Header: ``builtin_interfaces/Time stamp``, ``string frame_id``."""

    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@final
@dataclass
class String(IdlStruct, typename="std_msgs.msg.dds_.String_"):
    """std_msgs/msg/String: ``string data``."""

    data: str = ""


# ----------------------------------------------------------------------- geometry_msgs


@final
@dataclass
class Vector3(IdlStruct, typename="geometry_msgs.msg.dds_.Vector3_"):
    """geometry_msgs/msg/Vector3: ``float64 x, y, z``."""

    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@final
@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs.msg.dds_.Quaternion_"):
    """geometry_msgs/msg/Quaternion: ``float64 x, y, z, w`` (ROS 2's defaults 0, 0, 0, 1)."""

    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@final
@dataclass
class Twist(IdlStruct, typename="geometry_msgs.msg.dds_.Twist_"):
    """geometry_msgs/msg/Twist: ``Vector3 linear`` (m/s), ``Vector3 angular`` (rad/s)."""

    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


# ----------------------------------------------------------------------- sensor_msgs


@final
@dataclass
class Image(IdlStruct, typename="sensor_msgs.msg.dds_.Image_"):
    """sensor_msgs/msg/Image: ``Header header``, ``uint32 height, width``, ``string encoding`` ("rgb8", "bgr8",
    "mono8", ...), ``uint8 is_bigendian``, ``uint32 step`` (bytes per row), ``uint8[] data`` (``step * height``
    bytes; read as ``bytes``, written from any bytes-like object)."""

    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = b""


@final
@dataclass
class CompressedImage(IdlStruct, typename="sensor_msgs.msg.dds_.CompressedImage_"):
    """sensor_msgs/msg/CompressedImage: ``Header header``, ``string format`` ("jpeg", "png", or image_transport's
    "rgb8; jpeg compressed bgr8"), ``uint8[] data`` (the encoded image; read as ``bytes``)."""

    header: Header = field(default_factory=Header)
    format: str = ""
    data: sequence[uint8] = b""


def _covariance() -> list[float]:
    return [0.0] * 9


@final
@dataclass
class Imu(IdlStruct, typename="sensor_msgs.msg.dds_.Imu_"):
    """sensor_msgs/msg/Imu: orientation (quaternion), angular velocity (rad/s), linear acceleration (m/s²), each
    with a row-major 3×3 covariance (``float64[9]``; all zeros: unknown; element 0 = -1: the field is absent)."""

    header: Header = field(default_factory=Header)
    orientation: Quaternion = field(default_factory=Quaternion)
    orientation_covariance: array[float64, 9] = field(default_factory=_covariance)
    angular_velocity: Vector3 = field(default_factory=Vector3)
    angular_velocity_covariance: array[float64, 9] = field(default_factory=_covariance)
    linear_acceleration: Vector3 = field(default_factory=Vector3)
    linear_acceleration_covariance: array[float64, 9] = field(default_factory=_covariance)


# ----------------------------------------------------------------------- diagnostic_msgs


@final
@dataclass
class KeyValue(IdlStruct, typename="diagnostic_msgs.msg.dds_.KeyValue_"):
    """diagnostic_msgs/msg/KeyValue: ``string key``, ``string value``."""

    key: str = ""
    value: str = ""


@final
@dataclass
class DiagnosticStatus(IdlStruct, typename="diagnostic_msgs.msg.dds_.DiagnosticStatus_"):
    """diagnostic_msgs/msg/DiagnosticStatus: ``byte level`` (OK=0, WARN=1, ERROR=2, STALE=3), ``string name``,
    ``string message``, ``string hardware_id``, ``KeyValue[] values``."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3

    level: byte = 0
    name: str = ""
    message: str = ""
    hardware_id: str = ""
    values: sequence[KeyValue] = field(default_factory=list)


@final
@dataclass
class DiagnosticArray(IdlStruct, typename="diagnostic_msgs.msg.dds_.DiagnosticArray_"):
    """diagnostic_msgs/msg/DiagnosticArray: ``Header header``, ``DiagnosticStatus[] status``."""

    header: Header = field(default_factory=Header)
    status: sequence[DiagnosticStatus] = field(default_factory=list)


def _raw_octets(cls: type, member: str) -> None:
    """Read and write ``cls.member`` (a ``sequence[uint8]``) as ``bytes`` (same CDR: uint32 length, raw octets)."""
    idl = cls.__idl__
    idl.populate()
    for machine in (idl.v1_machine, idl.v2_machine):
        machine.members_machines[member] = BytesMachine()


_raw_octets(Image, "data")
_raw_octets(CompressedImage, "data")
