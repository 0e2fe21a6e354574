"""The one way the detectors open an ONNX graph: onnxruntime on the CPU with a chosen number of threads."""

from __future__ import annotations

from pathlib import Path

import onnxruntime


def cpu_session(model: Path | bytes, *, threads: int | None = None) -> onnxruntime.InferenceSession:
    """A CPU session of the file (or serialized graph) `model`; `threads` caps its intra-op threads, None
    leaves onnxruntime's default (one per core)."""
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
