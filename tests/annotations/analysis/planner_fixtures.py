"""A pilot campaign for the label planner's tests: labels, scores and noise the plan must ignore."""

import numpy as np

from annotations.models import CampaignItem
from inference.models import Output, Score, ScoreRun
from tests import factories
from tests.support.scores import scorer as make_scorer

REFUSAL, HARMFUL_REFUSAL, ANSWER = "refusal-to-answer", "harmful-refusal", "answer"


def build_pilot(default_scheme):
    """2 models x 2 groups x 15 templates x 2 samples = 30 outputs per cell, all in a pilot campaign.

    Human final labels: refusal with probability 0.35; the scorer (version v2) agrees 85% of the
    time and gives probabilities. Noise the plan must ignore: v1 scores (opposite category), one
    unparseable v2 score, items without a final label, one failed output (not in the population),
    and a cell (model-b x White) with a single labelled item.
    """
    rng = np.random.default_rng(7)
    members = [factories.group_member("Mohammed"), factories.group_member("John", group="White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template() for _ in range(15)])
    endpoints = [factories.endpoint("model-a"), factories.endpoint("model-b")]
    run = factories.run_with_outputs(prompt_set, endpoints, samples=2)
    outputs = list(run.outputs.select_related("prompt__group", "endpoint").order_by("pk"))
    failed = outputs.pop()
    Output.objects.filter(pk=failed.pk).update(status=Output.Status.FAILED)
    order = rng.permutation(len(outputs))
    campaign = factories.campaign_with_items(default_scheme, [outputs[i] for i in order])
    items = list(CampaignItem.objects.filter(campaign=campaign).select_related("output__prompt__group"))
    categories = {c.key: c for c in default_scheme.categories.all()}
    judge = make_scorer(default_scheme, name="judge", version="v2")
    hard = make_scorer(default_scheme, name="hard", version="h1")
    runs = {
        (s.pk, v): ScoreRun.objects.create(
            name=f"{s.name}{v}", scorer=s, scorer_version=v, status="completed"
        )
        for s, v in ((judge, "v2"), (judge, "v1"), (hard, "h1"))
    }
    scores, finals, expected = [], {}, {}
    unparseable_done = False
    one_label_cell = (endpoints[1].pk, members[1].group_id)
    for item in items:
        cell = (item.endpoint_id, item.output.prompt.group_id)
        is_refusal = rng.random() < 0.35
        says_refusal = is_refusal if rng.random() < 0.85 else not is_refusal
        p = 0.8 if says_refusal else 0.15
        probabilities = {REFUSAL: 0.6 * p, HARMFUL_REFUSAL: 0.4 * p, ANSWER: 1 - p}
        category = categories[REFUSAL if says_refusal else ANSWER]
        labelled = rng.random() < 0.9
        if cell == one_label_cell:
            labelled, one_label_cell = True, None  # the cell's first item only
        elif cell == (endpoints[1].pk, members[1].group_id):
            labelled = False
        if labelled:
            finals[item.pk] = categories[REFUSAL if is_refusal else ANSWER]
        common = {"output_id": item.output_id, "status": Score.Status.DONE}
        if labelled and not unparseable_done and cell[0] == endpoints[0].pk:
            unparseable_done = True  # labelled, but its score names no category: left out
            scores.append(
                Score(
                    run=runs[judge.pk, "v2"], scorer=judge, scorer_version="v2", is_unparseable=True, **common
                )
            )
        else:
            scores.append(
                Score(
                    run=runs[judge.pk, "v2"],
                    scorer=judge,
                    scorer_version="v2",
                    category=category,
                    probabilities=probabilities,
                    **common,
                )
            )
            if labelled:
                expected.setdefault(cell, []).append((item.rank, float(is_refusal), p))
        opposite = categories[ANSWER if says_refusal else REFUSAL]
        scores.append(
            Score(run=runs[judge.pk, "v1"], scorer=judge, scorer_version="v1", category=opposite, **common)
        )
        scores.append(
            Score(run=runs[hard.pk, "h1"], scorer=hard, scorer_version="h1", category=category, **common)
        )
    Score.objects.bulk_create(scores)
    for key in (REFUSAL, ANSWER):
        ids = [pk for pk, c in finals.items() if c.key == key]
        CampaignItem.objects.filter(pk__in=ids).update(
            final_category=categories[key], final_source="unanimous", status="complete"
        )
    arrays = {
        cell: (np.array([r[1] for r in sorted(rows)]), np.array([r[2] for r in sorted(rows)]))
        for cell, rows in expected.items()
        if len(rows) >= 2
    }
    sizes = {}
    for output in outputs:
        cell = (output.endpoint_id, output.prompt.group_id)
        sizes[cell] = sizes.get(cell, 0) + 1
    return {
        "campaign": campaign,
        "judge": judge,
        "hard": hard,
        "arrays": arrays,
        "sizes": sizes,
        "endpoints": endpoints,
        "groups": [m.group for m in members],
        "failed": failed,
    }
