"""Name attributes within groups, on the hand-checkable campaign (dashboard_fixtures)."""

import numpy as np
import pytest

from annotations.analysis.report import dashboard_report
from annotations.analysis.selectors import StatsFilters
from annotations.models import GroupMember
from annotations.stats import cmh_test, logistic_group_test
from tests.annotations.analysis.dashboard_fixtures import build_campaign

pytestmark = pytest.mark.django_db


def _set(value: str, attributes) -> None:
    GroupMember.objects.filter(value=value).update(attributes=attributes)


def test_rates_by_attribute_within_groups_and_the_stratified_tests(default_scheme, make_user):
    """Final labels: llama-7b refuses Mohammed 1 of 1 (his shop answer is disputed), Fatima 1 of 2, John
    0 of 2; llama-13b Mohammed 2 of 2, Fatima 0 of 2, John 0 of 1."""
    campaign, _, _ = build_campaign(default_scheme, make_user)
    _set("Mohammed", {"gender": "man", "popularity": "common", "note": {"nested": "ignored"}})
    _set("Fatima", {"gender": "woman", "popularity": "rare"})
    _set("John", {"gender": "man", "popularity": "common"})
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0)
    rows = {
        (r["model"], r["group"], r["attribute"], r["level"]): (r["members"], r["refusals"], r["n"])
        for r in report["tables"]["member_attributes"]["rows"]
    }
    assert rows[("llama-7b", "Muslim", "gender", "man")] == (1, 1, 1)
    assert rows[("llama-7b", "Muslim", "gender", "woman")] == (1, 1, 2)
    assert rows[("llama-7b", "White", "gender", "man")] == (1, 0, 2)
    assert rows[("llama-13b", "Muslim", "popularity", "common")] == (1, 2, 2)
    assert rows[("llama-13b", "Muslim", "popularity", "rare")] == (1, 0, 2)
    assert ("llama-13b", "White", "popularity", "rare") not in rows  # no rare White name
    assert not any(key[2] == "note" for key in rows)  # a nested value is not a level
    tests = {(r["model"], r["attribute"]): r for r in report["tables"]["attribute_tests"]["rows"]}
    popularity = tests[("llama-13b", "popularity")]
    assert popularity["levels"] == "common, rare"
    # groups (control first: White, Muslim) x levels (common, rare)
    x, n = np.array([[0, 0], [2, 0]]), np.array([[1, 0], [2, 2]])
    expected = logistic_group_test(x, n)
    assert popularity["statistic"] == pytest.approx(expected.statistic)
    assert popularity["dof"] == 1
    stratified = cmh_test(np.array([[[0, 1], [0, 0]], [[2, 0], [0, 2]]]))
    assert popularity["cmh_p"] == pytest.approx(stratified.p_value)


def test_an_attribute_with_too_many_values_is_not_tabulated(default_scheme, make_user, monkeypatch):
    """A numeric attribute (a popularity rank, say) has a value per name: past MAX_LEVELS it is not a
    level but a number to bin, and the test row says so (the fixture's 3 names: a limit of 2)."""
    campaign, _, _ = build_campaign(default_scheme, make_user)
    for i, member in enumerate(GroupMember.objects.all()):
        member.attributes = {"rank": i * 1000}
        member.save()
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0)
    assert {r["level"] for r in report["tables"]["member_attributes"]["rows"]} == {"0", "1000", "2000"}
    monkeypatch.setattr("annotations.analysis.member_attributes.MAX_LEVELS", 2)
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0)
    assert report["tables"]["member_attributes"]["rows"] == []
    reasons = {r["reason"] for r in report["tables"]["attribute_tests"]["rows"]}
    assert reasons == {"3 distinct values: bin them"}


def test_the_attribute_filter_keeps_only_those_names_in_every_section(default_scheme, make_user, client):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    _set("Mohammed", {"popularity": "common"})
    _set("Fatima", {"popularity": "rare"})
    _set("John", {"popularity": "common"})
    filters = StatsFilters(campaign=campaign.pk, attribute=("popularity", "common"))
    report = dashboard_report(filters=filters, n_resamples=0)
    members = {r["member"] for r in report["tables"]["members"]["rows"]}
    assert members == {"Mohammed", "John"}
    assert {r["level"] for r in report["tables"]["member_attributes"]["rows"]} == {"common"}
    assert report["summary"]["items_in_filter"] == 8  # 2 names x 2 templates x 2 models
    agreement = next(r for r in report["tables"]["agreement"]["rows"] if r["scope"] == "campaign")
    everything = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0)
    whole = next(r for r in everything["tables"]["agreement"]["rows"] if r["scope"] == "campaign")
    assert agreement["items"] < whole["items"]  # the label sets are filtered too
    assert filters.as_query()["attribute"] == "popularity:common"

    client.force_login(make_user("researcher", "reader"))
    page = client.get(f"/dashboards/?campaign={campaign.pk}&attribute=popularity:common")
    assert page.status_code == 200
    assert 'value="popularity:common"' in page.content.decode()
    for bad in ("popularity", "a__b$:x", ":common", "popularity:" + "x" * 81):
        response = client.get(f"/dashboards/?campaign={campaign.pk}&attribute={bad}")
        assert response.status_code == 400, bad
        assert "attribute must be KEY:LEVEL" in response.content.decode()
    api = client.get(f"/api/stats/disparity/?campaign={campaign.pk}&attribute=popularity:rare")
    assert api.status_code == 200
    assert {r["member"] for r in api.json()["tables"]["members"]["rows"]} == {"Fatima"}
    nobody = dashboard_report(filters=StatsFilters(campaign=campaign.pk, attribute=("popularity", "x")))
    assert nobody["summary"]["items_in_filter"] == 0
