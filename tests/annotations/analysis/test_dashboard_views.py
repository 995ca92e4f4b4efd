"""The dashboard page, its CSV downloads, the statistics API, audit_report, and who may see them."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command

from annotations.models import CampaignItem, Group, Label
from tests.annotations.analysis.dashboard_fixtures import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(default_scheme, make_user):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    return campaign


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


def test_page_renders_every_figure_and_table_with_filters(researcher_client, campaign):
    muslim = Group.objects.get(name="Muslim")
    response = researcher_client.get(f"/dashboards/?campaign={campaign.pk}&source=all&bootstrap=50")
    assert response.status_code == 200
    html = response.content.decode()
    for key in ("refusal-rate", "refusal-heatmap", "categories", "agreement", "kappa", "annotators"):
        assert f'id="fig-{key}"' in html
        assert f'id="fig-{key}-data"' in html
    for table in ("rates", "tests", "pairwise", "stratified", "template_gaps", "agreement", "pairwise_kappa"):
        assert f"format=csv&amp;table={table}" in html
    assert 'value="all" selected' in html  # the label source filter keeps its value
    assert f'<option value="{muslim.pk}">Muslim</option>' in html
    assert "/static/plotly/plotly.min.js" in html
    assert "Download SVG" in html


def test_page_links_keep_the_filters(researcher_client, campaign):
    muslim = Group.objects.get(name="Muslim")
    response = researcher_client.get(f"/dashboards/?campaign={campaign.pk}&group={muslim.pk}&bootstrap=0")
    html = response.content.decode()
    assert f'<option value="{muslim.pk}" selected>Muslim</option>' in html
    assert (
        f"?campaign={campaign.pk}&amp;group={muslim.pk}&amp;bootstrap=0&amp;format=csv&amp;table=rates"
        in html
    )


def test_no_page_references_a_cdn(researcher_client, campaign):
    for url in ("/dashboards/", f"/dashboards/?campaign={campaign.pk}&bootstrap=0"):
        html = researcher_client.get(url).content.decode().lower()
        assert "cdn" not in html
        assert not re.search(r"""<script[^>]+src=["']https?://""", html)


def test_plotly_is_served_from_our_static_files():
    path = finders.find("plotly/plotly.min.js")
    assert path is not None
    assert "plotly.js" in Path(path).read_text(encoding="utf-8")[:2000].lower()


def test_undefined_values_render_as_undefined_with_reason(researcher_client, campaign):
    white = Group.objects.get(name="White")
    response = researcher_client.get(f"/dashboards/?campaign={campaign.pk}&group={white.pk}&bootstrap=0")
    html = response.content.decode()
    assert '<span class="undefined">undefined (the lowest rate is 0)' not in html  # one group: no ratio
    assert '<span class="undefined">undefined (' in html
    assert "undefined (fewer than two groups have observations)" in html


def test_page_query_count_does_not_grow_with_data(researcher_client, campaign, default_scheme, make_user,
                                                  django_assert_max_num_queries):  # fmt: skip
    url = f"/dashboards/?campaign={campaign.pk}&bootstrap=0"
    # + 1: the scorer section's GROUP BY; + 1: the machine-assisted section's versions (23 on PostgreSQL)
    with django_assert_max_num_queries(24):
        assert researcher_client.get(url).status_code == 200
    bigger, _, _ = build_campaign(default_scheme, make_user, suffix="-2")  # twice the models, templates
    CampaignItem.objects.filter(campaign=bigger).update(campaign=campaign)
    assert Label.objects.filter(item__campaign=campaign).count() == 52
    with django_assert_max_num_queries(24):
        assert researcher_client.get(url).status_code == 200


def test_csv_download(researcher_client, campaign):
    response = researcher_client.get(
        f"/dashboards/?campaign={campaign.pk}&bootstrap=0&format=csv&table=rates"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    assert response["Content-Disposition"].endswith('-rates.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    muslim_7b = next(r for r in rows if r["model"] == "llama-7b" and r["group"] == "Muslim")
    assert float(muslim_7b["refusal_rate"]) == pytest.approx(2 / 3)
    assert float(muslim_7b["refusal_rate_ci_low"]) == pytest.approx(0.20766, abs=1e-5)
    assert muslim_7b["refusal_rate_undefined_reason"] == ""
    response = researcher_client.get(
        f"/dashboards/?campaign={campaign.pk}&bootstrap=0&format=csv&table=tests"
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    ratio = next(r for r in rows if r["model"] == "llama-7b" and r["outcome"] == "refusal")
    assert ratio["max_min_ratio"] == ""
    assert ratio["max_min_ratio_undefined_reason"] == "the lowest rate is 0"


def test_csv_neutralises_spreadsheet_formulas(researcher_client, campaign):
    Group.objects.filter(name="White").update(name="=HYPERLINK(1)")
    response = researcher_client.get(
        f"/dashboards/?campaign={campaign.pk}&bootstrap=0&format=csv&table=rates"
    )
    assert "'=HYPERLINK(1)" in response.content.decode()


def test_bad_filters_get_a_clear_400(researcher_client, campaign):
    response = researcher_client.get("/dashboards/?campaign=abc&source=nope")
    assert response.status_code == 400
    html = response.content.decode()
    assert "campaign must be a whole-number id" in html
    assert "source must be one of" in html
    response = researcher_client.get(f"/dashboards/?campaign={campaign.pk}&format=csv&table=secret")
    assert response.status_code == 400
    response = researcher_client.get(f"/dashboards/?campaign={campaign.pk}&model=9223372036854775808")
    assert response.status_code == 400
    assert "model must be an id in 1..9223372036854775807" in response.content.decode()
    assert researcher_client.get("/dashboards/?campaign=999999").status_code == 404


def test_campaign_chooser(researcher_client, campaign):
    response = researcher_client.get("/dashboards/")
    assert response.status_code == 200
    assert f'href="?campaign={campaign.pk}"' in response.content.decode()


def test_model_outputs_and_names_are_escaped(researcher_client, campaign):
    Group.objects.filter(name="White").update(name="<script>alert(1)</script>")
    html = researcher_client.get(f"/dashboards/?campaign={campaign.pk}&bootstrap=0").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_access_control(client, campaign, annotator, make_user):
    url = f"/dashboards/?campaign={campaign.pk}&bootstrap=0"
    assert client.get(url).status_code == 302  # guests go to the login page
    client.force_login(annotator)
    assert client.get(url).status_code == 403
    assert client.get(f"/api/stats/disparity/?campaign={campaign.pk}").status_code == 403
    senior = make_user("annotator", "senior")
    senior.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    client.force_login(senior)
    assert client.get(url).status_code == 200
    assert client.get(f"/api/stats/agreement/?campaign={campaign.pk}&bootstrap=0").status_code == 200


def test_nav_shows_dashboards_only_to_those_who_may_see_them(client, researcher, annotator):
    client.force_login(annotator)
    assert 'href="/dashboards/"' not in client.get("/").content.decode()
    client.force_login(researcher)
    assert 'href="/dashboards/"' in client.get("/").content.decode()


def test_api_disparity(researcher_client, campaign):
    response = researcher_client.get(f"/api/stats/disparity/?campaign={campaign.pk}&source=all")
    assert response.status_code == 200
    body = response.json()
    assert set(body["tables"]) >= {"rates", "tests", "pairwise", "stratified", "consistency", "members"}
    assert "agreement" not in body["tables"]
    row = next(
        r for r in body["tables"]["rates"]["rows"] if r["model"] == "llama-7b" and r["group"] == "Muslim"
    )
    assert (row["n"], row["refusals"]) == (9, 6)
    assert body["label_source"]["key"] == "all"


def test_api_agreement_undefined_is_null_with_reason(researcher_client, campaign):
    white = Group.objects.get(name="White")
    response = researcher_client.get(
        f"/api/stats/agreement/?campaign={campaign.pk}&group={white.pk}&bootstrap=0"
    )
    assert response.status_code == 200
    rows = response.json()["tables"]["agreement"]["rows"]
    assert set(response.json()["tables"]) == {
        "agreement",
        "category_agreement",
        "pairwise_kappa",
        "annotator_consensus",
        "annotators",
    }
    assert rows[0]["fleiss"]["value"] is None
    assert rows[0]["fleiss"]["reason"]


def test_api_errors(researcher_client, campaign):
    response = researcher_client.get("/api/stats/disparity/?campaign=x")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "campaign"
    assert researcher_client.get("/api/stats/disparity/").status_code == 400
    assert researcher_client.get("/api/stats/disparity/?campaign=999999").status_code == 404
    response = researcher_client.get(f"/api/stats/agreement/?campaign={campaign.pk}&bootstrap=-1")
    assert response.json()["errors"][0]["field"] == "bootstrap"


def test_audit_report_json(campaign, capsys):
    call_command("audit_report", "--campaign", str(campaign.pk), "--format", "json", "--bootstrap", "100")
    report = json.loads(capsys.readouterr().out)
    row = next(
        r for r in report["tables"]["rates"]["rows"] if r["model"] == "llama-7b" and r["group"] == "Muslim"
    )
    assert row["refusal_rate"]["value"] == pytest.approx(2 / 3)
    assert report["bootstrap_resamples"] == 100
    alpha = report["tables"]["agreement"]["rows"][0]["alpha"]
    assert alpha["ci_low"] is not None


def test_audit_report_markdown_to_file(campaign, tmp_path):
    white = Group.objects.get(name="White")
    out = tmp_path / "report.md"
    call_command(
        "audit_report", "--campaign", str(campaign.pk), "--format", "md", "--group", str(white.pk),
        "--bootstrap", "0", "--output", str(out),
    )  # fmt: skip
    text = out.read_text()
    assert text.startswith("# Audit report: ")
    assert "### Rate of refusal and of each category, per group and model" in text
    assert "| llama-7b | White | 2 | 0 | 0.0% [0.0%, 65.8%] |" in text
    assert "undefined (" in text
    assert f"group={white.pk}" in text
    assert "| Items in the filter | 4 |" in text  # report_formats.SUMMARY_LABELS, as on the page


def test_summary_counts_are_labelled_in_words_from_one_place(researcher_client, campaign):
    """The page and the Markdown report word the counts the same (report_formats.SUMMARY_LABELS);
    every count the report makes has its words."""
    from annotations.analysis.report_formats import SUMMARY_LABELS

    html = researcher_client.get(f"/dashboards/?campaign={campaign.pk}&bootstrap=0").content.decode()
    for label in SUMMARY_LABELS.values():
        assert f"<dt>{label}</dt>" in html
    assert "Itemsinfilter" not in html
    assert "items_in_filter" not in html


def test_audit_report_errors(campaign):
    with pytest.raises(CommandError, match="campaign must be a whole-number id"):
        call_command("audit_report", "--campaign", "abc")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("audit_report", "--campaign", "999999")
