"""The tiny autoencoders load strictly from the shared folder, and the aligned pairs keep each pair together."""

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from detection.core.aligned import pairs_make
from detection.core.data import folder_scan, split_make
from detection.core.tae import DECODERS, TAE_DIR, psnr, roundtrip, tae_load

# Measured on the made image below: 26-29.5 dB over the five decoders (taesd lowest).
PSNR_FLOOR_DB = 20.0


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def image_made(height: int, width: int, *, shift: int = 0) -> Image.Image:
    """Smooth colour gradients with a disc and a rectangle on them; `shift` moves the shapes."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([40 + 170 * xx / width, 60 + 120 * yy / height, 200 - 150 * (xx + yy) / (width + height)], axis=-1)
    image = Image.fromarray(base.round().astype(np.uint8))
    draw = ImageDraw.Draw(image)
    left, top = width // 8 + shift, height // 6
    draw.ellipse((left, top, left + height // 2, top + height // 2), fill=(230, 200, 40))
    draw.rectangle((width // 2, height // 3 - shift, width - width // 8, height - height // 8), fill=(30, 90, 160))
    return image


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255.0)


@pytest.mark.parametrize("name", DECODERS)
def test_each_shipped_autoencoder_loads_strictly_and_round_trips_a_made_image_above_the_floor(name):
    image = image_made(64, 96)
    trip = roundtrip(image, name)
    assert trip.shape == (3, 64, 96)
    assert float(trip.min()) >= 0.0 and float(trip.max()) <= 1.0
    assert psnr(_tensor(image), trip) > PSNR_FLOOR_DB
    # A tensor batch gives the same round trip as the uint8 image.
    assert torch.allclose(roundtrip(_tensor(image).unsqueeze(0), name)[0], trip, atol=1e-5)


def test_round_trip_crops_sides_to_multiples_of_eight_around_the_centre():
    image = image_made(69, 101)
    trip = roundtrip(np.asarray(image), "taesd")
    assert trip.shape == (3, 64, 96)
    centred = _tensor(image)[:, 2:66, 2:98]
    assert psnr(centred, trip) > PSNR_FLOOR_DB
    assert psnr(centred, trip) > psnr(_tensor(image)[:, :64, :96], trip)


def test_a_file_that_does_not_match_its_pinned_sha256_is_refused(tmp_path):
    copy = tmp_path / "tae"
    shutil.copytree(TAE_DIR, copy)
    tae_load("taesd3", directory=copy)
    path = copy / "taesd3_decoder.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight: still a valid file, no longer the pinned one
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the pinned"):
        tae_load("taesd3", directory=copy)
    (copy / "SHA256SUMS").write_text(
        "".join(line + "\n" for line in (copy / "SHA256SUMS").read_text().splitlines() if "taef2_encoder" not in line)
    )
    with pytest.raises(ValueError, match="not pinned"):
        tae_load("taef2", directory=copy)


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """Six genuine photos of two sources at sides that are not multiples of 8 (the last two, of different
    sources, share a group), and one AI image that must not be paired."""
    root = tmp_path / "tiny"
    rows = []
    for i in range(6):
        source = ("alpha", "beta")[i % 2]
        rel = f"real/{source}/{i:02d}.jpg"
        (root / "real" / source).mkdir(parents=True, exist_ok=True)
        image_made(37 + i, 50 - i, shift=i).save(root / rel, quality=95)
        rows.append([rel, "real", "other", "pair" if i >= 4 else f"{source}:{i}", source])
    (root / "ai_generated" / "gen").mkdir(parents=True)
    image_made(40, 40).save(root / "ai_generated" / "gen" / "00.jpg")
    rows.append(["ai_generated/gen/00.jpg", "ai_generated", "other", "gen:0", "gen"])
    with (root / "groups.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "scenery", "group", "source"])
        writer.writerows(rows)
    return root


def test_the_command_writes_pairs_that_share_a_group_and_no_split_separates(tiny_data, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "aligned"
    log = io.StringIO()
    call_command("make_aligned_fakes", out=out, data=[tiny_data], threads=1, stdout=log)
    assert "mean PSNR" in log.getvalue()
    samples = folder_scan(folder=out)
    reals = {s.path.name: s for s in samples if s.label == 0}
    fakes = {s.path.name: s for s in samples if s.label == 1}
    assert sorted(reals) == sorted(fakes) == sorted(f"{('alpha', 'beta')[i % 2]}_{i:02d}.jpg" for i in range(6))
    for name, real in reals.items():
        fake = fakes[name]
        assert fake.group == real.group and real.source in {"alpha", "beta"}
        assert fake.source == fake.path.parent.name and fake.source.startswith("tae_")
        with Image.open(real.path) as a, Image.open(fake.path) as b:
            assert a.size == b.size and a.size[0] % 8 == 0 and a.size[1] % 8 == 0
            assert a.format == b.format == "JPEG"
    assert {fakes[name].source for name in ("alpha_04.jpg", "beta_05.jpg")} == {fakes["alpha_04.jpg"].source}
    for seed in range(4):
        split = split_make(folders=[out], seed=seed, holdout_sources=[])
        side = {sample.path: name for name, members in split["splits"].items() for sample in members}
        assert all(side[real.path] == side[fakes[name].path] for name, real in reals.items())
    # A second run finds every pair written and writes nothing.
    again = io.StringIO()
    call_command("make_aligned_fakes", out=out, data=[tiny_data], threads=1, stdout=again)
    assert again.getvalue().startswith("6 photos, 0 files written")
    assert folder_scan(folder=out) == samples


def test_all_decoders_adds_the_other_four_round_trips_beside_the_first(tiny_data, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "aligned"
    call_command("make_aligned_fakes", out=out, data=[tiny_data], limit=1, threads=1, stdout=io.StringIO())
    call_command(
        "make_aligned_fakes", out=out, data=[tiny_data], limit=1, all_decoders=True, threads=1, stdout=io.StringIO()
    )
    samples = folder_scan(folder=out)
    assert sorted(s.source for s in samples if s.label == 1) == sorted(f"tae_{name}" for name in DECODERS)
    assert len({s.group for s in samples}) == 1 and sum(s.label == 0 for s in samples) == 1


def test_an_interrupted_run_leaves_a_data_folder_of_whole_pairs(tiny_data, tmp_path):
    class Stop(Exception):
        pass

    lines = []

    def progress(line: str) -> None:
        lines.append(line)
        raise Stop

    out = tmp_path / "aligned"
    with pytest.raises(Stop):
        pairs_make(out=out, folders=[tiny_data], progress=progress, report_every=4)
    assert lines[0].startswith("4/6 photos") and "mean PSNR" in lines[0]
    samples = folder_scan(folder=out)
    assert sum(s.label == 0 for s in samples) == sum(s.label == 1 for s in samples) == 4
