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
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from common.deferred import BrokerUnavailable, task_publish, task_send
from webhooks.models import Event, Webhook, WebhookDelivery
from webhooks.selectors import webhooks_subscribed

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Portal-Signature"
EVENT_HEADER = "X-Portal-Event"
EVENT_ID_HEADER = "X-Portal-Event-Id"
TIMESTAMP_HEADER = "X-Portal-Timestamp"
RESPONSE_EXCERPT_CHARS = 1000
TIMEOUT_SECONDS = 10
# Retries after the first attempt (see delivery_retry_delay).
DELIVERY_MAX_RETRIES = 5


class DeliveryRetryable(Exception):
    """The receiver was unreachable, timed out, answered 5xx or 429: worth another attempt later."""


class DestinationRefused(Exception):
    """The URL or the address behind it is not one webhooks may reach: never worth another attempt."""


def _address_refusal(host: str, address: str) -> str | None:
    ip = ipaddress.ip_address(address)
    if ip.is_global and not ip.is_multicast:
        return None
    return f"{host} is a private or reserved address ({ip}); webhooks go to public addresses only."


def destination_refusal(*, url: str) -> str | None:
    """Why events may not be POSTed to `url`, judged without DNS, or None. Only http(s), and unless
    WEBHOOKS_ALLOW_PRIVATE_NETWORKS no literal private address or local name: a webhook must not let an
    account make the workers call into the portal's own network (database, broker, cloud metadata). Names
    are judged when connecting, on the very addresses connected to (`_GuardedHTTPConnection`)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "Not a valid URL."
    # Rows can be written without full_clean (shell, bulk updates): urllib must never get file:// or ftp://.
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Not an http(s) URL."
    if settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        return None
    host = parts.hostname
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{host} is a local name; webhooks go to public addresses only."
    try:
        return _address_refusal(host, host)
    except ValueError:
        return None  # a name, not an address


def _guarded_socket(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connection to `host` whose address is checked after resolution, so a name cannot be re-pointed at
    a private address between a check and the connect (DNS rebinding)."""
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        refusal = None if settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS else _address_refusal(host, sockaddr[0])
        if refusal:
            raise DestinationRefused(refusal)
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    raise last_error or OSError(f"{host} has no address")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = _guarded_socket(self.host, self.port, self.timeout)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        self.sock = self._context.wrap_socket(
            _guarded_socket(self.host, self.port, self.timeout), server_hostname=self.host
        )


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)


def webhook_create(*, owner: AbstractBaseUser, url: str, events: list[str], active: bool = True) -> Webhook:
    """Register a webhook; the secret is generated here and shown to its owner once."""
    webhook = Webhook(owner=owner, url=url, events=list(dict.fromkeys(events)), active=active)
    webhook.full_clean()
    refusal = destination_refusal(url=url)
    if refusal:
        raise ValidationError({"url": [refusal]})
    webhook.save()
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


def signature_for(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>": a receiver that also refuses old timestamps cannot be replayed to,
    since a captured request re-sent with a fresh timestamp no longer matches its signature."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_event_emit(
    *, event: str, data: dict, may_receive: Callable[[AbstractBaseUser], bool]
) -> list[WebhookDelivery]:
    """Record one delivery of `data` per subscribed webhook whose owner `may_receive` it, and send each
    once the caller's transaction commits. The caller (the app whose event it is) builds the data.

    Call it inside the transaction that made the change, so the event exists exactly when the change does.
    """
    if event not in Event.values:
        raise ValueError(f"Unknown webhook event {event!r}.")
    deliveries = []
    for webhook in webhooks_subscribed(event=event):
        if not may_receive(webhook.owner):
            continue
        event_id = uuid.uuid4()
        payload = {
            "id": str(event_id),
            "event": event,
            "created_at": timezone.now().isoformat(),
            "data": data,
        }
        delivery = WebhookDelivery.objects.create(webhook=webhook, event_id=event_id, event=event, payload=payload)
        deliveries.append(delivery)
        task_send("webhooks.tasks.webhook_deliver", delivery.pk)
    return deliveries


def delivery_retry_delay(*, retries: int) -> timedelta:
    """How long after its attempt number `retries` (from 0) failed a delivery is tried again: six attempts in
    all, backing off 30 s, 2 min, 8 min, 32 min, ~2 h."""
    return timedelta(seconds=30 * 4**retries)


def webhook_deliveries_resend(*, older_than: timedelta) -> list[int]:
    """Send again the deliveries whose message was lost, each as the attempt it owes:
    - never attempted `older_than` after they were recorded (or last sent again): the broker was away when
      their event was emitted, or their message was lost;
    - attempted, still pending, with a retry left, `older_than` past the time their retry was due and not sent
      again since their last attempt: the retry could not be scheduled (the broker was away when the attempt
      failed) or its message was lost. Each such retry is sent again once per due time.
    A copy that reaches a worker after the original is harmless: the attempt count lets exactly one of them POST.
    Stops at the first refusal by the broker; the next sweep carries on."""
    now = timezone.now()
    cutoff = now - older_than
    never_attempted = Q(attempts=0, created_at__lt=cutoff) & (Q(resent_at=None) | Q(resent_at__lt=cutoff))
    retry_overdue = Q()
    for retries in range(DELIVERY_MAX_RETRIES):
        retry_overdue |= Q(attempts=retries + 1, last_attempt_at__lt=cutoff - delivery_retry_delay(retries=retries))
    retry_overdue &= Q(resent_at=None) | Q(resent_at__lt=F("last_attempt_at"))
    owed = list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .filter(never_attempted | retry_overdue)
        .order_by("created_at")
        .values_list("pk", "attempts")[:500]
    )
    sent = []
    for delivery_id, attempts in owed:
        try:
            with transaction.atomic():
                WebhookDelivery.objects.filter(pk=delivery_id).update(resent_at=timezone.now())
                task_publish("webhooks.tasks.webhook_deliver", delivery_id, retries=attempts)
        except BrokerUnavailable:
            logger.warning("broker away: %s webhook deliveries left for the next sweep", len(owed) - len(sent))
            break
        sent.append(delivery_id)
    return sent


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # Requests go only to the registered URL: a redirect is reported as the final response, never followed.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxies from the environment: the guarded connections must reach the receiver itself.
_opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _GuardedHTTPHandler, _GuardedHTTPSHandler, _NoRedirects
)


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST once; raises DestinationRefused for a URL or an address webhooks may not reach."""
    refusal = destination_refusal(url=url)
    if refusal:
        raise DestinationRefused(refusal)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.read(RESPONSE_EXCERPT_CHARS).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(RESPONSE_EXCERPT_CHARS).decode("utf-8", errors="replace")


def webhook_delivery_attempt(*, delivery_id: int, attempt: int) -> WebhookDelivery:
    """POST a pending delivery once and record the outcome; raises DeliveryRetryable when worth retrying.

    `attempt` counts from 0. The broker hands a message that waits for its retry back after its visibility
    timeout, so several copies of one attempt can come due at once: the row lock and the attempt count let
    exactly one of them POST. A delivery that already succeeded or failed for good is left alone.
    Delivery is at least once (a worker lost mid-request retries it): receivers drop repeats by event id.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True).select_related("webhook").filter(pk=delivery_id)
        ).first()
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING or delivery.attempts != attempt:
            return delivery or WebhookDelivery.objects.get(pk=delivery_id)
        try:
            return _delivery_post(delivery=delivery)
        except DeliveryRetryable as exc:
            retryable = exc  # raised once the attempt's record is committed
    raise retryable


def _delivery_post(*, delivery: WebhookDelivery) -> WebhookDelivery:
    webhook = delivery.webhook
    if not webhook.active:
        return _delivery_record(
            delivery=delivery, status=WebhookDelivery.Status.FAILED, error="Webhook disabled.", attempted=False
        )

    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "photo-moderation-portal-webhooks/1",
        SIGNATURE_HEADER: signature_for(secret=webhook.secret, timestamp=timestamp, body=body),
        EVENT_HEADER: delivery.event,
        EVENT_ID_HEADER: str(delivery.event_id),
        TIMESTAMP_HEADER: timestamp,
    }
    try:
        code, excerpt = _post(url=webhook.url, body=body, headers=headers)
    except DestinationRefused as exc:
        return _delivery_record(
            delivery=delivery, status=WebhookDelivery.Status.FAILED, error=str(exc), attempted=False
        )
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


def webhook_deliveries_give_up_exhausted(*, older_than: timedelta) -> list[int]:
    """Mark as failed the deliveries whose last allowed attempt failed `older_than` ago yet are still pending:
    their worker died between recording that attempt and giving up, and nothing else would ever end them."""
    exhausted = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING,
        attempts__gt=DELIVERY_MAX_RETRIES,
        last_attempt_at__lt=timezone.now() - older_than,
    )
    ids = list(exhausted.values_list("pk", flat=True)[:500])
    WebhookDelivery.objects.filter(pk__in=ids, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED
    )
    return ids


def webhook_delivery_give_up(*, delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED
    )
