"""Migration 0011 counts the finished scores that exist into the new score tally (PostgreSQL)."""

from collections import Counter

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.annotations.analysis.test_score_tally import RECOUNT, TALLY
from tests.conftest import _requires_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
BEFORE = [("annotations", "0010_scorers"), ("inference", "0002_scorers")]
AFTER = [("annotations", "0011_score_tally")]


def _counted(sql: str) -> Counter:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return Counter({tuple(row[:-1]): row[-1] for row in cursor.fetchall()})


def test_existing_scores_are_counted(executor):
    _requires_postgres()
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    m = {name: apps.get_model(app, name) for app, name in [
        ("annotations", "PromptSet"), ("annotations", "Prompt"), ("annotations", "LabelScheme"),
        ("annotations", "LabelCategory"), ("annotations", "Campaign"), ("annotations", "CampaignItem"),
        ("inference", "GenerationRun"), ("inference", "ModelEndpoint"), ("inference", "Output"),
        ("inference", "Scorer"), ("inference", "ScoreRun"), ("inference", "Score"),
    ]}  # fmt: skip
    prompt_set = m["PromptSet"].objects.create(name="ps")
    prompt = m["Prompt"].objects.create(prompt_set=prompt_set, position=0, key="p0", text="Ann went")
    endpoint = m["ModelEndpoint"].objects.create(name="llama", served_model_name="llama")
    run = m["GenerationRun"].objects.create(
        name="r", prompt_set=prompt_set, kind="imported", status="completed"
    )
    scheme = m["LabelScheme"].objects.create(key="mig-test", name="Migration test")
    answer, refusal = (
        m["LabelCategory"].objects.create(
            scheme=scheme, key=key, name=key, definition=key, shortcut=str(order), order=order
        )
        for order, key in enumerate(["answer", "refusal"], start=1)
    )
    campaigns = [m["Campaign"].objects.create(name=f"c{i}", scheme=scheme) for i in range(2)]
    scorer = m["Scorer"].objects.create(name="crowd", kind="imported", scheme=scheme, version="v1")
    score_run = m["ScoreRun"].objects.create(name="import", scorer=scorer, scorer_version="v1")
    for i in range(5):
        output = m["Output"].objects.create(
            run=run, prompt=prompt, endpoint=endpoint, sample_index=i, status="done", text="x",
            endpoint_snapshot={}, request={},
        )  # fmt: skip
        for campaign in campaigns[: 1 + i % 2]:
            m["CampaignItem"].objects.create(
                campaign=campaign, output=output, rank=i, run_id=run.pk, endpoint_id=endpoint.pk,
                prompt_id=prompt.pk, final_category=answer if i < 2 else None,
            )  # fmt: skip
        m["Score"].objects.create(
            run=score_run, scorer=scorer, scorer_version="v1", output=output,
            status="done" if i < 4 else "pending", category=refusal if i % 2 else answer,
            is_flagged=True if i == 3 else None, is_unparseable=i == 2,
        )  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    counted = _counted(TALLY)
    assert counted == _counted(RECOUNT)
    assert sum(counted.values()) == 6  # outputs 0-3 are scored: 0 and 2 in one campaign, 1 and 3 in two
