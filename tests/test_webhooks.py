import hashlib
import hmac
import http.client
import io
import json
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.exceptions import Reject
from django.contrib.auth.models import Group
from django.utils import timezone

from moderation import services as moderation_services
from moderation.events import submission_event_emit
from moderation.models import State, Submission
from portal.celery import app as celery_app
from tests.factories import UserFactory, image_bytes
from tests.workers import broker_switched, port_free
from webhooks import services
from webhooks.models import Event, Webhook, WebhookDelivery
from webhooks.services import DELIVERY_MAX_RETRIES
from webhooks.tasks import webhook_deliver, webhook_deliveries_sweep


@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that checks signatures the way a subscriber should: over the timestamp
    and the body, refusing timestamps more than five minutes old."""

    url: str
    secret: str = ""
    # Status codes to answer with, in order; 200 once they run out.
    codes: list[int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True  # the receiver is on loopback, as on a developer's machine
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            timestamp = self.headers.get("X-Portal-Timestamp", "0")
            signed = timestamp.encode() + b"." + body
            expected = "sha256=" + hmac.new(state.secret.encode(), signed, hashlib.sha256).hexdigest()
            fresh = abs(time.time() - int(timestamp)) < 300
            valid = fresh and hmac.compare_digest(expected, self.headers.get("X-Portal-Signature", ""))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body), "signature_valid": valid}
            )
            code = state.codes.pop(0) if state.codes else (200 if valid else 401)
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "/elsewhere")
            self.end_headers()
            self.wfile.write(b"thanks" if code == 200 else f"status {code}".encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def hook(platform_admin, receiver):
    webhook = services.webhook_create(
        owner=platform_admin, url=receiver.url, events=[Event.SUBMISSION_ANALYSED, Event.SUBMISSION_DECIDED]
    )
    receiver.secret = webhook.secret
    return webhook


@pytest.fixture
def flagged(contributor):
    """Uploaded through the real service and set flagged as analysis would: these tests are about delivery."""
    submission = moderation_services.submission_create(
        contributor=contributor, stream=io.BytesIO(image_bytes()), original_name="photo.jpg", scenery="forest"
    )
    Submission.objects.filter(pk=submission.pk).update(state=State.FLAGGED, verdict="ai", ai_probability=0.93)
    submission.refresh_from_db()
    return submission


@pytest.fixture
def emit(django_capture_on_commit_callbacks):
    """Emit as the analysis and decision services will: inside a transaction, sent once it commits."""

    def run(event: str, submission_id: int) -> list[WebhookDelivery]:
        with django_capture_on_commit_callbacks(execute=True):
            deliveries = submission_event_emit(event=event, submission_id=submission_id)
        for delivery in deliveries:
            delivery.refresh_from_db()
        return deliveries

    return run


def test_a_decision_is_delivered_signed_and_the_receiver_verifies_the_signature(
    hook, receiver, flagged, moderator, emit
):
    moderation_services.submission_decide(
        submission_id=flagged.pk, moderator=moderator, outcome="reject", reason_code="ai-generated", note="Hands"
    )
    [delivery] = emit(Event.SUBMISSION_DECIDED, flagged.pk)

    [request] = receiver.requests
    assert request["signature_valid"]
    headers = request["headers"]
    assert headers["X-Portal-Event"] == "submission.decided"
    assert headers["X-Portal-Event-Id"] == str(delivery.event_id) == request["body"]["id"]
    assert headers["X-Portal-Timestamp"].isdigit()
    assert headers["Content-Type"] == "application/json"
    submission = request["body"]["data"]["submission"]
    assert (submission["id"], submission["state"], submission["verdict"]) == (flagged.pk, "rejected", "ai")
    assert submission["decision"]["reason"] == "ai-generated"
    assert submission["decision"]["note"] == "Hands"
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 200)
    assert delivery.response_excerpt == "thanks"
    assert delivery.delivered_at is not None


def test_a_receiver_with_another_secret_rejects_the_delivery_and_it_is_not_retried(hook, receiver, flagged, emit):
    receiver.secret = "not-the-secret"
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert not receiver.requests[0]["signature_valid"]
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, 401)


def test_a_captured_delivery_replayed_with_a_fresh_timestamp_fails_the_signature(hook, receiver, flagged, emit):
    emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    [captured] = receiver.requests
    assert captured["signature_valid"]
    body = json.dumps(captured["body"], separators=(",", ":"), sort_keys=True).encode()
    # Within the five minutes, the receiver drops a repeat by its event id; after them, by its timestamp.
    host, port = urllib.parse.urlsplit(receiver.url).netloc.split(":")
    replay = http.client.HTTPConnection(host, int(port), timeout=5)
    headers = {
        "Content-Type": "application/json",
        "X-Portal-Signature": captured["headers"]["X-Portal-Signature"],
        "X-Portal-Timestamp": str(int(time.time()) + 1),
    }
    replay.request("POST", "/hook", body=body, headers=headers)
    assert replay.getresponse().status == 401
    assert [r["signature_valid"] for r in receiver.requests] == [True, False]


def test_an_analysed_event_carries_the_verdict_and_probability(hook, receiver, flagged, emit):
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    body = receiver.requests[0]["body"]
    assert body["event"] == "submission.analysed"
    assert body["data"]["submission"]["state"] == "flagged"
    assert body["data"]["submission"]["ai_probability"] == flagged.ai_probability
    assert "decision" not in body["data"]["submission"]
    assert delivery.payload == body


def test_a_500_is_retried_and_each_attempt_recorded_until_it_succeeds(hook, receiver, flagged, emit):
    receiver.codes = [500, 503, 429]
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert len(receiver.requests) == 4
    # Every attempt carries the same event id, so the receiver can drop duplicates.
    assert len({r["headers"]["X-Portal-Event-Id"] for r in receiver.requests}) == 1
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 4, 200)
    assert delivery.error == ""


def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_retry(hook, receiver, flagged, emit):
    receiver.codes = [500] * 20
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert len(receiver.requests) == DELIVERY_MAX_RETRIES + 1
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", DELIVERY_MAX_RETRIES + 1, 500)
    assert delivery.error == "HTTP 500"


def test_an_unreachable_receiver_is_retried_as_a_network_error(platform_admin, flagged, emit):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    services.webhook_create(owner=platform_admin, url=f"http://127.0.0.1:{port}/", events=["submission.analysed"])
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", DELIVERY_MAX_RETRIES + 1, None)
    assert "refused" in delivery.error.lower()


def test_a_4xx_is_final_and_a_redirect_is_never_followed(hook, receiver, flagged, emit, platform_admin):
    receiver.codes = [404]
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, 404)

    receiver.requests.clear()
    receiver.codes = [302]
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    assert (delivery.status, delivery.response_code) == ("failed", 302)


def test_inactive_hooks_and_other_events_get_no_delivery(platform_admin, receiver, flagged, emit):
    services.webhook_create(owner=platform_admin, url=receiver.url, events=["submission.analysed"], active=False)
    services.webhook_create(owner=platform_admin, url=receiver.url, events=["submission.decided"])
    assert emit(Event.SUBMISSION_ANALYSED, flagged.pk) == []
    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


def test_a_hook_whose_owner_may_no_longer_see_the_submission_gets_nothing(hook, receiver, flagged, emit):
    hook.owner.groups.set([Group.objects.get(name="contributor")])
    assert emit(Event.SUBMISSION_ANALYSED, flagged.pk) == []
    assert receiver.requests == []


def test_emitting_sends_nothing_before_the_transaction_commits(
    hook, receiver, flagged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [delivery] = submission_event_emit(event=Event.SUBMISSION_ANALYSED, submission_id=flagged.pk)
    assert len(callbacks) == 1
    assert receiver.requests == []
    assert delivery.status == "pending"


def test_a_task_that_runs_twice_delivers_once(hook, receiver, flagged, emit):
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    webhook_deliver.delay(delivery.pk)
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1
    assert delivery.attempts == 1


def test_a_redelivered_copy_of_a_retry_that_was_already_made_does_not_post_again(hook, receiver, flagged, emit):
    receiver.codes = [500]
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    # The broker hands back a message that waited past its visibility timeout: a copy of retry 1 comes due.
    webhook_deliver.apply(args=[delivery.pk], retries=1)
    delivery.refresh_from_db()
    assert len(receiver.requests) == 2
    assert delivery.attempts == 2


def test_a_hook_disabled_after_the_event_was_emitted_is_not_called(
    hook, receiver, flagged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [delivery] = submission_event_emit(event=Event.SUBMISSION_ANALYSED, submission_id=flagged.pk)
    hook.active = False
    hook.save()
    for callback in callbacks:
        callback()
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert (delivery.status, delivery.error, delivery.attempts) == ("failed", "Webhook disabled.", 0)


def test_an_unknown_event_is_a_programming_error(flagged):
    with pytest.raises(ValueError, match="Unknown webhook event"):
        submission_event_emit(event="submission.deleted", submission_id=flagged.pk)


def test_webhooks_and_deliveries_are_visible_in_the_django_admin(client, hook, receiver, flagged, emit):
    emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert receiver.url in client.get("/django-admin/webhooks/webhook/").content.decode()
    assert client.get(f"/django-admin/webhooks/webhook/{hook.pk}/change/").status_code == 200
    deliveries = client.get("/django-admin/webhooks/webhookdelivery/")
    assert deliveries.status_code == 200
    assert "submission.analysed" in deliveries.content.decode()


# --- Wired into analysis and decisions ------------------------------------------------


def test_an_analysis_that_flags_notifies_subscribers(hook, receiver, contributor, submission_make, force_verdict):
    force_verdict("ai")
    submission = submission_make(contributor=contributor)
    [request] = receiver.requests
    assert request["signature_valid"]
    assert request["body"]["event"] == "submission.analysed"
    assert request["body"]["data"]["submission"]["state"] == "flagged"
    assert request["body"]["data"]["submission"]["id"] == submission.pk


def test_a_receiver_that_is_down_never_holds_up_analysis(platform_admin, contributor, submission_make, force_verdict):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    services.webhook_create(owner=platform_admin, url=f"http://127.0.0.1:{port}/", events=["submission.analysed"])
    force_verdict("real")
    submission = submission_make(contributor=contributor)
    assert submission.state == State.CLEARED
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", DELIVERY_MAX_RETRIES + 1)


def test_review_and_appeal_decisions_notify_subscribers(
    hook, receiver, flagged, contributor, moderator, second_moderator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        moderation_services.submission_decide(
            submission_id=flagged.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
        )
    with django_capture_on_commit_callbacks(execute=True):
        appeal = moderation_services.appeal_create(submission_id=flagged.pk, contributor=contributor, message="Film")
        moderation_services.appeal_decide(
            appeal_id=appeal.pk, moderator=second_moderator, outcome="approve", reason_code="camera-evidence"
        )
    decisions = [r["body"]["data"]["submission"]["decision"] for r in receiver.requests]
    assert [(d["stage"], d["outcome"]) for d in decisions] == [("review", "reject"), ("appeal", "approve")]
    assert {r["body"]["event"] for r in receiver.requests} == {"submission.decided"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/hook",
        "http://localhost:6379/",
        "http://redis.internal/",
    ],
)
def test_registering_a_webhook_to_a_private_or_local_address_is_refused_in_production(settings, platform_admin, url):
    from django.core.exceptions import ValidationError

    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(ValidationError, match="public addresses only"):
        services.webhook_create(owner=platform_admin, url=url, events=[Event.SUBMISSION_DECIDED])
    assert not Webhook.objects.exists()


def test_a_public_address_is_accepted(settings, platform_admin):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    webhook = services.webhook_create(
        owner=platform_admin, url="https://93.184.215.14/hook", events=[Event.SUBMISSION_DECIDED]
    )
    assert services.destination_refusal(url=webhook.url) is None


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_that_resolves_to_a_private_address_is_not_called_at_delivery(
    settings, hook, receiver, flagged, emit, monkeypatch, scheme
):
    # A name that pointed elsewhere when registered (or re-points between lookups): the address is judged
    # on the resolution the connection itself uses.
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    port = receiver.url.split(":")[2].split("/")[0]
    Webhook.objects.filter(pk=hook.pk).update(url=f"{scheme}://hooks.partner.test:{port}/hook")
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        return real_getaddrinfo("127.0.0.1" if host == "hooks.partner.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempts == 0
    assert "private or reserved address (127.0.0.1)" in delivery.error
    assert receiver.requests == [] and lookups == ["hooks.partner.test"]


def test_a_row_pointed_at_a_file_url_is_never_opened(hook, receiver, flagged, emit):
    # Rows can be changed without validation (shell, bulk updates); delivery checks the scheme itself.
    Webhook.objects.filter(pk=hook.pk).update(url="file:///etc/passwd")
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.FAILED, 0)
    assert delivery.error == "Not an http(s) URL."
    assert delivery.response_excerpt == ""


def test_a_delivery_emitted_while_the_broker_is_away_is_sent_by_the_sweeper_later(
    hook, receiver, flagged, emit, settings, django_capture_on_commit_callbacks
):
    with broker_switched(f"redis://127.0.0.1:{port_free()}/0"):  # nothing listens there
        celery_app.conf.task_always_eager = False
        # Each commits and returns; nothing raises.
        [owed] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
        [young] = emit(Event.SUBMISSION_DECIDED, flagged.pk)
        celery_app.conf.task_always_eager = True
    assert {(d.status, d.attempts) for d in (owed, young)} == {(WebhookDelivery.Status.PENDING, 0)}
    assert receiver.requests == []
    long_ago = timezone.now() - settings.WEBHOOK_RESEND_AFTER - timedelta(seconds=1)
    WebhookDelivery.objects.filter(pk=owed.pk).update(created_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliveries_sweep.apply().get() == 1

    assert [r["body"]["id"] for r in receiver.requests] == [str(owed.event_id)]
    assert receiver.requests[0]["signature_valid"]
    assert WebhookDelivery.objects.get(pk=owed.pk).status == WebhookDelivery.Status.DELIVERED
    assert WebhookDelivery.objects.get(pk=young.pk).attempts == 0  # not owed yet
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliveries_sweep.apply().get() == 0


def test_a_retry_that_could_not_be_scheduled_while_the_broker_was_away_is_sent_by_the_sweeper_once(
    hook, receiver, flagged, settings, django_capture_on_commit_callbacks
):
    receiver.codes = [500]
    with django_capture_on_commit_callbacks(execute=False):
        [delivery] = submission_event_emit(event=Event.SUBMISSION_ANALYSED, submission_id=flagged.pk)
    with broker_switched(f"redis://127.0.0.1:{port_free()}/0"):  # nothing listens there
        celery_app.conf.task_always_eager = False
        # As a worker runs the first attempt: the receiver answers 500 and scheduling the retry fails, so Celery
        # rejects the message without requeueing it; nothing else will ever send this delivery.
        webhook_deliver.push_request(id=str(uuid.uuid4()), args=[delivery.pk], kwargs={}, called_directly=False)
        try:
            with pytest.raises(Reject):
                webhook_deliver.run(delivery.pk)
        finally:
            webhook_deliver.pop_request()
        celery_app.conf.task_always_eager = True
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.PENDING, 1)

    def sweep() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return webhook_deliveries_sweep.apply().get()

    assert sweep() == 0  # the retry is not due yet: it may still be on its way
    overdue = settings.WEBHOOK_RESEND_AFTER + services.delivery_retry_delay(retries=0) + timedelta(seconds=1)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(last_attempt_at=timezone.now() - overdue)
    with django_capture_on_commit_callbacks(execute=False) as sent:  # held back: the resent copy not run yet
        assert webhook_deliveries_sweep.apply().get() == 1
    assert sweep() == 0  # once per due time, even before the copy has run
    for callback in sent:
        callback()

    delivery.refresh_from_db()
    assert len(receiver.requests) == 2
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.DELIVERED, 2)  # sent as retry 1


def test_the_sweeper_never_resends_a_delivery_delivered_or_given_up(hook, receiver, flagged, emit):
    receiver.codes = [500] * (DELIVERY_MAX_RETRIES + 1)
    [given_up] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    [delivered] = emit(Event.SUBMISSION_DECIDED, flagged.pk)
    assert (given_up.status, delivered.status) == (WebhookDelivery.Status.FAILED, WebhookDelivery.Status.DELIVERED)
    long_ago = timezone.now() - timedelta(days=30)
    WebhookDelivery.objects.update(last_attempt_at=long_ago, created_at=long_ago)
    receiver.requests.clear()
    assert webhook_deliveries_sweep.apply().get() == 0
    assert receiver.requests == []


def test_the_sweeper_ends_a_delivery_whose_worker_died_after_its_last_attempt_before_giving_up(
    hook, receiver, flagged, emit
):
    receiver.codes = [500] * (DELIVERY_MAX_RETRIES + 1)
    [delivery] = emit(Event.SUBMISSION_ANALYSED, flagged.pk)
    assert delivery.attempts == DELIVERY_MAX_RETRIES + 1
    # As left by a worker killed between recording its last attempt and giving up.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.PENDING)
    receiver.requests.clear()
    assert webhook_deliveries_sweep.apply().get() == 0  # its last attempt is too recent to tell
    WebhookDelivery.objects.update(last_attempt_at=timezone.now() - timedelta(days=1))
    assert webhook_deliveries_sweep.apply().get() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.attempts == DELIVERY_MAX_RETRIES + 1
    assert receiver.requests == []  # ended, never tried a seventh time
