"""Migration 0007 (one active lease per item) keeps the newest active lease of an item, expires the rest."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("annotations", "0006_tallies"), ("inference", "0001_initial")]
AFTER = [("annotations", "0007_assignment_one_holder")]


def test_two_holders_of_one_item_become_one(executor):
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    get = apps.get_model
    prompt_set = get("annotations", "PromptSet").objects.create(name="ps")
    prompt = get("annotations", "Prompt").objects.create(prompt_set=prompt_set, position=0, key="p", text="A")
    endpoint = get("inference", "ModelEndpoint").objects.create(name="m", served_model_name="m")
    run = get("inference", "GenerationRun").objects.create(
        name="r", prompt_set=prompt_set, kind="imported", status="completed"
    )
    scheme = get("annotations", "LabelScheme").objects.create(key="mig-holder", name="Migration test")
    campaign = get("annotations", "Campaign").objects.create(name="c", scheme=scheme)
    items = []
    for i in range(2):
        output = get("inference", "Output").objects.create(
            run=run, prompt=prompt, endpoint=endpoint, sample_index=i, status="done", text="x",
            endpoint_snapshot={}, request={},
        )  # fmt: skip
        items.append(
            get("annotations", "CampaignItem").objects.create(
                campaign=campaign, output=output, run=run, endpoint=endpoint, prompt=prompt, rank=i
            )
        )
    users = [get("auth", "User").objects.create(username=f"u{i}") for i in range(3)]
    assignments = get("annotations", "Assignment").objects
    now = timezone.now()

    def lease(item, user, minutes_ago, status="active"):
        at = now - timedelta(minutes=minutes_ago)
        return assignments.create(
            item=item, annotator=user, status=status, leased_at=at, expires_at=at + timedelta(minutes=30)
        ).pk

    older = lease(items[0], users[0], 40)  # allowed before 0007: one active lease per annotator and item
    newer = lease(items[0], users[1], 5)
    done = lease(items[0], users[2], 50, status="done")
    alone = lease(items[1], users[0], 1)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    statuses = dict(
        executor.loader.project_state(AFTER)
        .apps.get_model("annotations", "Assignment")
        .objects.values_list("pk", "status")
    )
    assert statuses == {older: "expired", newer: "active", done: "done", alone: "active"}
