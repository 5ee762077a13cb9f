"""The on-device service: what ``edge run device.toml`` composes (the loop, its sensors and sinks, the telemetry tap).

It sits above :mod:`edge.loop` and :mod:`edge.telemetry` (it wires one into the other) and below the CLI, so the
loop never imports telemetry. See :mod:`edge.device.service`.
"""
