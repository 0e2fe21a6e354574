"""End-to-end checks in Debian's Chromium: the pages moderators and contributors use, with their JavaScript.

They also write the screenshots in docs/screenshots/ that docs/dashboard.md shows.
"""

import base64
import os
from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse

from detection.models import ModelSetting
from moderation import services
from moderation.models import State, Submission
from tests.factories import PASSWORD, image_bytes
from tests.scenery_heads import SUGGESTED

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the tests stay synchronous.
    # Started per test, after the database is set up: while the loop runs, this thread gets other
    # database connections, and the restore of the migrations' data must happen on the usual one.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # The connections this test opened while the loop ran; left open, the test database cannot be dropped.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page_as(browser, live_server):
    """A logged-in page per user, each in its own browser context (its own cookies). Whatever the pages do
    must pass the Content-Security-Policy: a violation fails the test."""
    contexts = []
    violations = []

    def open_page(user):
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
        page.set_default_timeout(15_000)
        page.goto(reverse("login"))
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert violations == []


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


DROP_FILES = """([files]) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, { type: "image/jpeg" }));
  }
  const zone = document.getElementById("dropzone");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
}"""


def test_a_contributor_drops_two_photos_and_watches_them_being_analysed(page_as, contributor, moderator, force_verdict):
    force_verdict("ai")
    page = page_as(contributor)
    page.goto(reverse("upload"))
    files = [
        {"name": f"dune-{seed}.jpg", "data": base64.b64encode(image_bytes(seed=seed, size=(320, 240))).decode()}
        for seed in (11, 12)
    ]
    page.evaluate(DROP_FILES, [files])
    rows = page.locator("#file-rows tbody tr")
    assert rows.count() == 2
    rows.nth(1).locator("select").select_option("sea")
    rows.nth(1).locator("input[type=checkbox]").check()
    assert page.locator("#defaults").is_hidden()  # each row has its own scenery and declaration now
    page.click("#upload-button")
    # The rows follow each upload through analysis on the page itself.
    # Predicates are functions, not strings: the CSP forbids eval, which string predicates need.
    page.wait_for_function(
        "() => (states => states.length === 2 && states.every(e => e.textContent === 'Flagged for review'))"
        "([...document.querySelectorAll('.js-analysis')])"
    )
    screenshot(page, "upload")

    first, second = Submission.objects.filter(contributor=contributor).order_by("pk")
    assert (second.scenery, second.declared_ai, second.state) == ("sea", True, State.FLAGGED)

    services.submission_decide(
        submission_id=second.pk, moderator=moderator, outcome="reject", reason_code="undeclared-ai", note="Sky tiles"
    )
    # Back to "analysing", then finished while the list is open: the row changes without a reload.
    Submission.objects.filter(pk=first.pk).update(state=State.ANALYSING)
    page.goto(reverse("submission_list"))
    rejected = page.locator(f'tr[data-id="{second.pk}"]')
    assert rejected.locator(".js-outcome").inner_text().startswith("Generative AI used but not declared: Sky tiles")
    assert rejected.locator("a.js-appeal").is_visible()
    row = page.locator(f'tr[data-id="{first.pk}"]')
    assert row.locator(".js-state").inner_text() == "Analysing"
    Submission.objects.filter(pk=first.pk).update(state=State.FLAGGED)
    page.wait_for_function(
        f"() => document.querySelector('tr[data-id=\"{first.pk}\"]').dataset.state === 'flagged'", timeout=10_000
    )
    assert row.locator(".js-state").inner_text() == "Flagged for review"
    screenshot(page, "submissions")


def test_the_upload_page_preselects_the_scenery_suggested_for_a_dropped_photo(
    page_as, contributor, scenery_head, force_verdict
):
    force_verdict("real")
    page = page_as(contributor)
    page.goto(reverse("upload"))
    page.evaluate(DROP_FILES, [[{"name": "ice.jpg", "data": base64.b64encode(scenery_head).decode()}]])
    row = page.locator("#file-rows tbody tr").first
    # Nothing is pre-selected until the suggestion comes in; then it is, with a visible note.
    row.locator(".suggested").wait_for(state="visible")
    assert row.locator("select").input_value() == SUGGESTED
    page.click("#upload-button")
    page.wait_for_function("() => document.querySelector('.js-analysis')?.textContent === 'Cleared'")
    submission = Submission.objects.get(contributor=contributor)
    assert (submission.scenery, submission.suggested_scenery) == (SUGGESTED, SUGGESTED)


def test_a_contributor_overrules_a_suggested_scenery(page_as, contributor, scenery_head, force_verdict):
    force_verdict("real")
    page = page_as(contributor)
    page.goto(reverse("upload"))
    page.evaluate(DROP_FILES, [[{"name": "ice.jpg", "data": base64.b64encode(scenery_head).decode()}]])
    row = page.locator("#file-rows tbody tr").first
    row.locator(".suggested").wait_for(state="visible")
    row.locator("select").select_option("street")
    assert row.locator(".suggested").is_hidden()
    page.click("#upload-button")
    page.wait_for_function("() => document.querySelector('.js-analysis')?.textContent === 'Cleared'")
    submission = Submission.objects.get(contributor=contributor)
    assert (submission.scenery, submission.suggested_scenery) == ("street", SUGGESTED)


def test_a_moderator_reviews_with_the_keyboard(page_as, contributor, moderator, submission_make, force_verdict):
    force_verdict("ai")
    older = submission_make(contributor=contributor, data=image_bytes(seed=21, size=(320, 240)))
    newer = submission_make(contributor=contributor, data=image_bytes(seed=22, size=(320, 240)), scenery="sea")
    Submission.objects.filter(pk=older.pk).update(ai_probability=0.97)
    Submission.objects.filter(pk=newer.pk).update(ai_probability=0.64)
    page = page_as(moderator)
    page.goto(reverse("queue"))
    screenshot(page, "queue")

    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{reverse('submission_detail', args=[older.pk])}")
    page.locator("#heatmap").wait_for()
    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("h")
    assert page.eval_on_selector("#heatmap", "img => img.style.opacity") == "0"
    page.keyboard.press("h")
    page.fill("#opacity", "60")
    assert page.eval_on_selector("#heatmap", "img => img.style.opacity") == "0.6"
    screenshot(page, "review")

    page.keyboard.press("a")
    page.wait_for_url(f"**{reverse('submission_detail', args=[newer.pk])}")
    assert Submission.objects.get(pk=older.pk).state == State.APPROVED
    assert "approved" in page.locator("#flashes").inner_text()


def test_a_requested_heatmap_layer_appears_without_a_reload(
    page_as, contributor, moderator, submission_make, force_verdict
):
    from detection.services import heatmap_render

    force_verdict("ai")
    submission = submission_make(contributor=contributor, data=image_bytes(seed=31, size=(320, 240)))
    detection = submission.detections.get()
    page = page_as(moderator)
    page.goto(
        f"{reverse('submission_detail', args=[submission.pk])}?detection={detection.pk}&layer=features.6&rendering=1"
    )
    assert page.locator("#heatmap-waiting").is_visible()
    assert "features.13" in page.get_attribute("#heatmap", "alt")
    heatmap_render(detection_id=detection.pk, layer="features.6")  # as the worker would, while the page waits
    page.wait_for_function("() => document.getElementById('heatmap').alt.includes('features.6')", timeout=15_000)
    assert "rendering" not in page.url and page.locator("#heatmap-waiting").count() == 0


def test_an_admin_sees_the_statistics_charts_drawn(
    page_as, contributor, moderator, platform_admin, submission_make, force_verdict, tiny_detector, settings
):
    force_verdict("ai")
    for seed, scenery, outcome, reason in [
        (31, "forest", "reject", "ai-generated"),
        (32, "forest", "approve", "detector-false-positive"),
        (33, "sea", "reject", "ai-generated"),
    ]:
        submission = submission_make(contributor=contributor, data=image_bytes(seed=seed), scenery=scenery)
        services.submission_decide(
            submission_id=submission.pk, moderator=moderator, outcome=outcome, reason_code=reason
        )
    # A cleared upload drawn for a spot check and approved, so the live rates have both strata.
    settings.SPOT_CHECK_SHARE = 1.0
    force_verdict("real")
    spot = submission_make(contributor=contributor, data=image_bytes(seed=34), scenery="forest")
    services.submission_decide(
        submission_id=spot.pk, moderator=moderator, outcome="approve", reason_code="camera-evidence"
    )
    page = page_as(platform_admin)
    page.goto(f"{reverse('statistics')}?model_name={tiny_detector}")
    for canvas_id in ("chart-scenery", "chart-daily", "chart-models", "chart-live-weeks", "chart-live-scenery"):
        page.wait_for_function(f"() => Chart.getChart('{canvas_id}') !== undefined")
        painted = page.evaluate(
            """(id) => {
                const canvas = document.getElementById(id);
                const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
                return { width: canvas.width, painted };
            }""",
            canvas_id,
        )
        assert painted["width"] > 100 and painted["painted"] > 1000, (canvas_id, painted)
    forest = page.locator('#by-scenery tr[data-scenery="forest"] td')
    assert [forest.nth(i).inner_text() for i in range(5)] == ["3", "2", "67\u00a0%", "2", "1"]
    live_forest = page.locator('#live-by-scenery tr[data-key="Forest"] td')
    assert live_forest.nth(2).inner_text() == "3"  # decided: one AI, one false flag, one spot check
    screenshot(page, "statistics")
    ModelSetting.objects.filter(model_name=tiny_detector).update(thresholds={"forest": {"low": 0.35, "high": 0.8}})
    page.goto(reverse("model_settings"))
    assert page.locator("#active-model").inner_text() == tiny_detector
    screenshot(page, "model-settings")
