"""Inference cost per architecture, in one run: images/s at batch 1 and 16, eager PyTorch vs onnxruntime,
Grad-CAM cost relative to one forward pass, and peak resident memory.

    python -m benchmarks.inference [--size 128] [--threads 2] [--seconds 3] [--weights detection/weights]

Uses the trained bundle of each arch when `--weights/<arch>/` exists, else a randomly initialised net
(same cost). Each arch runs in its own process so peak memory is per arch. Absolute numbers depend on the
machine and its load; the ratios are what to compare. `--arch keras` measures the Keras bundle
`--keras-model` (TensorFlow, in its own process as always) with no ONNX column.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path


def _rate(fn, *, images: int, seconds: float) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        done += images
    return done / (time.perf_counter() - started)


def arch_measure(arch: str, size: int, threads: int, seconds: float, weights: str) -> dict:
    import numpy as np
    import torch

    from detection.core.bundle import bundle_load, bundle_save
    from detection.core.inference import Detector
    from detection.core.nets import net_build
    from detection.core.onnx_engine import OnnxDetector, onnx_export

    torch.set_num_threads(threads)
    directory = Path(weights) / arch
    with tempfile.TemporaryDirectory() as scratch:
        if (directory / "model.safetensors").is_file():
            model, card = bundle_load(directory=directory)
        else:
            directory = Path(scratch) / arch
            card = {
                "name": arch,
                "arch": arch,
                "version": "bench",
                "image_size": size,
                "thresholds": {"low": 0.4, "high": 0.6},
            }
            bundle_save(directory=directory, model=net_build(arch).eval(), card=card)
            model, card = bundle_load(directory=directory)
        size = int(card["image_size"])
        detector = Detector(model=model, card=card)
        onnx_path = onnx_export(directory=directory, path=Path(scratch) / "model.onnx")
        engine = OnnxDetector(path=onnx_path, card=card, threads=threads)
        rng = np.random.default_rng(0)
        arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(16)]
        result: dict = {"arch": arch, "image_size": size, "trained": card["version"] != "bench"}
        for batch in (1, 16):
            chunk = arrays[:batch]
            result[f"eager_img_s_b{batch}"] = _rate(
                lambda c=chunk: detector.predict_arrays(c), images=batch, seconds=seconds
            )
            result[f"onnx_img_s_b{batch}"] = _rate(
                lambda c=chunk: engine.predict_arrays(c), images=batch, seconds=seconds
            )
            result[f"onnx_speedup_b{batch}"] = result[f"onnx_img_s_b{batch}"] / result[f"eager_img_s_b{batch}"]
        cam_rate = _rate(lambda: detector.heatmap_array(arrays[0]), images=1, seconds=seconds)
        result["gradcam_img_s"] = cam_rate
        result["gradcam_cost_vs_forward_b1"] = result["eager_img_s_b1"] / cam_rate
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def keras_measure(name: str, threads: int, seconds: float, weights: str) -> dict:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    from detection.core.keras.inference import keras_detector_load

    detector = keras_detector_load(weights_dir=Path(weights), name=name)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (detector.image_size,) * 2 + (3,), dtype=np.uint8) for _ in range(16)]
    result: dict = {"arch": f"keras:{name}", "image_size": detector.image_size, "trained": True}
    for batch in (1, 16):
        chunk = arrays[:batch]
        result[f"eager_img_s_b{batch}"] = _rate(
            lambda c=chunk: detector.predict_arrays(c), images=batch, seconds=seconds
        )
        result[f"onnx_img_s_b{batch}"] = result[f"onnx_speedup_b{batch}"] = float("nan")
    result["gradcam_img_s"] = _rate(lambda: detector.heatmap_array(arrays[0]), images=1, seconds=seconds)
    result["gradcam_cost_vs_forward_b1"] = result["eager_img_s_b1"] / result["gradcam_img_s"]
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    from detection.core.nets import ARCHITECTURES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--weights", default="detection/weights")
    parser.add_argument("--arch", nargs="*", default=list(ARCHITECTURES), help="architectures, or keras")
    parser.add_argument("--keras-model", default="mobilenet_v2_keras", help="the Keras bundle --arch keras measures")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")  # one framework per process: TensorFlow never meets torch
    rows = []
    for arch in args.arch:
        with context.Pool(1) as pool:
            if arch == "keras":
                rows.append(pool.apply(keras_measure, (args.keras_model, args.threads, args.seconds, args.weights)))
            else:
                rows.append(pool.apply(arch_measure, (arch, args.size, args.threads, args.seconds, args.weights)))
    fastest = max(row["eager_img_s_b16"] for row in rows)
    for row in rows:
        row["eager_b16_vs_fastest"] = row["eager_img_s_b16"] / fastest
    columns = [
        "arch",
        "eager_img_s_b1",
        "onnx_img_s_b1",
        "eager_img_s_b16",
        "onnx_img_s_b16",
        "onnx_speedup_b16",
        "gradcam_cost_vs_forward_b1",
        "eager_b16_vs_fastest",
        "peak_rss_mib",
    ]
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
