"""The population the sampling plan tests draw from, and a judge that has scored all of it."""

from annotations.models import LabelScheme
from inference.models import Output, Scorer
from tests import factories
from tests.support.scores import score, scorer


def build_world() -> dict:
    """2 models x 2 groups x 2 templates x 3 samples = 24 done outputs (a 4th, failed sample is left out)."""
    members = [factories.group_member("Mohammed"), factories.group_member("John", group="White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template(), factories.template()])
    run = factories.run_with_outputs(
        prompt_set, [factories.endpoint("m7"), factories.endpoint("m13")], samples=4
    )
    run.outputs.filter(sample_index=3).update(status=Output.Status.FAILED)
    outputs = list(run.outputs.filter(status=Output.Status.DONE).select_related("prompt").order_by("pk"))
    return {"run": run, "outputs": outputs, "selection": {"runs": [run.pk]}}


def judge_answer_probability(i: int) -> float:
    """P(answer) the judge gives the i-th output (the rest goes to refusal-to-answer)."""
    return (i % 7 + 0.5) / 8


def build_judge(scheme: LabelScheme, outputs: list[Output]) -> Scorer:
    """A judge at version v2 whose DONE scores give every output probabilities, plus older-version scores."""
    judge = scorer(scheme, kind=Scorer.Kind.JUDGE, version="v2", name="judge")
    for i, output in enumerate(outputs):
        p = judge_answer_probability(i)
        score(judge, output, category_key="answer", probabilities={"answer": p, "refusal-to-answer": 1 - p})
        score(judge, output, version="v1", probabilities={"answer": 1.0})  # an older version: never read
    return judge
