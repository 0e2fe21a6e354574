"""Every endpoint in the URL confs against every role: each has a rule here (a new endpoint without one fails
the suite), the roles it names get in, every other role is refused, no answer is a 5xx, and no refused
request changes anything."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from detection.models import Detection, Heatmap, ModelSetting, ThresholdChange
from moderation import roles, services
from moderation.models import Appeal, Decision, State, Submission
from tests.factories import UserFactory, image_bytes
from webhooks.models import Webhook, WebhookDelivery
from webhooks.services import webhook_create

ROLES = ("anonymous", "owner", "stranger", "moderator", "admin")
EVERYONE = set(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
OWNER_OR_REVIEWER = {"owner", "moderator", "admin"}
UPLOADERS = {"owner", "stranger", "admin"}
REVIEWERS = {"moderator", "admin"}
ADMINS = {"admin"}

# Who gets in, for both GET and POST unless a dict gives each method its own roles.
RULES: dict[str, set[str] | dict[str, set[str]]] = {
    "login": EVERYONE,
    "logout": EVERYONE,
    "home": SIGNED_IN,
    "upload": UPLOADERS,
    "scenery_suggestion": UPLOADERS,
    "submission_list": SIGNED_IN,
    "submission_statuses": SIGNED_IN,
    "submission_detail": OWNER_OR_REVIEWER,
    "submission_original": OWNER_OR_REVIEWER,
    "submission_appeal": {"owner"},
    "submission_decide": REVIEWERS,
    "submission_requeue": REVIEWERS,
    "submission_reanalyse": REVIEWERS,
    "submission_claim": REVIEWERS,
    "submission_release": REVIEWERS,
    "heatmap_request": REVIEWERS,
    "heatmap_layers_rendered": REVIEWERS,
    "heatmap_image": REVIEWERS,
    "queue": REVIEWERS,
    "queue_next": REVIEWERS,
    "queue_bulk_decide": REVIEWERS,
    "appeal_queue": REVIEWERS,
    "appeal_decide": REVIEWERS,
    "audit_log": REVIEWERS,
    "statistics": ADMINS,
    "statistics_csv": ADMINS,
    "health": EVERYONE,
    "model_settings": ADMINS,
    "model_activate": ADMINS,
    "model_thresholds": ADMINS,
    "model_report": ADMINS,
    "model_thresholds_revert": ADMINS,
    "recalibration_preview": ADMINS,
    "recalibration_apply": ADMINS,
    "api:token": EVERYONE,
    "api:schema": EVERYONE,
    "api:docs": EVERYONE,
    "api:redoc-bundle": EVERYONE,
    "api:submission-list": {"get": SIGNED_IN, "post": UPLOADERS},
    "api:submission-detail": OWNER_OR_REVIEWER,
    "api:submission-original": OWNER_OR_REVIEWER,
    "api:submission-appeal": {"owner"},
    "api:submission-decision": REVIEWERS,
    "api:submission-requeue": REVIEWERS,
    "api:submission-reanalyse": REVIEWERS,
    "api:heatmap-image": REVIEWERS,
    "api:queue": REVIEWERS,
    "api:appeal-list": REVIEWERS,
    "api:appeal-decision": REVIEWERS,
    "api:statistics": ADMINS,
    "api:webhook-list": ADMINS,
    "api:webhook-detail": ADMINS,
}


def allowed(name: str, method: str) -> set[str]:
    rule = RULES[name]
    return rule[method] if isinstance(rule, dict) else rule


def url_names(patterns=None, namespace: str = "") -> dict[str, URLPattern]:
    """Every named endpoint of ours; the Django admin is Django's own, staff-only site."""
    found = {}
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name != "admin":
                found |= url_names(pattern.url_patterns, pattern.namespace or namespace)
        elif pattern.name:
            found[f"{namespace}:{pattern.name}" if namespace else pattern.name] = pattern
    return found


def test_every_endpoint_in_the_url_confs_has_a_rule():
    assert set(url_names()) == set(RULES)


@pytest.fixture
def world(db, settings):
    """One of everything an endpoint can point at, owned by "owner"; rows written directly, no model run."""
    users = {
        "owner": UserFactory(role=roles.CONTRIBUTOR),
        "stranger": UserFactory(role=roles.CONTRIBUTOR),
        "moderator": UserFactory(role=roles.MODERATOR),
        "admin": UserFactory(role=roles.ADMIN),
    }
    flagged, appealed, rejected = (
        services.submission_create(
            contributor=users["owner"], stream=io.BytesIO(image_bytes(seed=seed)), original_name="p.jpg", scenery="sea"
        )
        for seed in (1, 2, 3)
    )
    Submission.objects.filter(pk__in=[flagged.pk, appealed.pk, rejected.pk]).update(
        state=State.FLAGGED, verdict="ai", ai_probability=0.9
    )
    detection = Detection.objects.create(
        submission=flagged,
        model_name=settings.DETECTOR_DEFAULT_MODEL,
        model_version="1",
        ai_probability=0.9,
        verdict="ai",
        threshold_low=0.3,
        threshold_high=0.6,
        latency_ms=1.0,
    )
    heatmap = Heatmap.objects.create(
        detection=detection, layer="features.13", image=default_storage.save("heatmaps/x.png", ContentFile(b"png"))
    )
    rejecter = UserFactory(role=roles.MODERATOR)  # so "moderator" may decide the appeal
    for submission in (appealed, rejected):
        services.submission_decide(
            submission_id=submission.pk, moderator=rejecter, outcome="reject", reason_code="ai-generated"
        )
    appeal = services.appeal_create(submission_id=appealed.pk, contributor=users["owner"], message="Mine.")
    webhook = webhook_create(owner=users["admin"], url="https://example.com/hook", events=["submission.decided"])
    threshold_change = ThresholdChange.objects.create(model_name="efficientnet_b0", kind=ThresholdChange.Kind.MANUAL)
    objects = {
        "submission": flagged.pk,
        "rejected": rejected.pk,
        "detection": detection.pk,
        "heatmap": heatmap.pk,
        "appeal": appeal.pk,
        "webhook": webhook.pk,
        "threshold_change": threshold_change.pk,
        "model": "efficientnet_b0",  # a shipped model with its report (the default awaits its re-run)
    }
    return users, objects


# Which object an endpoint's <pk> points at, by the endpoint's name.
KINDS = {
    "appeal_decide": "appeal",
    "api:appeal-decision": "appeal",
    "submission_appeal": "rejected",
    "api:submission-appeal": "rejected",
    "heatmap_image": "heatmap",
    "api:heatmap-image": "heatmap",
    "heatmap_request": "detection",
    "heatmap_layers_rendered": "detection",
    "api:webhook-detail": "webhook",
    "model_thresholds_revert": "threshold_change",
}


def url_for(name: str, pattern: URLPattern, objects: dict) -> str:
    converters = pattern.pattern.converters
    if not converters:
        return reverse(name)
    if "name" in converters:
        return reverse(name, kwargs={"name": objects["model"]})
    return reverse(name, kwargs={"pk": objects[KINDS.get(name, "submission")]})


JSON = {"format": "json"}


def body(objects: dict) -> dict:
    """One request body that every POST endpoint can read, so each is refused for who asks, not for what."""
    return {
        "outcome": "reject",
        "reason": "ai-generated",
        "note": "matrix",
        "message": "It is my photograph.",
        "model": objects["model"],
        "model_name": objects["model"],
        "ids": [objects["submission"]],
        "url": "https://example.com/other-hook",
        "events": ["submission.decided"],
        "layer": "features.13",
    }


def fingerprint() -> tuple:
    return (
        sorted(Submission.objects.values_list("pk", "state", "claimed_by_id", "failure_reason")),
        Decision.objects.count(),
        Appeal.objects.count(),
        AuditEvent.objects.count(),
        Webhook.objects.count(),
        WebhookDelivery.objects.count(),
        Detection.objects.count(),
        Heatmap.objects.count(),
        sorted(ModelSetting.objects.values_list("model_name", "is_active", "thresholds")),
        ThresholdChange.objects.count(),
    )


def client_for(role: str, users: dict, api: bool, client):
    if role == "anonymous":
        return APIClient() if api else client
    if api:
        api_client = APIClient()
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=users[role])[0].key}")
        return api_client
    client.force_login(users[role])
    return client


def refused(response) -> bool:
    # login_required sends the visitor to log in and come back; logging out also ends on the login page.
    to_login = response.status_code == 302 and response["Location"].startswith(reverse("login") + "?next=")
    return to_login or response.status_code in (401, 403, 404, 405)


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_role_gets_exactly_what_the_endpoint_allows(name, world, client):
    users, objects = world
    url = url_for(name, url_names()[name], objects)
    api = name.startswith("api:")
    for method in ("get", "post"):
        # Refused roles first: the allowed ones may change things the others are checked against.
        for role in sorted(ROLES, key=lambda r: r in allowed(name, method)):
            client.logout()
            before = fingerprint()
            caller = client_for(role, users, api, client)
            response = caller.get(url) if method == "get" else caller.post(url, body(objects), **JSON if api else {})
            status = response.status_code
            assert status < 500, (name, role, method, status)
            if role in allowed(name, method):
                assert status == 405 or not refused(response), (name, role, method, status)
            else:
                assert refused(response), (name, role, method, status)
                assert fingerprint() == before, (name, role, method, "a refused request changed something")
