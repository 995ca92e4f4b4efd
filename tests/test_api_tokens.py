"""API tokens stored as digests: a token read from the database does not authenticate; expired and
revoked tokens get 401; users list and revoke their own, admins anyone's; the old plain tokens are
carried over by migration 0013 and their table dropped (annotations/core/tokens.py)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotations.core.tokens import token_digest, token_issue
from annotations.models import ApiToken, AuditEvent
from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


def _get(secret: str, path: str = "/api/campaigns/"):
    return Client(HTTP_AUTHORIZATION=f"Token {secret}").get(path)


def test_only_a_digest_is_stored_and_what_the_database_holds_does_not_authenticate(researcher):
    token, secret = token_issue(user=researcher, name="nightly export")
    assert _get(secret).status_code == 200
    row = ApiToken.objects.get(pk=token.pk)
    assert row.digest == token_digest(secret) != secret
    assert secret not in {
        str(v) for v in ApiToken.objects.values_list(*[f.attname for f in ApiToken._meta.fields]).get()
    }
    for stolen in (row.digest, row.prefix, f"{row.prefix}{row.digest}"):
        response = _get(stolen)
        assert response.status_code == 401
        assert response.json()["detail"] == "Invalid token."
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_expired_and_revoked_tokens_get_401(researcher, admin_user_role):
    expired, old = token_issue(user=researcher, days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _get(old)
    assert (response.status_code, response.json()["detail"]) == (401, "Token expired: make a new one.")
    token, secret = token_issue(user=researcher)
    assert _get(secret).status_code == 200
    api = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    assert api.delete(f"/api/auth/tokens/{token.pk}/").status_code == 200
    response = _get(secret)
    assert (response.status_code, response.json()["detail"]) == (401, "Token revoked.")
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1
    researcher.is_active = False
    researcher.save()
    _, third = token_issue(user=researcher)
    assert _get(third).status_code == 401


def test_a_token_carries_its_users_roles_and_permissions_as_they_are_now(researcher, annotator):
    """The token's query also reads the user's roles and permissions (annotations/core/tokens.py): a
    user with none is refused (403, not an error), a role or a single permission granted or taken away
    applies on the next request, and the roles are the token user's, not another's."""
    from django.contrib.auth.models import Group, Permission

    from annotations.core.roles import Role

    _, secret = token_issue(user=researcher)
    _, theirs = token_issue(user=annotator)
    stats = "/api/stats/disparity/"  # HasDashboardAccess (view_dashboard); no campaign given: 400 if allowed
    runs = "/api/runs/"  # IsResearcherRole: the role itself

    def codes(token: str) -> tuple[int, int]:
        return _get(token, stats).status_code, _get(token, runs).status_code

    assert codes(secret) == (400, 200)
    assert codes(theirs) == (403, 403)
    researcher.groups.clear()
    assert codes(secret) == (403, 403)  # no role and no permission: no access rows, refused, no error
    researcher.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    assert codes(secret) == (400, 403)  # the one permission granted to the user alone
    researcher.user_permissions.clear()
    researcher.groups.add(Group.objects.get(name=Role.RESEARCHER))
    assert codes(secret) == (400, 200)
    assert codes(theirs) == (403, 403)


def test_several_named_tokens_listed_without_secrets_and_revoked_by_their_owner_or_an_admin(
    researcher, annotator, admin_user_role
):
    first, first_secret = token_issue(user=researcher, name="export script")
    _second, second_secret = token_issue(user=researcher, name="notebook", days=7)
    other, _ = token_issue(user=annotator)
    api = Client(HTTP_AUTHORIZATION=f"Token {second_secret}")
    listed = api.get("/api/auth/tokens/").json()
    assert [t["name"] for t in listed] == ["notebook", "export script"]
    assert all(first_secret not in str(t) and second_secret not in str(t) for t in listed)
    assert listed[0]["expires_at"][:10] == (timezone.now() + timedelta(days=7)).date().isoformat()
    assert api.delete(f"/api/auth/tokens/{other.pk}/").status_code == 404  # not theirs: no hint it exists
    assert _get(first_secret).status_code == 200
    _, admin_secret = token_issue(user=admin_user_role)
    admin = Client(HTTP_AUTHORIZATION=f"Token {admin_secret}")
    assert admin.delete(f"/api/auth/tokens/{first.pk}/").status_code == 200
    assert _get(first_secret).status_code == 401
    assert _get(second_secret).status_code == 200


def test_post_auth_token_makes_a_new_token_each_time(client, researcher):
    url = reverse("api-token")
    one = client.post(url, {"username": "researcher1", "password": DEMO_PASSWORD, "name": "ci"}).json()
    two = client.post(url, {"username": "researcher1", "password": DEMO_PASSWORD}).json()
    assert one["token"] != two["token"]
    assert (one["name"], two["name"]) == ("ci", "api")
    assert _get(one["token"]).status_code == 200
    assert _get(two["token"]).status_code == 200
    bad = client.post(url, {"username": "researcher1", "password": DEMO_PASSWORD, "days": 0})
    assert bad.status_code == 400
    assert "days" in str(bad.json())


def test_issue_token_command_prints_a_new_secret_and_rotate_revokes_the_others(researcher, capsys):
    call_command("issue_token", "researcher1", "--name", "cron")
    first = capsys.readouterr().out.strip()
    assert _get(first).status_code == 200
    call_command("issue_token", "researcher1", "--rotate", "--days", "30")
    second = capsys.readouterr().out.strip()
    assert second != first
    assert _get(first).status_code == 401
    assert _get(second).status_code == 200
    assert ApiToken.objects.filter(user=researcher, revoked_at=None).count() == 1


def test_the_tokens_page_shows_a_new_secret_once_and_revokes(client, researcher, annotator):
    client.login(username="researcher1", password=DEMO_PASSWORD)
    response = client.post(reverse("account-tokens"), {"name": "<b>laptop</b>", "days": "30"})
    assert response["Cache-Control"] == "no-store"
    page = response.text
    secret = page.split('<pre class="plain" id="new-token">', 1)[1].split("</pre>", 1)[0]
    assert _get(secret).status_code == 200
    assert "&lt;b&gt;laptop&lt;/b&gt;" in page
    again = client.get(reverse("account-tokens")).text
    assert secret not in again
    token = ApiToken.objects.get(user=researcher)
    assert client.post(reverse("account-tokens"), {"days": "lots"}).status_code == 400
    other, _ = token_issue(user=annotator)
    assert client.post(reverse("account-token-revoke", args=[other.pk])).status_code == 404
    client.post(reverse("account-token-revoke", args=[token.pk]))
    assert _get(secret).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_migration_carries_plain_tokens_over_and_drops_their_table(researcher):
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("annotations", "0012_sampling_plans")])
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp with time zone "
            "NOT NULL, user_id integer NOT NULL)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created datetime NOT NULL, "
            "user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            ["0123456789abcdef0123456789abcdef01234567", timezone.now(), researcher.pk],
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert "authtoken_token" not in connection.introspection.table_names()
    assert _get("0123456789abcdef0123456789abcdef01234567").status_code == 200
    assert ApiToken.objects.get(user=researcher).name == "migrated"
