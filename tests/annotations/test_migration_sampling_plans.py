"""Migration 0012 (sampling plans): campaigns made before it keep plan "all", their items probability 1."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("annotations", "0011_score_tally"), ("inference", "0002_scorers")]
AFTER = [("annotations", "0012_sampling_plans")]


def test_existing_campaigns_get_plan_all_and_items_probability_one(executor):
    executor.migrate(BEFORE)
    get = executor.loader.project_state(BEFORE).apps.get_model
    prompt_set = get("annotations", "PromptSet").objects.create(name="ps")
    prompt = get("annotations", "Prompt").objects.create(prompt_set=prompt_set, position=0, key="p", text="A")
    endpoint = get("inference", "ModelEndpoint").objects.create(name="m", served_model_name="m")
    run = get("inference", "GenerationRun").objects.create(
        name="r", prompt_set=prompt_set, kind="imported", status="completed"
    )
    output = get("inference", "Output").objects.create(
        run=run, prompt=prompt, endpoint=endpoint, sample_index=0, status="done", text="x",
        endpoint_snapshot={}, request={},
    )  # fmt: skip
    scheme = get("annotations", "LabelScheme").objects.create(key="mig-sampling", name="Migration test")
    campaign = get("annotations", "Campaign").objects.create(name="c", scheme=scheme, selection={"runs": [1]})
    get("annotations", "CampaignItem").objects.create(
        campaign=campaign, output=output, run=run, endpoint=endpoint, prompt=prompt, rank=0
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    get = executor.loader.project_state(AFTER).apps.get_model
    after = get("annotations", "Campaign").objects.get(pk=campaign.pk)
    assert (after.sampling_plan, after.sampling, after.sampling_scorer_id) == ("all", {}, None)
    assert list(
        get("annotations", "CampaignItem").objects.values_list("inclusion_probability", flat=True)
    ) == [1.0]
    assert not get("annotations", "CampaignFrameOutput").objects.exists()
