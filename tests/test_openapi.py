from pathlib import Path

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from common import deferred
from tests.factories import UserFactory

COMMITTED_SCHEMA = Path(__file__).resolve().parent.parent / "api" / "openapi.yaml"
REGENERATE = "python manage.py spectacular --file api/openapi.yaml --validate --fail-on-warn"

schema = schemathesis.openapi.from_path(COMMITTED_SCHEMA)


def test_the_committed_schema_is_what_the_code_generates(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", file=str(generated), validate=True, fail_on_warn=True)
    assert generated.read_text() == COMMITTED_SCHEMA.read_text(), (
        f"api/openapi.yaml is out of date with the API; regenerate it with `{REGENERATE}` and commit it."
    )


def test_the_schema_is_served_and_the_docs_page_loads_its_script_from_this_server(client, db):
    assert client.get("/api/schema/").status_code == 200
    page = client.get("/api/docs/").content.decode()
    assert 'src="/api/docs/redoc.standalone.js"' in page
    assert "https://" not in page and "http://" not in page  # nothing loaded from another host
    script = client.get("/api/docs/redoc.standalone.js")
    assert (script.status_code, script["Content-Type"]) == (200, "text/javascript")
    assert b"".join(script.streaming_content).lstrip().startswith(b"/*")


@pytest.fixture(scope="module", autouse=True)
def migration_data_restored(django_db_setup, django_db_blocker):
    """A live_server test empties every table when it ends, the role groups and decision reasons that data
    migrations made included; put the migrated state back so later transactional tests (test_worker) find it."""
    yield
    contents = getattr(connection, "_test_serialized_contents", None)
    with django_db_blocker.unblock():
        if contents and not Group.objects.exists():
            # Flushed first: a later flush may have recreated content types under other ids.
            call_command("flush", verbosity=0, interactive=False, inhibit_post_migrate=True)
            connection.creation.deserialize_db_from_string(contents)


@pytest.fixture
def admin_token() -> str:
    """An admin holds every permission, so generated requests reach every endpoint's code."""
    cache.clear()
    user = UserFactory(username="fuzz-admin", role="admin")
    return Token.objects.create(user=user).key


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@given(case=st.one_of(schema.as_strategy(), schema.as_strategy(generation_mode=GenerationMode.NEGATIVE)))
@settings(
    # One test for every operation, so the live server's database is set up and emptied once, not per operation.
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_generated_requests_never_cause_a_server_error(case, live_server, admin_token, monkeypatch):
    # Nothing is sent on: webhooks the fuzzer registers point anywhere, and its uploads would otherwise be
    # analysed inside the request (tasks run in-process here); both have their own tests.
    monkeypatch.setattr(deferred, "_send", lambda name, args, options: None)
    response = case.call(base_url=live_server.url, headers={"Authorization": f"Token {admin_token}"})
    case.validate_response(response, checks=[not_a_server_error])
