import json

import numpy as np
import pytest
from PIL import Image

from detection.core.evaluate import evaluate_run
from detection.core.onnx_engine import onnx_detector_load, onnx_export
from detection.core.scan import paths_detect


def test_detect_on_a_corrupt_file_gives_an_error_line_and_the_run_goes_on(tiny_detector, synthetic_split, tmp_path):
    good = synthetic_split["splits"]["test"][0].path
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "nested" / "ok.png").write_bytes(good.read_bytes())
    (tmp_path / "notes.txt").write_text("not an image, skipped when walking a folder")
    records = list(paths_detect(detector=tiny_detector, paths=[tmp_path / "missing.jpg", tmp_path]))
    assert [r["path"].rsplit("/", 1)[-1] for r in records] == ["missing.jpg", "broken.jpg", "ok.png"]
    assert "error" in records[0] and "error" in records[1]
    assert set(records[2]) == {"path", "model", "ai_probability", "verdict"}
    assert records[2]["verdict"] in {"ai", "real", "uncertain"}
    json.dumps(records)


def test_onnxruntime_and_pytorch_agree_within_1e_3(tiny_detector, tiny_card, weights_dir, synthetic_split):
    onnx_export(directory=weights_dir / tiny_card.name)
    engine = onnx_detector_load(weights_dir=weights_dir, name=tiny_card.name, threads=2)
    images = [Image.open(s.path) for s in synthetic_split["splits"]["test"]]
    assert np.allclose(engine.predict(images), tiny_detector.predict(images), atol=1e-3)


def test_evaluation_writes_json_and_html_with_every_section(tiny_detector, synthetic_split, tmp_path):
    report = evaluate_run(detector=tiny_detector, split=synthetic_split, out_dir=tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["test"]["per_scenery"].keys() == {"forest", "sea"}
    for key in ("overall", "false_flag_rate_real", "uncertain_share"):
        assert key in saved["test"]
    assert set(saved["robustness"]) == {"native", "jpeg_q90", "jpeg_q70", "jpeg_q50", "downscale_x0.5", "upscale_x2"}
    assert {"passed", "increase"} <= set(saved["shortcut_probe"])
    assert report["targets"]["shortcut_probe_met"] == saved["shortcut_probe"]["passed"]
    # The false-flag target is judged on the seed's own sceneries, at the card's `high` threshold.
    reals = [s for s in synthetic_split["splits"]["test"] if s.label == 0]
    probabilities = np.array(tiny_detector.predict([Image.open(s.path) for s in reals]))
    rate = np.mean(probabilities >= tiny_detector.card.thresholds.high)
    assert saved["test"]["landscapes"]["false_flag_rate"] == pytest.approx(rate)
    assert report["targets"]["false_flag_met"] == (rate <= 0.02)
    low, high = tiny_detector.card.thresholds.low, tiny_detector.card.thresholds.high
    assert saved["test"]["verdicts_by_class"]["genuine"] == {
        "ai": int(np.sum(probabilities >= high)),
        "uncertain": int(np.sum((probabilities >= low) & (probabilities < high))),
        "real": int(np.sum(probabilities < low)),
    }
    by_class = saved["test"]["verdicts_by_class"]
    assert sum(by_class["ai"].values()) == len(synthetic_split["splits"]["test"]) - len(reals)
    assert saved["test"]["ai_passed_as_genuine"] == pytest.approx(by_class["ai"]["real"] / sum(by_class["ai"].values()))
    assert saved["test"]["genuine_to_moderator"] == pytest.approx(by_class["genuine"]["uncertain"] / len(reals))
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in page and "Shortcut probe" in page and "Robustness" in page


def test_robustness_table_can_run_on_a_seeded_subset_of_the_test_split(tiny_detector, synthetic_split, tmp_path):
    report = evaluate_run(detector=tiny_detector, split=synthetic_split, out_dir=tmp_path, robustness_samples=5)
    assert {row["n"] for row in report["robustness"].values()} == {5}
