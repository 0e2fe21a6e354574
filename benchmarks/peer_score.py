"""Scores images with a peer detector's ONNX file, inside that peer's own virtual environment.

Run by benchmarks/peers.py with the peer's interpreter, so it needs only what the peer installs (numpy,
Pillow, onnxruntime) and nothing of the portal; none of the peer's own code is imported. Image paths come on
stdin, one a line; one JSON object a line goes to stdout: {"path", "score", "seconds"} or {"path", "error"},
where seconds are the CPU seconds spent on the image, decoding included.

    <peer venv>/bin/python peer_score.py classifier --model classifier.int8.onnx --threads 1 < paths
    <peer venv>/bin/python peer_score.py clip-probe --model clip_encoder.float.onnx --head clip_head.json \
        --fusion fusion.json --threads 1 < paths
"""

import argparse
import json
import math
import sys
import time

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
SIZE = 224


def _image(path):
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")  # as the peer decodes


def _tensor(img, mean, std):
    array = (np.asarray(img, dtype=np.float32) / 255.0 - mean) / std
    return array.transpose(2, 0, 1)[np.newaxis].astype(np.float32)


def classifier_input(img):
    """sdxl-detector: the whole image squeezed to 224 x 224 (bicubic, no crop), ImageNet mean/std."""
    return _tensor(img.resize((SIZE, SIZE), Image.Resampling.BICUBIC), IMAGENET_MEAN, IMAGENET_STD)


def clip_input(img):
    """The CLIP probe: short side to 224 (bicubic), centre crop 224, CLIP mean/std."""
    scale = SIZE / min(img.size)
    width, height = round(img.width * scale), round(img.height * scale)
    resized = img.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - SIZE) // 2, (height - SIZE) // 2
    return _tensor(resized.crop((left, top, left + SIZE, top + SIZE)), CLIP_MEAN, CLIP_STD)


def _session(path, threads):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def classifier_scorer(args):
    session = _session(args.model, args.threads)
    name = session.get_inputs()[0].name

    def score(img):
        logits = session.run(None, {name: classifier_input(img)})[0][0].astype(np.float64)
        odds = np.exp(logits - logits.max())
        return float(odds[0] / odds.sum())  # label 0 is "artificial"

    return score


def clip_probe_scorer(args):
    session = _session(args.model, args.threads)
    name = session.get_inputs()[0].name
    with open(args.head) as handle:
        head = json.load(handle)
    with open(args.fusion) as handle:
        fusion = json.load(handle)
    weights, bias = np.asarray(head["weights"], dtype=np.float64), float(head["bias"])

    def score(img):
        embedding = session.run(None, {name: clip_input(img)})[0][0].astype(np.float64)
        if embedding.shape != weights.shape:
            raise ValueError(f"the encoder gives {embedding.shape}, the head wants {weights.shape}")
        raw = 1 / (1 + math.exp(-(embedding / max(np.linalg.norm(embedding), 1e-12)) @ weights - bias))
        # The peer's Platt calibration of its one live signal; its thresholds are on this scale.
        raw = min(max(raw, 1e-4), 1 - 1e-4)
        z = float(fusion["w2"]) * math.log(raw / (1 - raw)) + float(fusion["b"])
        return 1 / (1 + math.exp(-z))

    return score


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("classifier", "clip-probe"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--head")
    parser.add_argument("--fusion")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    score = (classifier_scorer if args.kind == "classifier" else clip_probe_scorer)(args)
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        started = time.process_time()
        try:
            result = {"path": path, "score": score(_image(path))}
        except Exception as exc:  # one bad image must not end the run; its error is reported instead
            result = {"path": path, "error": f"{type(exc).__name__}: {exc}"}
        # CPU seconds of this process (all its threads): on a shared machine wall time measures the neighbours.
        result["seconds"] = time.process_time() - started
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
