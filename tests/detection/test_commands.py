"""The management commands are thin wrappers; these run them without a database."""

import io
import json

import pytest

django_settings = pytest.importorskip("django.conf").settings


@pytest.fixture
def command_settings(tiny_card, weights_dir):
    if not django_settings.configured:
        pytest.skip("Django settings are not configured (run with the project's pytest config)")
    previous = django_settings.DETECTOR_WEIGHTS_DIR
    django_settings.DETECTOR_WEIGHTS_DIR = weights_dir
    yield tiny_card["name"]
    django_settings.DETECTOR_WEIGHTS_DIR = previous


def test_detect_command_prints_an_error_line_for_a_corrupt_file_and_goes_on(
    command_settings, synthetic_split, tmp_path
):
    from django.core.management import call_command

    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "ok.png").write_bytes(synthetic_split["splits"]["test"][0].path.read_bytes())
    out = io.StringIO()
    call_command("detect", str(tmp_path), model=command_settings, json=True, stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["path"].rsplit("/", 1)[-1] for line in lines] == ["broken.jpg", "ok.png"]
    assert "error" in lines[0]
    assert lines[1]["model"] == command_settings and 0.0 <= lines[1]["ai_probability"] <= 1.0


def test_detect_command_fails_clearly_for_an_untrained_model(command_settings):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no trained weights for ghost"):
        call_command("detect", "x.jpg", model="ghost", json=True)
