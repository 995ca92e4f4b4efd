"""Security: login rate limiting, tokens, password rules, CSRF, the admin site, production settings, the
audit log and its page, upload limits, and escaping of hostile text on every page of this area."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.core.users import user_create
from annotations.models import AuditEvent, Campaign, LabelScheme
from tests import factories
from tests.access import assert_hidden
from tests.conftest import DEMO_PASSWORD, REPO
from tests.test_settings import PRODUCTION

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_login_is_locked_after_repeated_failures(client, annotator, settings):
    settings.AUDIT_LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert _login(client, "annotator1", "wrong").status_code == 200
    locked = _login(client, "annotator1", DEMO_PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    other_address = Client(REMOTE_ADDR="10.0.0.9")
    assert _login(other_address, "annotator1", DEMO_PASSWORD).status_code == 302


def test_a_success_clears_the_failures(client, annotator, settings):
    settings.AUDIT_LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        _login(client, "annotator1", "wrong")
    assert _login(client, "annotator1", DEMO_PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(2):
        _login(client, "annotator1", "wrong")
    assert _login(client, "annotator1", DEMO_PASSWORD).status_code == 302


def test_token_endpoint_gives_a_token_and_is_rate_limited(client, researcher, settings):
    settings.AUDIT_LOGIN_FAILURE_LIMIT = 2
    url = reverse("api-token")
    response = client.post(url, {"username": "researcher1", "password": DEMO_PASSWORD})
    token = response.json()["token"]
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(reverse("api-export", args=["labels"])).status_code == 200
    assert client.post(url, {"username": "researcher1", "password": "no"}).status_code == 400
    assert client.post(url, {"username": "researcher1", "password": "no"}).status_code == 400
    locked = client.post(url, {"username": "researcher1", "password": DEMO_PASSWORD})
    assert locked.status_code == 429
    assert locked["Retry-After"]


def test_issue_token_command(researcher, capsys):
    """Each call prints a new secret (the database keeps only digests; tests/test_api_tokens.py)."""
    call_command("issue_token", "researcher1")
    first = capsys.readouterr().out.strip()
    call_command("issue_token", "researcher1")
    assert capsys.readouterr().out.strip() != first
    with pytest.raises(CommandError, match="No active user"):
        call_command("issue_token", "nobody")
    with pytest.raises(CommandError, match="days must be"):
        call_command("issue_token", "researcher1", "--days", "0")


@pytest.mark.parametrize("password", ["short1", "password123", "1234567890123", "researcher-2-x"])
def test_weak_passwords_are_refused(db, password):
    with pytest.raises(AuditError, match="too weak"):
        user_create(username="researcher-2-x", role="researcher", password=password)


def test_login_and_every_post_form_need_csrf(researcher, default_scheme):
    client = Client(enforce_csrf_checks=True)
    assert (
        client.post(reverse("login"), {"username": "researcher1", "password": DEMO_PASSWORD}).status_code
        == 403
    )
    client.force_login(researcher)
    for name in ("label-import", "logout"):
        assert client.post(reverse(name), {}).status_code == 403, name
    api = client.post(reverse("api-label-import"), {"campaign": "x"})
    assert api.status_code == 403  # session-authenticated API writes need the token too
    for name in ("label-import", "export-form", "audit-log", "home"):
        html = client.get(reverse(name)).content.decode()
        assert html.count('method="post"') == html.count("csrfmiddlewaretoken"), name


def test_token_authenticated_api_needs_no_csrf(researcher, default_scheme):
    from annotations.core.tokens import token_issue

    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {token_issue(user=researcher)[1]}")
    assert client.post(reverse("api-label-import"), {"campaign": "x"}).status_code == 400


@pytest.mark.parametrize(
    ("role", "status"), [("admin", 200), ("researcher", 302), ("annotator", 302), (None, 302)]
)
def test_admin_site_is_for_admins_only(client, make_user, role, status):
    client.force_login(make_user(role))
    assert client.get(reverse("admin:index")).status_code == status
    assert client.get(reverse("admin:auth_user_changelist")).status_code == status


def test_production_settings_are_strict(tmp_path):
    script = (
        "import django;django.setup();from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_HTTPONLY, s.X_FRAME_OPTIONS)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    env = {
        **clean,
        **PRODUCTION,
        "AUDIT_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "auditproject.settings",
    }
    # A fresh Django start takes seconds even on a busy machine; the timeout only stops a hang.
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.stdout.split() == ["True", "True", "31536000", "True", "True", "DENY"], run.stderr


def test_uploads_over_the_limit_are_refused(client, researcher, default_scheme, settings):
    settings.AUDIT_UPLOAD_MAX_BYTES = 50
    client.force_login(researcher)
    upload = SimpleUploadedFile("big.csv", b"prompt,model\n" + b"x" * 100)
    response = client.post(reverse("api-label-import"), {"file": upload, "campaign": "big"})
    assert response.status_code == 400
    assert "the limit is 50 bytes" in response.json()["errors"][0]["message"]
    assert not Campaign.objects.exists()


def test_admin_site_changes_are_audited(client, admin_user_role, default_scheme):
    client.force_login(admin_user_role)
    response = client.post(
        reverse("admin:annotations_groupaxis_add"), {"key": "religion", "name": "Religion", "description": ""}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.add")
    assert (event.actor, event.target_type) == (admin_user_role, "annotations.groupaxis")


def test_audit_log_page(client, researcher, annotator):
    audit_event_record(actor=researcher, action="data.export", details={"format": "csv"})
    audit_event_record(actor=None, action="run.start")
    client.force_login(annotator)
    assert client.get(reverse("audit-log")).status_code == 403
    client.force_login(researcher)
    html = client.get(reverse("audit-log")).content.decode()
    assert "data.export" in html
    assert "run.start" in html
    filtered = client.get(reverse("audit-log"), {"action": "run.start"}).content.decode()
    assert "data.export" not in filtered.split("<tbody>")[1]


def test_export_of_a_guessed_campaign_is_not_reachable(client, researcher, annotator, default_scheme):
    campaign = Campaign.objects.create(name="secret", scheme=default_scheme)
    client.force_login(annotator)
    assert_hidden(client.get(reverse("api-export", args=["labels"]), {"campaign": campaign.pk}))
    assert_hidden(
        client.get(reverse("export-form"), {"kind": "labels", "file_format": "csv", "campaign": campaign.pk})
    )
    client.force_login(researcher)
    assert_hidden(client.get(reverse("api-export", args=["labels"]), {"campaign": campaign.pk + 1000}))


def test_hostile_text_is_escaped_on_every_page_of_this_area(client, make_user, default_scheme):
    hostile_user = make_user("researcher", "evil<b>")
    hostile_user.username = "evil" + HOSTILE[:100]
    hostile_user.save()
    LabelScheme.objects.filter(pk=default_scheme.pk).update(name=HOSTILE)
    members = [factories.group_member(HOSTILE[:150], HOSTILE[:150], "name")]
    run = factories.run_with_outputs(
        factories.prompt_set_with_prompts(members, [factories.template()]),
        [factories.endpoint()],
        text=HOSTILE,
    )
    campaign = factories.campaign_with_items(default_scheme, list(run.outputs.all()))
    Campaign.objects.filter(pk=campaign.pk).update(name=HOSTILE, description=HOSTILE, guidelines=HOSTILE)
    audit_event_record(actor=hostile_user, action=HOSTILE[:100], details={"note": HOSTILE})
    client.force_login(hostile_user)
    pages = [
        client.get(reverse("export-form")),
        client.get(reverse("label-import")),
        client.get(reverse("audit-log")),
        client.get(reverse("audit-log"), {"action": HOSTILE}),
        client.get(reverse("home")),
        client.post(
            reverse("label-import"),
            {
                "campaign": HOSTILE[:200],
                "scheme": HOSTILE[:64],
                "file": SimpleUploadedFile("x.csv", f"prompt,label\n{HOSTILE},{HOSTILE}\n".encode()),
            },
        ),
        client.post(
            reverse("label-import"),
            {
                "campaign": "c",
                "file": SimpleUploadedFile("x.csv", f"prompt,label\n{HOSTILE},{HOSTILE}\n".encode()),
            },
        ),
    ]
    for response in pages:
        html = response.content.decode()
        assert response.status_code in {200, 400}
        assert "<script>alert" not in html
        assert "onerror=alert" not in html or "&lt;img" in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;" in pages[0].content.decode()  # the campaign name, escaped
    assert "&lt;script&gt;" in pages[6].content.decode()  # the row error quoting the label


def test_permission_for_dashboards_can_be_granted_to_one_annotator(annotator):
    assert not annotator.has_perm("annotations.view_dashboard")
    annotator.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(pk=annotator.pk).has_perm("annotations.view_dashboard")
