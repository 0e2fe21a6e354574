"""Writes for webhooks: registering them, emitting events and attempting one delivery.

Emitting only writes delivery rows and sends tasks on commit, so a receiver that is down or slow can never
hold up or fail the analysis or decision that emitted the event.
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from moderation.models import Decision, Submission
from moderation.selectors import submissions_visible_to
from webhooks.models import Event, Webhook, WebhookDelivery
from webhooks.selectors import webhooks_subscribed

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Portal-Signature"
EVENT_HEADER = "X-Portal-Event"
EVENT_ID_HEADER = "X-Portal-Event-Id"
TIMESTAMP_HEADER = "X-Portal-Timestamp"
RESPONSE_EXCERPT_CHARS = 1000
TIMEOUT_SECONDS = 10


class DeliveryRetryable(Exception):
    """The receiver was unreachable, timed out, answered 5xx or 429: worth another attempt later."""


def destination_refusal(*, url: str, resolve: bool) -> str | None:
    """Why events may not be POSTed to `url`, or None. Only http(s), and unless
    WEBHOOKS_ALLOW_PRIVATE_NETWORKS only public addresses: a webhook must not let an account make the
    workers call into the portal's own network (database, broker, cloud metadata). `resolve` looks the
    host name up (at delivery); without it only literal addresses and local names are judged (at
    registration, so a name that resolves later is not refused for a DNS hiccup)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return "Not a valid URL."
    # Rows can be written without full_clean (shell, bulk updates): urllib must never get file:// or ftp://.
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Not an http(s) URL."
    if settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        return None
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            return f"{host} is a local name; webhooks go to public addresses only."
        if not resolve:
            return None
        try:
            found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            return None  # not resolvable now: the attempt fails as a network error and is retried
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            return f"{host} is a private or reserved address ({address}); webhooks go to public addresses only."
    return None


def webhook_create(*, owner: AbstractBaseUser, url: str, events: list[str], active: bool = True) -> Webhook:
    """Register a webhook; the secret is generated here and shown to its owner once."""
    webhook = Webhook(owner=owner, url=url, events=list(dict.fromkeys(events)), active=active)
    webhook.full_clean()
    refusal = destination_refusal(url=url, resolve=False)
    if refusal:
        raise ValidationError({"url": [refusal]})
    webhook.save()
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


def signature_for(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _submission_payload(*, submission: Submission) -> dict:
    data = {
        "id": submission.pk,
        "state": submission.state,
        "verdict": submission.verdict,
        "ai_probability": submission.ai_probability,
        "scenery": submission.scenery,
        "declared_ai": submission.declared_ai,
        "original_name": submission.original_name,
        "contributor": submission.contributor.get_username(),
        "created_at": submission.created_at.isoformat(),
        "state_changed_at": submission.state_changed_at.isoformat(),
    }
    # The final decision: the appeal's when there was one, else the review's.
    decision = (
        Decision.objects.filter(submission=submission)
        .select_related("reason", "moderator")
        .order_by("-created_at", "-id")
        .first()
    )
    if decision is not None:
        data["decision"] = {
            "stage": decision.stage,
            "outcome": decision.outcome,
            "reason": decision.reason.code,
            "reason_label": decision.reason.label,
            "note": decision.note,
            "moderator": decision.moderator.get_username(),
            "created_at": decision.created_at.isoformat(),
        }
    return data


def webhook_event_emit(*, event: str, submission_id: int) -> list[WebhookDelivery]:
    """Record one delivery per subscribed webhook and send each once the caller's transaction commits.

    Call it inside the transaction that made the change, so the event exists exactly when the change does.
    """
    if event not in Event.values:
        raise ValueError(f"Unknown webhook event {event!r}.")
    submission = Submission.objects.select_related("contributor").get(pk=submission_id)
    payload_data = _submission_payload(submission=submission)
    deliveries = []
    for webhook in webhooks_subscribed(event=event):
        # A hook only ever carries what its owner may see now, so a demoted account stops receiving data.
        if not submissions_visible_to(user=webhook.owner).filter(pk=submission_id).exists():
            continue
        event_id = uuid.uuid4()
        payload = {
            "id": str(event_id),
            "event": event,
            "created_at": timezone.now().isoformat(),
            "data": {"submission": payload_data},
        }
        delivery = WebhookDelivery.objects.create(webhook=webhook, event_id=event_id, event=event, payload=payload)
        deliveries.append(delivery)
        transaction.on_commit(partial(_delivery_send, delivery.pk))
    return deliveries


def _delivery_send(delivery_id: int) -> None:
    from webhooks.tasks import webhook_deliver  # the tasks module imports this one

    webhook_deliver.delay(delivery_id)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # Requests go only to the registered URL: a redirect is reported as the final response, never followed.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.read(RESPONSE_EXCERPT_CHARS).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(RESPONSE_EXCERPT_CHARS).decode("utf-8", errors="replace")


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery:
    """POST a pending delivery once and record the outcome; raises DeliveryRetryable when worth retrying.

    A delivery that already succeeded or failed for good is left alone, so a redelivered task does nothing.
    Delivery is at least once (a worker lost mid-request retries it): receivers drop repeats by event id.
    """
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    if delivery.status != WebhookDelivery.Status.PENDING:
        return delivery
    webhook = delivery.webhook
    if not webhook.active:
        return _delivery_record(
            delivery=delivery, status=WebhookDelivery.Status.FAILED, error="Webhook disabled.", attempted=False
        )
    refusal = destination_refusal(url=webhook.url, resolve=True)
    if refusal:
        return _delivery_record(delivery=delivery, status=WebhookDelivery.Status.FAILED, error=refusal, attempted=False)

    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "photo-moderation-portal-webhooks/1",
        SIGNATURE_HEADER: signature_for(secret=webhook.secret, body=body),
        EVENT_HEADER: delivery.event,
        EVENT_ID_HEADER: str(delivery.event_id),
        TIMESTAMP_HEADER: str(int(time.time())),
    }
    try:
        code, excerpt = _post(url=webhook.url, body=body, headers=headers)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        error = str(getattr(exc, "reason", exc)) or exc.__class__.__name__
        _delivery_record(delivery=delivery, status=WebhookDelivery.Status.PENDING, error=error)
        raise DeliveryRetryable(error) from exc

    if 200 <= code < 300:
        return _delivery_record(
            delivery=delivery, status=WebhookDelivery.Status.DELIVERED, code=code, excerpt=excerpt, delivered=True
        )
    if code >= 500 or code == 429:
        _delivery_record(
            delivery=delivery, status=WebhookDelivery.Status.PENDING, code=code, excerpt=excerpt, error=f"HTTP {code}"
        )
        raise DeliveryRetryable(f"HTTP {code}")
    # Other 4xx (and refused redirects): the receiver rejected this request; sending it again will not help.
    return _delivery_record(
        delivery=delivery, status=WebhookDelivery.Status.FAILED, code=code, excerpt=excerpt, error=f"HTTP {code}"
    )


def _delivery_record(
    *,
    delivery: WebhookDelivery,
    status: str,
    code: int | None = None,
    excerpt: str = "",
    error: str = "",
    delivered: bool = False,
    attempted: bool = True,
) -> WebhookDelivery:
    now = timezone.now()
    delivery.status = status
    delivery.attempts += attempted
    delivery.response_code = code
    delivery.response_excerpt = excerpt[:RESPONSE_EXCERPT_CHARS]
    delivery.error = error[:RESPONSE_EXCERPT_CHARS]
    delivery.last_attempt_at = now
    delivery.delivered_at = now if delivered else None
    delivery.save(
        update_fields=[
            "status",
            "attempts",
            "response_code",
            "response_excerpt",
            "error",
            "last_attempt_at",
            "delivered_at",
        ]
    )
    logger.info("webhook delivery %s attempt %s: %s %s", delivery.pk, delivery.attempts, status, error or code)
    return delivery


def webhook_delivery_give_up(*, delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED
    )
