"""Runtime options shared by both backends: threads, spinning, warm-up, provider preference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.errors import ConfigError
from edge.models.shapes import parse_shapes

__all__ = ["CUDNN_ALGO_SEARCH", "GRAPH_OPT_LEVELS", "RuntimeOptions"]

GRAPH_OPT_LEVELS = ("disable", "basic", "extended", "all")
CUDNN_ALGO_SEARCH = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")


@dataclass(frozen=True)
class RuntimeOptions:
    """How a model is run.

    * ``providers``: ordered preference (``"tensorrt"``, ``"cuda"``, ``"xnnpack"``, ``"cpu"`` or ONNX Runtime's own
      ``*ExecutionProvider`` names); ``None`` means ``DEFAULT_PREFERENCE`` from :mod:`edge.models.providers`.
      LiteRT understands ``"xnnpack"`` and ``"cpu"`` (the builtin kernels without XNNPACK).
    * ``strict``: fail when the first choice is not installed, instead of falling back with a logged reason.
    * ``threads``: intra-op threads (LiteRT: interpreter threads); ``None`` lets the runtime choose.
    * ``inter_op_threads``: ONNX Runtime inter-op threads (only used with parallel execution; 1 by default).
    * ``spinning``: let idle ONNX Runtime workers spin; off by default so the pool does not starve other threads.
    * ``graph_optimization``: one of ``GRAPH_OPT_LEVELS``.
    * ``warmup``: inference runs made at load time (on zero-point-filled inputs at the declared shapes); the first is
      timed separately. ``None`` (the default): 3 for a model whose graph has no dynamic dimension, else 0, so a
      model with dynamic dimensions is never run on made-up zeros unless the caller asks for warm-up runs.
    * ``trt_engine_cache_dir``/``trt_timing_cache_dir``: where TensorRT keeps built engines and its layer-timing
      cache (both make the second start of a device seconds instead of minutes); ``None`` turns a cache off.
    * ``trt_fp16``: let TensorRT pick fp16 kernels; ``trt_int8``: ``True``, ``False`` or ``"auto"`` (on exactly when
      the ONNX graph carries QuantizeLinear/DequantizeLinear nodes, whose scales TensorRT then uses: explicit
      quantization, no calibration table).
    * ``trt_workspace_mb`` (MiB), ``trt_builder_optimization_level`` (0–5), ``trt_dla_core`` (a Jetson DLA core,
      ``None`` = GPU only): TensorRT builder settings; ``None`` keeps TensorRT's default.
    * ``cuda_device_id``, ``cuda_mem_limit_mb`` (MiB, ``None`` = no limit), ``cudnn_conv_algo_search``
      (``"EXHAUSTIVE"``, ``"HEURISTIC"`` or ``"DEFAULT"``): CUDA execution provider settings, also used by TensorRT
      for the device id.
    * ``shapes``: the shape of an input by name (``(1, 512)``, ``[1, 512]`` or ``"1x512"``), fixing its dynamic
      dimensions; checked against the graph at load (:mod:`edge.models.shapes`). Otherwise every dynamic
      dimension becomes 1.
    * ``state``: ``{output name: input name}`` for a stateful model: after each run the output is copied into the
      input (:mod:`edge.models.state`); checked against the model's specs at load.
    * ``session_config``: ONNX Runtime session config entries (``add_session_config_entry``), e.g. the ones
      ``edge model select`` tries for int8 on CPUs without VNNI (:mod:`edge.models.select`).
    """

    providers: Sequence[str] | None = None
    strict: bool = False
    threads: int | None = None
    inter_op_threads: int = 1
    spinning: bool = False
    graph_optimization: str = "all"
    warmup: int | None = None
    trt_engine_cache_dir: str | None = None
    trt_timing_cache_dir: str | None = None
    trt_fp16: bool = False
    trt_int8: bool | str = False
    trt_workspace_mb: int | None = None
    trt_builder_optimization_level: int | None = None
    trt_dla_core: int | None = None
    cuda_device_id: int = 0
    cuda_mem_limit_mb: int | None = None
    cudnn_conv_algo_search: str | None = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    session_config: dict[str, str] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads: expected an integer >= 1 or None, got {self.threads!r}")
        if not isinstance(self.inter_op_threads, int) or self.inter_op_threads < 1:
            raise ConfigError(f"inter_op_threads: expected an integer >= 1, got {self.inter_op_threads!r}")
        if self.graph_optimization not in GRAPH_OPT_LEVELS:
            raise ConfigError(
                f"graph_optimization: expected one of {GRAPH_OPT_LEVELS}, got {self.graph_optimization!r}"
            )
        if self.warmup is not None and (not isinstance(self.warmup, int) or self.warmup < 0):
            raise ConfigError(f"warmup: expected an integer >= 0 or None, got {self.warmup!r}")
        object.__setattr__(self, "shapes", parse_shapes(self.shapes))
        self._check_gpu_fields()
        if isinstance(self.providers, str):
            object.__setattr__(self, "providers", (self.providers,))

    def warmup_runs(self, static: bool) -> int:
        """Warm-up runs for a model whose graph is all fixed dimensions (``static``) or not."""
        if self.warmup is not None:
            return self.warmup
        return 3 if static else 0

    def _check_gpu_fields(self) -> None:
        if self.trt_int8 not in (True, False, "auto"):
            raise ConfigError(f"trt_int8: expected true, false or 'auto', got {self.trt_int8!r}")
        for name, low, high in (
            ("trt_workspace_mb", 1, None),
            ("trt_builder_optimization_level", 0, 5),
            ("trt_dla_core", 0, None),
            ("cuda_mem_limit_mb", 1, None),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            in_range = isinstance(value, int) and value >= low and (high is None or value <= high)
            if isinstance(value, bool) or not in_range:
                want = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
                raise ConfigError(f"{name}: expected {want} or None, got {value!r}")
        if isinstance(self.cuda_device_id, bool) or not isinstance(self.cuda_device_id, int) or self.cuda_device_id < 0:
            raise ConfigError(f"cuda_device_id: expected an integer >= 0, got {self.cuda_device_id!r}")
        if self.cudnn_conv_algo_search not in (None, *CUDNN_ALGO_SEARCH):
            raise ConfigError(
                f"cudnn_conv_algo_search: expected one of {CUDNN_ALGO_SEARCH}, got {self.cudnn_conv_algo_search!r}"
            )
