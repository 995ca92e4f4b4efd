"""The demo command creates the users and the starter pack, and can run twice."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotations.models import PromptSet

pytestmark = pytest.mark.django_db


def test_demo_seed_without_generation_is_idempotent():
    for _ in range(2):
        out = io.StringIO()
        call_command("demo_seed", "--no-generation", stdout=out)
    users = get_user_model().objects.filter(username__in=["admin", "researcher", "annotator1"])
    assert users.count() == 3
    assert PromptSet.objects.get(name="Starter pack").prompts.count() == 1792
    assert "Demo logins (password for all: audit-demo-password)" in out.getvalue()
    assert get_user_model().objects.get(username="admin").check_password("audit-demo-password")
