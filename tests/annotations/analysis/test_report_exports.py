"""Report exports for papers (annotations/analysis/report_exports.py): self-contained HTML and LaTeX.

The fixture's numbers are known (dashboard_fixtures.LABELS): llama-7b refuses 2 of its 3 Muslim outputs
with a final label, llama-13b 2 of 4, both 0 of their White ones. The Wilson bounds are recomputed
with statsmodels rather than copied from the code under test.
"""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from statsmodels.stats.proportion import proportion_confint

from annotations.analysis.report import dashboard_report
from annotations.analysis.report_exports import latex_escape, report_to_html, report_to_latex
from annotations.analysis.report_svg import Row, dot_whisker_svg
from annotations.analysis.selectors import StatsFilters
from annotations.models import Campaign, Group
from tests.annotations.analysis.dashboard_fixtures import build_campaign

pytestmark = pytest.mark.django_db

HOSTILE_HTML = "<script>alert(1)</script>"
HOSTILE_TEX = r"50% & $x_1$ \input{x} #1 ~^_{}"


@pytest.fixture
def campaign(default_scheme, make_user):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    return campaign


def _wilson_pct(x: int, n: int) -> tuple[str, str, str]:
    low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
    return f"{100 * x / n:.1f}", f"{100 * low:.1f}", f"{100 * high:.1f}"


def _latex(campaign_id: int, *args: str, capsys) -> str:
    call_command("audit_report", "--campaign", str(campaign_id), "--format", "latex", *args)
    return capsys.readouterr().out


# --------------------------------------------------------------------------- LaTeX


def test_latex_tables_hold_the_fixture_numbers_in_the_shape_papers_use(campaign, capsys):
    text = _latex(campaign.pk, "--bootstrap", "50", capsys=capsys)
    seven, thirteen, pooled = _wilson_pct(2, 3), _wilson_pct(2, 4), _wilson_pct(4, 7)
    assert seven == ("66.7", "20.8", "93.9")  # the hand-checked numbers of the fixture
    cell = "{} [{}, {}]".format
    # refusal rate: a row per group, a column per model and the pooled slice
    assert r"Group & llama-7b & llama-13b & All models (pooled) \\" in text
    assert f"Muslim & {cell(*seven)} & {cell(*thirteen)} & {cell(*pooled)} " + r"\\" in text
    white = cell(*_wilson_pct(0, 2)), cell(*_wilson_pct(0, 1)), cell(*_wilson_pct(0, 3))
    assert r"White$^\dagger$ & " + " & ".join(white) + r" \\" in text
    # harmful refusal has its own table; nobody's output was a harmful refusal in the final labels
    assert r"\caption{Harmful refusal rate per group and model (" in text
    assert f"Muslim & {cell(*_wilson_pct(0, 3))} & {cell(*_wilson_pct(0, 4))} & " in text
    # the long table carries n per cell, and both rates
    assert f"llama-7b & White$^\\dagger$ & 2 & {white[0]} & {white[0]} " + r"\\" in text
    assert f" & Muslim & 3 & {cell(*seven)} & {cell(*_wilson_pct(0, 3))} " + r"\\" in text
    # agreement: alpha with its bootstrap interval, Fleiss undefined with a note giving the reason
    assert re.search(r"\ncampaign & campaign-\d+ & 12 & 26 & 0\.\d{3} \[[-$\d.]+, [\d.]+\] & undefined"
                     r"\\textsuperscript\{a\} & ", text)  # fmt: skip
    assert r"\textsuperscript{a}Undefined: Fleiss' kappa needs the same number of ratings" in text
    assert r"Bootstrap 95\% intervals over items (50 resamples, seed 0)." in text
    # booktabs: every table has its three rules and one tabular, and nothing is left open
    tables = text.count(r"\begin{table}")
    assert tables == 4
    for rule in (
        r"\toprule",
        r"\midrule",
        r"\bottomrule",
        r"\begin{tabular}",
        r"\end{tabular}",
        r"\end{table}",
    ):
        assert text.count(rule) >= tables, rule
    assert text.count(r"\toprule") == text.count(r"\bottomrule") == tables
    assert r"\hline" not in text
    assert text.startswith("% Audit report tables: ")


def test_latex_follows_the_filters_and_writes_to_a_file(campaign, tmp_path):
    white = Group.objects.get(name="White")
    out = tmp_path / "tables.tex"
    call_command(
        "audit_report", "--campaign", str(campaign.pk), "--format", "latex", "--group", str(white.pk),
        "--bootstrap", "0", "--output", str(out),
    )  # fmt: skip
    text = out.read_text()
    assert f"group={white.pk}" in text.splitlines()[1]
    assert "Muslim" not in text
    assert "No intervals (bootstrap resamples 0)." in text


def test_latex_escapes_every_user_provided_name(campaign, capsys):
    Group.objects.filter(name="White").update(name=HOSTILE_TEX)
    Campaign.objects.filter(pk=campaign.pk).update(name="Draft\n\\end{document} 100%")
    text = _latex(campaign.pk, "--bootstrap", "0", capsys=capsys)
    escaped = latex_escape(HOSTILE_TEX)
    assert escaped == (
        r"50\% \& \$x\_1\$ \textbackslash{}input\{x\} \#1 \textasciitilde{}\textasciicircum{}\_\{\}"
    )
    assert escaped in text
    assert HOSTILE_TEX not in text
    assert r"\input{x}" not in text.replace(r"\input{} this file", "")
    assert r"\end{document}" not in text  # the campaign name cannot end the paper
    assert "Draft \\textbackslash{}end\\{document\\} 100\\%" in text
    assert all(line.startswith("%") for line in text.splitlines()[:3])  # the newline did not escape


@pytest.mark.skipif(
    not shutil.which("pdflatex") or not shutil.which("kpsewhich"), reason="needs pdflatex (scripts/test.sh)"
)
def test_latex_compiles_with_booktabs_even_with_hostile_names(campaign, capsys, tmp_path):
    Group.objects.filter(name="White").update(name=HOSTILE_TEX)
    Group.objects.filter(name="Muslim").update(name="Ünïcødé <b>&amp;</b> | ∑")
    (tmp_path / "tables.tex").write_text(_latex(campaign.pk, "--bootstrap", "20", capsys=capsys))
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage[T1]{fontenc}\n"
        "\\usepackage{booktabs}\n\\DeclareUnicodeCharacter{2211}{$\\sum$}\n"
        "\\begin{document}\n\\input{tables}\n\\end{document}\n"
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "paper.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    log = (tmp_path / "paper.log").read_text(errors="replace")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000
    assert "Undefined control sequence" not in log
    assert "! " not in log
    assert "(./x.tex" not in log  # the group named \input{x} did not read a file


# --------------------------------------------------------------------------- HTML


class _Page(HTMLParser):
    """Tags, attributes and ids of an HTML page, to check what it loads and links to."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if attrs.get("id"):
            self.ids.add(attrs["id"])


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_html_is_one_self_contained_page_with_the_fixture_numbers(campaign, tmp_path):
    out = tmp_path / "report.html"
    call_command(
        "audit_report", "--campaign", str(campaign.pk), "--format", "html", "--bootstrap", "50",
        "--output", str(out),
    )  # fmt: skip
    html = out.read_text()
    page = _parse(html)
    # nothing loads from anywhere: no script, no stylesheet link, no image or frame source
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags
    assert "link" not in tags
    assert "iframe" not in tags
    assert "img" not in tags
    for tag, attrs in page.tags:
        for name in ("src", "srcset", "action", "xlink:href"):
            assert name not in attrs, (tag, attrs)
        if "href" in attrs:
            assert attrs["href"].startswith("#"), attrs  # only links within the page
            assert attrs["href"][1:] in page.ids, attrs["href"]  # and each lands on something
    assert "@import" not in html
    assert "url(" not in html
    # the charts are inline SVG: refusal, harmful refusal, alpha
    assert tags.count("svg") == 3
    assert "@media print" in html
    # the numbers, formatted as on the dashboard, every table present with its anchor
    seven = _wilson_pct(2, 3)
    assert f"<td>{seven[0]}% [{seven[1]}%, {seven[2]}%]</td>" in html
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0)
    for key in report["tables"]:
        assert f"t-{key}" in page.ids, key
    # headline findings come first and link their tables
    assert html.index('id="findings"') < html.index('id="summary"') < html.index('id="s-disparity"')
    for finding in report["findings"]:
        assert f'<a href="#t-{finding["table"]}">' in html
    assert "Items in the filter" in html


def test_html_escapes_names_everywhere_including_the_charts(campaign):
    Group.objects.filter(name="White").update(name=HOSTILE_HTML)
    Campaign.objects.filter(pk=campaign.pk).update(name='"><img src=x onerror=alert(1)>')
    html = report_to_html(dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0))
    assert HOSTILE_HTML not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = _parse(html)
    assert "script" not in [tag for tag, _ in page.tags]
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)


def test_a_campaign_with_no_labels_exports_without_error(default_scheme, make_user):
    from tests import factories

    member = factories.group_member("Aisha", "Muslim")
    prompt_set = factories.prompt_set_with_prompts([member], [factories.template("t")])
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("m")])
    campaign = factories.campaign_with_items(default_scheme, list(run.outputs.all()), annotators=[])
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0)
    html, tex = report_to_html(report), report_to_latex(report)
    assert "undefined (no observations)" in html
    # nothing labelled: every rate and coefficient is undefined with its reason, never 0
    assert r"Muslim & undefined\textsuperscript{a} \\" in tex
    assert r"\textsuperscript{a}Undefined: no observations." in tex
    assert r"\textsuperscript{a}Undefined: no item has two or more ratings." in tex
    assert "0.0 [" not in tex
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 4
    assert not re.search(r"\bnan\b|\binf\b", tex + html, re.IGNORECASE)


def test_svg_draws_no_dot_for_an_undefined_value_and_says_why():
    defined = {"value": 1.4, "ci_low": 0.2, "ci_high": 1.6, "n": 9, "reason": None}
    undefined = {"value": None, "ci_low": None, "ci_high": None, "n": 0, "reason": "no <outputs>"}
    svg = dot_whisker_svg(
        key="k", title="T & t", series=["a<b", "c"], rows=[Row("<g>", (defined, undefined))], axis_label="x"
    )
    assert svg.count("<circle") == 1 + 2  # one dot, two legend marks
    assert "undefined (no &lt;outputs&gt;)" in svg
    assert "<g>" not in svg.replace("<g><title>", "")
    assert "&lt;g&gt;" in svg
    assert "140.0%" in svg  # the tooltip keeps the exact value while the dot is clipped to the axis
    assert re.search(r'<circle cx="(\d+(\.\d+)?)"', svg)


# --------------------------------------------------------------------------- downloads


def test_the_dashboard_downloads_both_exports_with_its_filters(client, researcher, campaign):
    client.force_login(researcher)
    Campaign.objects.filter(pk=campaign.pk).update(name="Llama 2 audit, Dec.")
    white = Group.objects.get(name="White")
    page = client.get(f"/dashboards/?campaign={campaign.pk}&group={white.pk}&bootstrap=0").content.decode()
    for fmt in ("html", "latex"):
        assert f"?campaign={campaign.pk}&amp;group={white.pk}&amp;bootstrap=0&amp;format={fmt}" in page
    response = client.get(f"/dashboards/?campaign={campaign.pk}&group={white.pk}&bootstrap=0&format=html")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="llama-2-audit-dec-report.html"'
    assert "Muslim" not in response.content.decode().split('id="summary"')[1]
    response = client.get(f"/dashboards/?campaign={campaign.pk}&bootstrap=0&format=latex")
    assert response["Content-Type"] == "application/x-tex; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="llama-2-audit-dec-report.tex"'
    assert r"\toprule" in response.content.decode()


def test_exports_keep_the_dashboards_access_rules_and_errors(client, annotator, researcher, campaign):
    client.force_login(annotator)
    response = client.get(f"/dashboards/?campaign={campaign.pk}&format=latex")
    assert response.status_code == 403
    client.force_login(researcher)
    response = client.get(f"/dashboards/?campaign={campaign.pk}&group=abc&format=html")
    assert response.status_code == 400
    assert "group" in response.content.decode()
    assert client.get("/dashboards/?campaign=999999&format=latex").status_code == 404
