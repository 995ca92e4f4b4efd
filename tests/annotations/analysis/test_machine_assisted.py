"""Machine-assisted estimates: the tables equal direct calls of the statistics (and ppi_py), undefined
cells say why, one query reads a population, and the API, dashboard and audit_report carry them."""

import json

import numpy as np
import ppi_py
import pytest
from django.core.management import call_command

from annotations.analysis.machine_assisted import machine_assisted_tables
from annotations.analysis.selectors import StatsFilters, campaign_get_for_stats
from annotations.models import Campaign, CampaignItem
from annotations.stats.ppi import (
    active_mean_ci,
    classical_mean_ci,
    differences_from_control,
    ppi_mean_ci,
)
from inference.models import Score
from tests.annotations.analysis.machine_assisted_fixtures import (
    A,
    R,
    add_scores,
    build_world,
    direct_arrays,
    make_campaign,
)

pytestmark = pytest.mark.django_db
Plan = Campaign.SamplingPlan


@pytest.fixture(autouse=True)
def few_labels_allowed(settings):
    """These worlds have 3-14 outputs per cell: lower the platform's minimums (80 labels per cell, 10
    expected with the outcome) before an interval is shown, so the numbers can be checked.
    test_the_default_minimum_* and test_rare_predicted_rates_* set them."""
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 2
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 0


def _tables(campaign, **filters):
    scorer = filters.pop("scorer", None)
    campaign = campaign_get_for_stats(campaign_id=campaign.pk)
    return machine_assisted_tables(
        filters=StatsFilters(campaign=campaign.pk, **filters), campaign=campaign, scorer_id=scorer
    )


def _row(tables, *, group, outcome="Refusal", model="model-a"):
    rows = tables["machine_assisted"]["rows"]
    return next(r for r in rows if (r["model"], r["group"], r["outcome"]) == (model, group, outcome))


def _cell_outputs(world, group, model="model-a"):
    return [o for o in world.outputs[model] if world.groups[o.pk] == group]


def _assert_cell(cell, estimate):
    assert estimate.value is not None
    assert cell["value"] == pytest.approx(estimate.value, rel=1e-12)
    assert cell["ci_low"] == pytest.approx(estimate.ci_low, rel=1e-12)
    assert cell["ci_high"] == pytest.approx(estimate.ci_high, rel=1e-12)
    assert cell["n"] == estimate.n_labelled


@pytest.fixture
def world(default_scheme):
    world = build_world(default_scheme, n=14)
    add_scores(world, world.all_outputs())
    return world


@pytest.fixture
def uniform(default_scheme, world):
    """A uniform draw of 8 of every 14 outputs per group (pi = 16 / 28), 7 of each group's labelled."""
    drawn, labelled = set(), set()
    for group in ("Muslim", "White"):
        cell = _cell_outputs(world, group)
        drawn |= {o.pk for o in cell[:8]}
        labelled |= {o.pk for o in cell[:7]}
    pi = {o.pk: 16 / 28 for o in world.all_outputs()}
    return make_campaign(default_scheme, world, plan=Plan.UNIFORM, drawn=drawn, labelled=labelled, pi=pi)


def test_uniform_plan_equals_direct_calls_and_ppi_py(uniform, world):
    tables, meta = _tables(uniform)
    labelled = set(CampaignItem.objects.filter(campaign=uniform, final_category__isnull=False).values_list(
        "output_id", flat=True))  # fmt: skip
    assert meta["sampling_plan"] == "uniform"
    assert meta["scorers"] == [f"{world.scorer.name} @v1"]
    assert any("fixed before the draw" in text for text in meta["assumptions"])
    estimates = {}
    for group in ("Muslim", "White"):
        for outcome, name in (("refusal", "Refusal"), (A, "Answer")):
            y, yhat, yhat_unlabelled = direct_arrays(
                world, _cell_outputs(world, group), labelled=labelled, outcome=outcome
            )
            row = _row(tables, group=group, outcome=name)
            assert (row["outputs"], row["labelled"], row["unscored"]) == (14, 7, 0)
            human = classical_mean_ci(y)
            ppi = ppi_mean_ci(y, yhat, yhat_unlabelled)
            _assert_cell(row["human"], human)
            _assert_cell(row["ppi"], ppi)
            low, high = ppi_py.ppi_mean_ci(y, yhat, yhat_unlabelled, alpha=0.05)
            assert row["ppi"]["ci_low"] == pytest.approx(float(np.squeeze(low)), rel=1e-9)
            assert row["ppi"]["ci_high"] == pytest.approx(float(np.squeeze(high)), rel=1e-9)
            assert row["ppi_lambda"] == pytest.approx(ppi.lam)
            w_human, w_ppi = human.ci_high - human.ci_low, ppi.ci_high - ppi.ci_low
            assert row["human_width"]["value"] == pytest.approx(w_human)
            assert row["ppi_width"]["value"] == pytest.approx(w_ppi)
            assert row["ppi_saved"]["value"] == pytest.approx(7 * (w_human / w_ppi) ** 2 - 7)
            assert row["active"]["value"] is None
            assert "not active" in row["active"]["reason"]
            assert row["active_saved"]["reason"] == "the active interval is undefined"
            estimates[(group, outcome)] = (human, ppi)
    differences = tables["machine_assisted_differences"]["rows"]
    assert {r["method"] for r in differences} == {"Human labels only", "PPI++"}  # no active plan
    for outcome, name in (("refusal", "Refusal"), (A, "Answer")):
        for m, method in enumerate(("Human labels only", "PPI++")):
            row = next(r for r in differences if (r["outcome"], r["method"]) == (name, method))
            assert (row["group"], row["control"]) == ("Muslim", "White")
            (expected,) = differences_from_control(
                [estimates[("Muslim", outcome)][m], estimates[("White", outcome)][m]], control=1
            )
            assert row["difference"]["value"] == pytest.approx(expected.value)
            assert row["difference"]["ci_low"] == pytest.approx(expected.ci_low)
            assert row["p_value"] == pytest.approx(expected.p_value)
            assert row["p_holm"] == pytest.approx(expected.p_holm)  # one comparison: Holm = p


def test_stratified_plan_weights_by_inclusion_probability(default_scheme, world):
    muslim, white = _cell_outputs(world, "Muslim"), _cell_outputs(world, "White")
    drawn = {o.pk for o in muslim[:4] + white[:10]}
    pi = {o.pk: 4 / 14 for o in muslim} | {o.pk: 10 / 14 for o in white}
    campaign = make_campaign(default_scheme, world, plan=Plan.STRATIFIED, drawn=drawn, labelled=drawn, pi=pi)
    tables, _ = _tables(campaign)
    for group, cell, n in (("Muslim", muslim, 4), ("White", white, 10)):
        y, yhat, yhat_unlabelled = direct_arrays(world, cell, labelled=drawn)
        row = _row(tables, group=group)
        assert row["labelled"] == n
        human = classical_mean_ci(y, pi=np.full(n, n / 14))
        assert human.method == "hajek"
        _assert_cell(row["human"], human)
        _assert_cell(row["ppi"], ppi_mean_ci(y, yhat, yhat_unlabelled))


def test_plan_all_reads_the_items_and_says_why_cells_are_undefined(default_scheme):
    world = build_world(default_scheme, n=6, models=("model-a", "model-b"))
    add_scores(world, world.all_outputs(), with_probabilities=False)  # 0/1 predictions from the category
    outputs = world.all_outputs()
    b_white = [o.pk for o in outputs if o.endpoint.name == "model-b" and world.groups[o.pk] == "White"]
    labelled = {o.pk for o in world.outputs["model-a"]} | {b_white[0]}
    campaign = make_campaign(default_scheme, world, plan=Plan.ALL, drawn=set(), labelled=labelled)
    tables, meta = _tables(campaign)
    assert meta["scorer_choice"] == "every scorer version with finished scores on the population"
    row = _row(tables, group="Muslim")
    cell = _cell_outputs(world, "Muslim")
    y = np.array([float(world.truth[o.pk][0] == R) for o in cell])
    assert row["labelled"] == 6
    _assert_cell(row["human"], classical_mean_ci(y))
    assert row["ppi"]["value"] == pytest.approx(y.mean())  # every item labelled: PPI is the mean
    assert row["ppi_saved"]["value"] == pytest.approx(0.0, abs=1e-9)
    none = _row(tables, group="Muslim", model="model-b")
    one = _row(tables, group="White", model="model-b")
    for method in ("human", "ppi"):
        assert (none[method]["value"], none[method]["reason"]) == (None, "no human labels")
        assert one[method]["value"] is None
        assert one[method]["reason"] == "fewer than two human labels: no variance estimate"
    assert none["ppi_saved"]["value"] is None
    assert none["ppi_width"]["reason"] == "see the estimate"


def test_gold_outside_the_draw_is_in_no_estimate(default_scheme):
    world = build_world(default_scheme, n=5)
    add_scores(world, world.all_outputs())
    outputs = world.all_outputs()
    gold = [o.pk for o in outputs if world.groups[o.pk] == "White"][:2]
    campaign = make_campaign(
        default_scheme, world, plan=Plan.ALL, drawn=set(), labelled={o.pk for o in outputs},
        sampling={"gold_outside": gold},
    )  # fmt: skip
    tables, _ = _tables(campaign)
    assert (_row(tables, group="White")["outputs"], _row(tables, group="White")["labelled"]) == (3, 3)
    assert _row(tables, group="Muslim")["outputs"] == 5


def test_unscored_outputs_make_ppi_undefined_with_the_count(uniform, world):
    muslim = _cell_outputs(world, "Muslim")
    Score.objects.filter(output__in=muslim[-2:]).delete()
    Score.objects.filter(output=muslim[-3]).update(is_unparseable=True, category=None, probabilities={})
    tables, _ = _tables(uniform)
    row = _row(tables, group="Muslim")
    assert row["unscored"] == 3
    assert row["human"]["value"] is not None
    assert row["ppi"]["value"] is None
    assert row["ppi"]["reason"].startswith("3 of the cell's 14 outputs have no usable score")
    assert _row(tables, group="White")["ppi"]["value"] is not None


@pytest.fixture
def active(default_scheme, world):
    """An active draw: pi from the scorer's uncertainty, 7 outputs drawn per group, all labelled."""
    pi, drawn = {}, set()
    for group in ("Muslim", "White"):
        for i, output in enumerate(_cell_outputs(world, group)):
            pi[output.pk] = 0.3 + 0.05 * i
            if i % 2 == 0:
                drawn.add(output.pk)
    campaign = make_campaign(
        default_scheme, world, plan=Plan.ACTIVE, drawn=drawn, labelled=drawn, pi=pi,
        sampling_scorer=world.scorer, sampling={"scorer_version": world.scorer.version},
    )  # fmt: skip
    return campaign, pi, drawn


def test_active_plan_equals_active_mean_ci(active, world):
    campaign, pi, drawn = active
    tables, meta = _tables(campaign)
    assert meta["scorer_choice"] == "the campaign's sampling scorer"
    found = {}
    for group in ("Muslim", "White"):
        cell = _cell_outputs(world, group)
        y, yhat, yhat_unlabelled = direct_arrays(world, cell, labelled=drawn)
        pi_drawn = np.array([pi[o.pk] for o in cell if o.pk in drawn])
        row = _row(tables, group=group)
        expected = active_mean_ci(y, yhat, yhat_unlabelled, pi_drawn)
        _assert_cell(row["active"], expected)
        _assert_cell(row["human"], classical_mean_ci(y, pi=pi_drawn))
        assert row["ppi"]["value"] is None
        assert "not a uniform sample" in row["ppi"]["reason"]
        w_human = row["human_width"]["value"]
        w_active = expected.ci_high - expected.ci_low
        assert row["active_saved"]["value"] == pytest.approx(7 * (w_human / w_active) ** 2 - 7)
        found[group] = expected
    differences = tables["machine_assisted_differences"]["rows"]
    assert {r["method"] for r in differences} == {"Human labels only", "Active inference"}
    row = next(r for r in differences if (r["outcome"], r["method"]) == ("Refusal", "Active inference"))
    (expected,) = differences_from_control([found["Muslim"], found["White"]], control=1)
    assert row["difference"]["value"] == pytest.approx(expected.value)
    assert row["p_holm"] == pytest.approx(expected.p_holm)


def test_active_is_undefined_while_drawn_items_lack_final_labels(active, world):
    campaign, _, drawn = active
    muslim = [o for o in _cell_outputs(world, "Muslim") if o.pk in drawn]
    CampaignItem.objects.filter(campaign=campaign, output=muslim[0]).update(final_category=None)
    tables, _ = _tables(campaign)
    row = _row(tables, group="Muslim")
    assert row["active"]["value"] is None
    assert row["active"]["reason"].startswith("1 of the cell's 7 drawn outputs have no final label yet")
    assert row["human"]["n"] == 6
    assert _row(tables, group="White")["active"]["value"] is not None


def test_no_scores_costs_one_query(default_scheme, django_assert_num_queries):
    world = build_world(default_scheme, n=3)
    campaign = make_campaign(default_scheme, world, plan=Plan.ALL, drawn=set(), labelled=set())
    campaign = campaign_get_for_stats(campaign_id=campaign.pk)
    with django_assert_num_queries(1):
        tables, meta = machine_assisted_tables(filters=StatsFilters(campaign=campaign.pk), campaign=campaign)
    assert tables["machine_assisted"]["rows"] == []
    assert meta["scorers"] == []
    assert meta["assumptions"][0].startswith("No scorer version has finished scores")


def test_population_query_count_does_not_grow_with_the_population(default_scheme, django_assert_num_queries):
    counts = []
    for n, suffix in ((3, ""), (12, "-big")):
        world = build_world(default_scheme, n=n, suffix=suffix)
        add_scores(world, world.all_outputs())
        outputs = world.all_outputs()
        pi = {o.pk: 0.5 for o in outputs}
        drawn = {o.pk for o in outputs[::2]}
        campaign = make_campaign(default_scheme, world, plan=Plan.UNIFORM, drawn=drawn, labelled=drawn, pi=pi)
        campaign = campaign_get_for_stats(campaign_id=campaign.pk)
        filters = StatsFilters(campaign=campaign.pk)
        with django_assert_num_queries(6) as captured:  # versions, scorers, population, 3 dimension tables
            tables, _ = machine_assisted_tables(filters=filters, campaign=campaign)
        counts.append(len(captured.captured_queries))
        assert {r["outputs"] for r in tables["machine_assisted"]["rows"]} == {n}
        with django_assert_num_queries(5):  # the named scorer instead of the versions' query
            machine_assisted_tables(filters=filters, campaign=campaign, scorer_id=world.scorer.pk)
    assert counts == [6, 6]


def test_filters_narrow_the_population(uniform, world):
    muslim = _cell_outputs(world, "Muslim")[0].prompt.group
    tables, _ = _tables(uniform, group=muslim.pk, run=world.all_outputs()[0].run_id)
    assert {r["group"] for r in tables["machine_assisted"]["rows"]} == {"Muslim"}
    assert tables["machine_assisted_differences"]["rows"] == []  # the control group is filtered out
    tables, meta = _tables(uniform, model=999999)
    assert tables["machine_assisted"]["rows"] == []
    assert meta["scorers"] == []  # no score on an empty population


# --------------------------------------------------------------------------- API, page, audit_report


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


def test_api(researcher_client, uniform, world, annotator, client):
    url = f"/api/stats/machine-assisted/?campaign={uniform.pk}"
    body = researcher_client.get(url).json()
    assert set(body["tables"]) == {"machine_assisted", "machine_assisted_differences"}
    assert body["machine_assisted"]["sampling_plan"] == "uniform"
    row = next(r for r in body["tables"]["machine_assisted"]["rows"] if r["group"] == "Muslim")
    assert row["ppi"]["value"] is not None
    named = researcher_client.get(f"{url}&scorer={world.scorer.pk}").json()
    assert named["machine_assisted"]["scorer_choice"] == "the scorer named by the `scorer` parameter"
    assert named["tables"]["machine_assisted"]["rows"] == body["tables"]["machine_assisted"]["rows"]
    response = researcher_client.get(f"{url}&scorer=x")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "scorer"
    assert researcher_client.get(f"{url}&scorer=999999").status_code == 404
    client.force_login(annotator)
    assert client.get(url).status_code == 403


def test_dashboard_section(researcher_client, uniform):
    html = researcher_client.get(f"/dashboards/?campaign={uniform.pk}&bootstrap=0").content.decode()
    assert 'id="s-machine_assisted">Machine-assisted estimates</h2>' in html
    assert 'id="fig-machine-assisted"' in html
    assert "The scorer was fixed before the draw" in html
    assert "format=csv&amp;table=machine_assisted_differences" in html
    csv = researcher_client.get(
        f"/dashboards/?campaign={uniform.pk}&bootstrap=0&format=csv&table=machine_assisted"
    ).content.decode()
    assert "ppi_saved_undefined_reason" in csv.splitlines()[0]


def test_audit_report(uniform, capsys, tmp_path):
    call_command("audit_report", "--campaign", str(uniform.pk), "--bootstrap", "0")
    report = json.loads(capsys.readouterr().out)
    assert {"machine_assisted", "machine_assisted_differences"} <= set(report["tables"])
    assert report["machine_assisted"]["sampling_plan"] == "uniform"
    out = tmp_path / "report.md"
    call_command(
        "audit_report",
        "--campaign",
        str(uniform.pk),
        "--bootstrap",
        "0",
        "--format",
        "md",
        "--output",
        str(out),
    )
    text = out.read_text()
    assert "## Machine-assisted estimates: what they assume" in text
    assert "### Machine-assisted estimates: human labels only, PPI++ and active inference" in text
    assert "undefined (the sampling plan is uniform random sample, not active)" in text


def test_the_default_minimum_hides_every_interval_of_a_small_cell(uniform, settings):
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 80  # the default (auditproject/settings.py)
    tables, _ = _tables(uniform)
    row = _row(tables, group="Muslim")
    reason = "7 human labels in this cell; intervals are shown from 80"
    for method in ("human", "ppi"):
        assert (row[method]["value"], row[method]["reason"]) == (None, reason)
    assert row["labelled"] == 7
    assert row["ppi_saved"]["reason"] == "the human-only interval is undefined"
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 7
    assert _row(_tables(uniform)[0], group="Muslim")["ppi"]["value"] is not None


def test_rare_predicted_rates_need_more_labels_before_an_interval(uniform, settings):
    """annotations.stats.ppi.too_few_labels_reason: at the scorer's predicted rate over the whole cell
    (blind to the labels), MIN_EXPECTED labels must be expected with and without the outcome; the
    rule reads the scorer's rate of each outcome, so a rare category hides where the refusal rate
    does not."""
    tables, _ = _tables(uniform)
    row = _row(tables, group="Muslim")
    ppi = row["ppi"]
    assert ppi["value"] is not None
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 3
    tables, _ = _tables(uniform)
    shown, hidden = 0, 0
    for r in tables["machine_assisted"]["rows"]:
        reason = r["human"]["reason"] or ""
        if "expected" in reason:
            hidden += 1
            rate = float(reason.split("near ")[1].split("%")[0]) / 100
            n = r["labelled"]
            assert n * min(rate, 1 - rate) < 3 + n * 0.0006  # the rate is printed to 0.1%
            assert (r["ppi"]["value"], r["human"]["value"]) == (None, None)
            assert reason.endswith("intervals are shown from 3")
        elif r["human"]["value"] is not None:
            shown += 1
    assert hidden
    assert shown
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 0
    assert _row(_tables(uniform)[0], group="Muslim")["ppi"]["value"] == ppi["value"]


def test_drawn_outputs_without_a_final_label_are_counted_and_said(uniform, world):
    tables, meta = _tables(uniform)
    # the fixture draws 8 of each group's 14 and labels 7: one per group waits
    assert _row(tables, group="Muslim")["waiting"] == 1
    note = meta["assumptions"][0]
    assert note.startswith("2 of the 16 outputs the plan drew have no final label yet")
    assert "finish it before relying on them" in note
    answer = uniform.scheme.categories.get(key=A)
    CampaignItem.objects.filter(campaign=uniform, final_category__isnull=True).update(final_category=answer)
    _, meta = _tables(uniform)
    assert not any("no final label yet" in a for a in meta["assumptions"])


@pytest.mark.parametrize(
    "probabilities",
    [
        {"refusal-to-answer": "lots", "answer": 0.5},
        {"refusal-to-answer": 0.9, "no-such-category": 0.1},
        {"refusal-to-answer": 0.9, "answer": 0.9},
        {"refusal-to-answer": True, "answer": 0.0},
    ],
)
def test_unusable_stored_probabilities_fall_back_to_the_category(uniform, world, probabilities):
    """Written past the score services (a direct database write): never a server error, and the same
    reading as the active draw's (sampling_plans.probability_row)."""
    muslim = _cell_outputs(world, "Muslim")
    Score.objects.filter(output=muslim[0]).update(probabilities=probabilities)
    score = Score.objects.get(output=muslim[0])
    tables, _ = _tables(uniform)
    row = _row(tables, group="Muslim")
    assert row["unscored"] == (0 if score.category_id else 1)
    Score.objects.filter(output=muslim[0]).update(probabilities=probabilities, category=None)
    assert _row(_tables(uniform)[0], group="Muslim")["unscored"] == 1
