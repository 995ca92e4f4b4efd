"""Small campaigns with known human labels (Y) and scorer probabilities (Yhat) for the machine-assisted tests.

Two groups on one axis (White, the control, and Muslim), `n` members each, one template, one output
per prompt and model. `truth[output_id]` is the output's category key (the final label it gets when
labelled) and the scorer's probabilities; the tests recompute every estimate from these by direct
calls of the statistics.
"""

from dataclasses import dataclass

import numpy as np

from annotations.models import Campaign, CampaignFrameOutput, CampaignItem, Group
from inference.models import Output, Score, Scorer, ScoreRun
from tests import factories
from tests.support.scores import scorer as make_scorer

R, A, P = "refusal-to-answer", "answer", "partial-answer"
REFUSAL_KEYS = ("refusal-to-answer", "harmful-refusal")


@dataclass
class World:
    """The outputs (by model name, then id order), their truth and the scorer."""

    outputs: dict[str, list[Output]]
    truth: dict[int, tuple[str, dict[str, float]]]
    scorer: Scorer
    groups: dict[int, str]  # output id -> group name

    def all_outputs(self) -> list[Output]:
        return [o for outputs in self.outputs.values() for o in outputs]


def build_world(scheme, *, n: int = 12, models=("model-a",), seed: int = 7, suffix: str = "") -> World:
    """Outputs of `models` over 2 x n prompts with a seeded truth and a scorer that mostly agrees."""
    members = [factories.group_member(f"M{i}{suffix}", "Muslim") for i in range(n)]
    members += [factories.group_member(f"W{i}{suffix}", "White") for i in range(n)]
    Group.objects.filter(name="White").update(is_control=True)
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template()])
    endpoints = [factories.endpoint(name + suffix) for name in models]
    run = factories.run_with_outputs(prompt_set, endpoints)
    rng = np.random.default_rng(seed)
    outputs: dict[str, list[Output]] = {}
    truth, groups = {}, {}
    for output in run.outputs.select_related("endpoint", "prompt__group").order_by("id"):
        outputs.setdefault(output.endpoint.name.removesuffix(suffix), []).append(output)
        group = output.prompt.group.name
        groups[output.pk] = group
        share = 0.5 if group == "Muslim" else 0.25
        key = R if rng.random() < share else (A if rng.random() < 0.7 else P)
        right = 0.55 + 0.4 * rng.random()
        rest = (1 - right) / 2
        probabilities = {k: (right if k == key else rest) for k in (R, A, P)}
        truth[output.pk] = (key, probabilities)
    scorer = make_scorer(scheme, name=f"judge{suffix}")
    return World(outputs, truth, scorer, groups)


def add_scores(world: World, outputs: list[Output], *, with_probabilities: bool = True) -> None:
    """DONE scores of the world's scorer on `outputs` (probabilities, or only the most likely category)."""
    run = ScoreRun.objects.create(
        name="scores", scorer=world.scorer, scorer_version=world.scorer.version, status="completed"
    )
    categories = {c.key: c for c in world.scorer.scheme.categories.all()}
    scores = []
    for output in outputs:
        probabilities = world.truth[output.pk][1]
        top = max(probabilities, key=probabilities.get)
        scores.append(
            Score(
                run=run,
                scorer=world.scorer,
                scorer_version=world.scorer.version,
                output=output,
                status=Score.Status.DONE,
                category=categories[top],
                probabilities=probabilities if with_probabilities else {},
            )
        )
    Score.objects.bulk_create(scores)


def make_campaign(
    scheme, world: World, *, plan: str, drawn: set[int], labelled: set[int],
    pi: dict[int, float] | None = None, outputs: list[Output] | None = None, **fields,
) -> Campaign:  # fmt: skip
    """A campaign of `plan` over `outputs` (default: all): items for the drawn outputs (every output for
    plan "all"), frame rows for the other plans, final labels (the truth) on `labelled`."""
    outputs = outputs if outputs is not None else world.all_outputs()
    pi = pi or {}
    campaign = Campaign.objects.create(
        name=f"ma-{plan}-{Campaign.objects.count()}", scheme=scheme, sampling_plan=plan, **fields
    )
    in_items = outputs if plan == Campaign.SamplingPlan.ALL else [o for o in outputs if o.pk in drawn]
    CampaignItem.objects.bulk_create(
        CampaignItem.for_output(o, campaign=campaign, rank=i, inclusion_probability=pi.get(o.pk, 1.0))
        for i, o in enumerate(in_items)
    )
    if plan != Campaign.SamplingPlan.ALL:
        CampaignFrameOutput.objects.bulk_create(
            CampaignFrameOutput(
                campaign=campaign,
                output=o,
                endpoint_id=o.endpoint_id,
                prompt_id=o.prompt_id,
                inclusion_probability=pi[o.pk],
                is_drawn=o.pk in drawn,
            )
            for o in outputs
        )
    for key in (R, A, P):
        ids = [pk for pk in labelled if world.truth[pk][0] == key]
        CampaignItem.objects.filter(campaign=campaign, output_id__in=ids).update(
            final_category=scheme.categories.get(key=key), status=CampaignItem.Status.COMPLETE
        )
    return campaign


def direct_arrays(
    world: World, outputs: list[Output], *, labelled: set[int], outcome: str = "refusal"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y of the labelled, Yhat of the labelled, Yhat of the others) of a cell, straight from the truth."""

    def y(pk: int) -> float:
        key = world.truth[pk][0]
        return float(key in REFUSAL_KEYS) if outcome == "refusal" else float(key == outcome)

    def yhat(pk: int) -> float:
        probabilities = world.truth[pk][1]
        if outcome == "refusal":
            return sum(probabilities.get(k, 0.0) for k in REFUSAL_KEYS)
        return probabilities.get(outcome, 0.0)

    lab = [o.pk for o in outputs if o.pk in labelled]
    other = [o.pk for o in outputs if o.pk not in labelled]
    return (
        np.array([y(pk) for pk in lab]),
        np.array([yhat(pk) for pk in lab]),
        np.array([yhat(pk) for pk in other]),
    )
