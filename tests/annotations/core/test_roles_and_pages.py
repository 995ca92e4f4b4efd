"""Roles as groups with permissions, the create_user command, login and the start page per role."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


def test_role_groups_exist_with_their_permissions():
    groups = {g.name: g for g in Group.objects.prefetch_related("permissions")}
    assert {"admin", "researcher", "annotator"} <= set(groups)
    researcher = {p.codename for p in groups["researcher"].permissions.all()}
    assert {"view_dashboard", "export_labels", "view_output", "adjudicate_campaign"} <= researcher
    assert "delete_output" not in researcher
    annotator = {p.codename for p in groups["annotator"].permissions.all()}
    assert annotator == {"label_campaign", "add_label", "change_label"}


def test_create_user_command(capsys):
    call_command("create_user", "ann7", "--role", "annotator", "--password", "a-sufficiently-long-pass")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="ann7")
    assert user.check_password("a-sufficiently-long-pass")
    assert list(user.groups.values_list("name", flat=True)) == ["annotator"]
    assert not user.is_staff
    assert "ann7: role annotator" in capsys.readouterr().out


def test_create_user_rejects_weak_password_and_unknown_role():
    with pytest.raises(CommandError, match="too weak"):
        call_command("create_user", "ann8", "--role", "annotator", "--password", "12345")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_user", "ann9", "--role", "boss", "--password", "a-sufficiently-long-pass")


def test_admin_role_is_staff(make_user):
    assert make_user("admin").is_staff


def test_login_and_logout(client, annotator):
    response = client.post(reverse("login"), {"username": "annotator1", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.get(reverse("home")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_wrong_password_is_refused(client, annotator):
    response = client.post(reverse("login"), {"username": "annotator1", "password": "wrong"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_guest_is_sent_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        ("annotator", ["My campaigns"], ["Dashboards", "Manage"]),
        ("researcher", ["Dashboards"], ["My campaigns", "Manage"]),
        ("admin", ["Manage", "Dashboards"], ["My campaigns"]),
        (None, ["no role yet"], ["Manage", "Dashboards", "My campaigns"]),
    ],
)
def test_start_page_per_role(client, make_user, role, shown, hidden):
    client.force_login(make_user(role))
    html = client.get(reverse("home")).content.decode()
    for text in shown:
        assert text in html
    for text in hidden:
        assert text not in html


def test_every_model_is_in_the_admin_and_its_list_renders(client, admin_user_role):
    client.force_login(admin_user_role)
    for app_label in ("annotations", "inference"):
        for model in apps.get_app_config(app_label).get_models():
            assert admin.site.is_registered(model), model
            url = reverse(f"admin:{app_label}_{model._meta.model_name}_changelist")
            assert client.get(url).status_code == 200, url


def test_admin_site_is_for_admins_only(client, researcher):
    client.force_login(researcher)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302


def test_roles_and_permissions_are_read_in_one_query_and_match_model_backend(
    make_user, django_assert_num_queries
):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import Permission

    from annotations.core.roles import RoleModelBackend, user_is_annotator, user_is_researcher

    user = make_user("annotator", "both")
    user.groups.add(Group.objects.get(name="researcher"))
    user.user_permissions.add(Permission.objects.get(codename="delete_output"))
    fresh = get_user_model().objects.get(pk=user.pk)
    with django_assert_num_queries(1):
        assert user_is_annotator(fresh)
        assert user_is_researcher(fresh)
        assert fresh.has_perm("annotations.label_campaign")
        assert fresh.has_perm("inference.delete_output")
        assert not fresh.has_perm("annotations.delete_campaign")
    expected = ModelBackend().get_all_permissions(get_user_model().objects.get(pk=user.pk))
    assert RoleModelBackend().get_all_permissions(get_user_model().objects.get(pk=user.pk)) == expected
    user.is_active = False
    assert RoleModelBackend().get_all_permissions(user) == set()
