"""Runtime options shared by both backends: threads, spinning, warm-up, provider preference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.errors import ConfigError

__all__ = ["GRAPH_OPT_LEVELS", "RuntimeOptions"]

GRAPH_OPT_LEVELS = ("disable", "basic", "extended", "all")


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
    * ``warmup``: inference runs made at load time (on zero-point-filled inputs); the first is timed separately.
    * ``trt_engine_cache_dir``/``trt_fp16``/``trt_int8``: TensorRT engine cache and precision flags.
    * ``shapes``: fixes dynamic dimensions per input name; otherwise every dynamic dimension becomes 1.
    """

    providers: Sequence[str] | None = None
    strict: bool = False
    threads: int | None = None
    inter_op_threads: int = 1
    spinning: bool = False
    graph_optimization: str = "all"
    warmup: int = 3
    trt_engine_cache_dir: str | None = None
    trt_fp16: bool = False
    trt_int8: bool = False
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads: expected an integer >= 1 or None, got {self.threads!r}")
        if not isinstance(self.inter_op_threads, int) or self.inter_op_threads < 1:
            raise ConfigError(f"inter_op_threads: expected an integer >= 1, got {self.inter_op_threads!r}")
        if self.graph_optimization not in GRAPH_OPT_LEVELS:
            raise ConfigError(
                f"graph_optimization: expected one of {GRAPH_OPT_LEVELS}, got {self.graph_optimization!r}"
            )
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"warmup: expected an integer >= 0, got {self.warmup!r}")
        if isinstance(self.providers, str):
            object.__setattr__(self, "providers", (self.providers,))
