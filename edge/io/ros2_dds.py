"""DDS plumbing shared by the ROS 2 source and sinks: participants, topics, and QoS the way ROS 2 sets it.

QoS (ROS 2's ``rmw_qos_profile_*``, which every ROS 2 node uses, so ours must be compatible with theirs):

* :func:`sensor_data_qos` — camera and IMU subscriptions: best effort, keep last 5, volatile. A best-effort
  reader matches both best-effort and reliable publishers (a camera driver's default is either), and never
  makes a publisher wait for us.
* :func:`command_qos` — our decision and diagnostics writers: reliable, keep last ``depth`` (10, ROS 2's default
  profile), volatile. A ROS 2 subscriber with the default profile (reliable) or the sensor-data profile (best
  effort) both match it.

Every writer here writes plain CDR (``DataRepresentation`` XCDR1), what rmw_cyclonedds reads
(see :mod:`edge.io.ros2_msgs`).

Network: a participant uses Cyclone DDS's configuration from ``CYCLONEDDS_URI`` (the same variable a ROS 2 node on
the robot reads), unless :func:`participant` is handed an XML ``config``; :func:`loopback_config` is the one the tests
use (loopback only, no multicast). The DDS domain is ``domain_id`` (ROS 2's ``ROS_DOMAIN_ID``, default 0).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from cyclonedds.core import DDSException
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.qos import Policy, Qos
from cyclonedds.topic import Topic

from edge.errors import ConfigError
from edge.io.ros2_msgs import dds_topic

__all__ = [
    "command_qos",
    "default_domain_id",
    "loopback_config",
    "participant",
    "ros2_topic",
    "sensor_data_qos",
]

# ROS 2's DDS topic names are limited by the DDS implementation, not by us; domain ids are 0..232 in DDS's port maths
MAX_DOMAIN_ID = 232


def sensor_data_qos(depth: int = 5) -> Qos:
    """ROS 2's sensor-data profile: best effort, keep last ``depth`` (5), volatile."""
    return Qos(
        Policy.Reliability.BestEffort,
        Policy.History.KeepLast(depth),
        Policy.Durability.Volatile,
    )


def command_qos(depth: int = 10) -> Qos:
    """ROS 2's default profile for commands and diagnostics: reliable, keep last ``depth`` (10), volatile; written
    as plain CDR (XCDR1)."""
    return Qos(
        Policy.Reliability.Reliable(max_blocking_time=0),
        Policy.History.KeepLast(depth),
        Policy.Durability.Volatile,
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )


def default_domain_id() -> int:
    """``ROS_DOMAIN_ID`` from the environment (ROS 2's convention), else 0."""
    raw = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"ROS_DOMAIN_ID: expected an integer 0..{MAX_DOMAIN_ID}, got {raw!r}") from None
    return check_domain_id(value, "ROS_DOMAIN_ID")


def check_domain_id(value: int, key: str) -> int:
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise ConfigError(f"{key}: expected an integer 0..{MAX_DOMAIN_ID}, got {value!r}")
    return value


def loopback_config(domain_id: int) -> str:
    """Cyclone DDS XML for ``domain_id`` that keeps all traffic on 127.0.0.1: no multicast, unicast discovery of
    the peers on this host (participant indices allocated automatically)."""
    return (
        f'<CycloneDDS><Domain Id="{int(domain_id)}"><General>'
        '<Interfaces><NetworkInterface address="127.0.0.1"/></Interfaces>'
        "<AllowMulticast>false</AllowMulticast></General>"
        "<Discovery><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>60</MaxAutoParticipantIndex>"
        '<Peers><Peer address="127.0.0.1"/></Peers></Discovery>'
        "</Domain></CycloneDDS>"
    )


# Cyclone allows one configured Domain per id and process: sources and sinks on the same domain share it while any
# of them holds it (values: (config, Domain), weakly kept)
_DOMAINS: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_DOMAINS_LOCK = threading.Lock()


def _domain(did: int, config: str) -> Any:
    with _DOMAINS_LOCK:
        domain = _DOMAINS.get(did)
        if domain is None:
            domain = Domain(did, config)
            domain.edge_config = config
            _DOMAINS[did] = domain
        elif domain.edge_config != config:
            raise ConfigError(f"ROS 2: DDS domain {did} is already open in this process with another configuration")
        return domain


def participant(domain_id: int | None = None, config: str | None = None) -> tuple[DomainParticipant, Any]:
    """A DDS participant on ``domain_id`` (``None``: :func:`default_domain_id`) and the :class:`Domain` that holds
    ``config`` (``None`` when the environment's configuration applies). Keep both alive together."""
    did = default_domain_id() if domain_id is None else check_domain_id(domain_id, "domain_id")
    try:
        domain = _domain(did, config) if config is not None else None
        return DomainParticipant(did), domain
    except DDSException as exc:
        raise ConfigError(f"ROS 2: cannot create a DDS participant on domain {did}: {exc}") from exc


def ros2_topic(dp: DomainParticipant, ros_name: str, msg_type: type) -> Topic:
    """The DDS topic of ROS 2 topic ``ros_name`` (``rt/`` prefixed) carrying ``msg_type``."""
    try:
        name = dds_topic(ros_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return Topic(dp, name, msg_type)
    except DDSException as exc:
        raise ConfigError(f"ROS 2 topic {ros_name!r}: cannot create DDS topic {name!r}: {exc}") from exc
