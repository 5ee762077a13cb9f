"""Model tooling, apart from the runtime a device installs: the quantizer and reference-profile builder
(:mod:`edge.tooling.toolchain`), the ONNX → TFLite exporter (:mod:`edge.tooling.tflite_export`), the small synthetic
models that tests and benchmarks build (:mod:`edge.tooling.model_builders`), and the ``edge model
quantize|profile|tflite`` subcommands (:mod:`edge.tooling.cli`).

It sits on top, beside ``edge.sim`` and the CLI: it may import any runtime area; no runtime area imports it.
"""
