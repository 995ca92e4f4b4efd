"""Migration 0005 fills the new item columns (run, model, prompt, label summary) of existing items."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("annotations", "0004_issue5_next_item_indexes"), ("inference", "0001_initial")]
AFTER = [("annotations", "0005_item_label_summary")]


def test_existing_items_get_their_outputs_dimensions_and_label_summary(executor):
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    User = apps.get_model("auth", "User")
    m = {name: apps.get_model(app, name) for app, name in [
        ("annotations", "PromptSet"), ("annotations", "Prompt"), ("annotations", "LabelScheme"),
        ("annotations", "LabelCategory"), ("annotations", "Campaign"), ("annotations", "CampaignItem"),
        ("annotations", "Label"), ("inference", "GenerationRun"), ("inference", "ModelEndpoint"),
        ("inference", "Output"),
    ]}  # fmt: skip
    prompt_set = m["PromptSet"].objects.create(name="ps")
    prompt = m["Prompt"].objects.create(prompt_set=prompt_set, position=0, key="p0", text="Ann went")
    endpoint = m["ModelEndpoint"].objects.create(name="llama", served_model_name="llama")
    run = m["GenerationRun"].objects.create(
        name="r", prompt_set=prompt_set, kind="imported", status="completed"
    )
    scheme = m["LabelScheme"].objects.create(key="mig-test", name="Migration test")
    answer = m["LabelCategory"].objects.create(
        scheme=scheme, key="answer", name="Answer", definition="a", shortcut="1", order=1
    )
    refusal = m["LabelCategory"].objects.create(
        scheme=scheme, key="refusal", name="Refusal", definition="r", shortcut="2", order=2
    )
    campaign = m["Campaign"].objects.create(name="c", scheme=scheme)
    users = [User.objects.create(username=f"u{i}") for i in range(2)]
    items = []
    for i in range(3):
        output = m["Output"].objects.create(
            run=run, prompt=prompt, endpoint=endpoint, sample_index=i, status="done", text="x",
            endpoint_snapshot={}, request={},
        )  # fmt: skip
        items.append(m["CampaignItem"].objects.create(campaign=campaign, output=output, rank=i))
    m["Label"].objects.create(item=items[0], annotator=users[1], category=refusal)
    m["Label"].objects.create(item=items[0], annotator=users[0], category=answer)
    m["Label"].objects.create(item=items[1], annotator=users[1], category=answer)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    got = {
        row["pk"]: row
        for row in apps.get_model("annotations", "CampaignItem").objects.values(
            "pk", "run_id", "endpoint_id", "prompt_id", "label_pattern", "label_signature"
        )
    }
    low, high = sorted([answer.pk, refusal.pk])
    assert got[items[0].pk]["label_pattern"] == f"{low},{high}"
    assert got[items[0].pk]["label_signature"] == f"{users[0].pk}:{answer.pk},{users[1].pk}:{refusal.pk}"
    assert got[items[1].pk]["label_signature"] == f"{users[1].pk}:{answer.pk}"
    assert (got[items[2].pk]["label_pattern"], got[items[2].pk]["label_signature"]) == ("", "")
    assert {(r["run_id"], r["endpoint_id"], r["prompt_id"]) for r in got.values()} == {
        (run.pk, endpoint.pk, prompt.pk)
    }
