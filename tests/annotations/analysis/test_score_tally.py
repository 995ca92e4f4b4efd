"""The score tally kept by PostgreSQL triggers equals a GROUP BY over items and scores, whatever wrote them.

One seeded random walk drives every write path that moves a (campaign item, finished score) pair: score
runs (bulk insert, then conditional UPDATEs per chunk), imports and bulk inserts of finished scores,
score updates and deletes, label submits (the SQL function), label changes, adjudications, a change of
final rule, bulk item updates, campaigns created and deleted, and a recount after drift. After every step
the tally must equal a recount from the base tables, and the scorer rows the report reads from it must
equal the ones the SQLite path groups from the base tables; the scorer tables are then compared whole.
"""

import random
from collections import Counter
from unittest import mock

import pytest
from django.db import connection

from annotations.analysis import selectors
from annotations.analysis.scorer_report import _score_rows, scorer_tables
from annotations.analysis.selectors import StatsFilters
from annotations.analysis.tallies import tallies_rebuild
from annotations.core.exceptions import AuditError
from annotations.labelling.campaigns import campaign_create, campaign_delete, campaign_update
from annotations.labelling.services import (
    assignment_next,
    item_adjudicate,
    items_refresh,
    label_change,
    label_submit,
)
from annotations.models import Campaign, CampaignItem, Label, ScoreTally
from inference.models import Output, Score, Scorer
from inference.services.score_imports import scores_import
from inference.services.scoring import score_run_in_process, score_run_start, scorer_create, scorer_update
from tests.annotations.analysis.dashboard_fixtures import build_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

XSTEST = {"preset": "xstest", "refusal_category": "refusal-to-answer", "otherwise_category": "answer"}
# The tally's key, recounted independently of annotations/analysis/tallies.py.
RECOUNT = """SELECT i.campaign_id, i.run_id, i.endpoint_id, i.prompt_id, COALESCE(i.final_category_id, -1),
    s.scorer_id, s.scorer_version, COALESCE(s.category_id, -1), s.is_unparseable,
    CASE WHEN s.is_flagged IS NULL THEN -1 WHEN s.is_flagged THEN 1 ELSE 0 END, COUNT(*)
FROM annotations_campaignitem i JOIN inference_score s ON s.output_id = i.output_id
WHERE s.status = 'done' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"""
TALLY = """SELECT campaign_id, run_id, endpoint_id, prompt_id, final_category_id, scorer_id, scorer_version,
    category_id, is_unparseable, flagged, n FROM annotations_scoretally WHERE n <> 0"""


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the score tally is kept by PostgreSQL triggers (set DATABASE_URL)")


def _rows(sql: str) -> Counter:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return Counter({tuple(row[:-1]): row[-1] for row in cursor.fetchall()})


def _filters(campaign: Campaign) -> list[StatsFilters]:
    item = CampaignItem.objects.filter(campaign=campaign).select_related("prompt__group").first()
    if item is None:
        return [StatsFilters(campaign=campaign.pk)]
    group = item.prompt.group
    return [
        StatsFilters(campaign=campaign.pk),
        StatsFilters(campaign=campaign.pk, model=item.endpoint_id),
        StatsFilters(campaign=campaign.pk, run=item.run_id),
        StatsFilters(campaign=campaign.pk, group=group.pk),
        StatsFilters(campaign=campaign.pk, axis=group.axis_id),
        StatsFilters(campaign=campaign.pk, template=item.prompt.template_id),
        StatsFilters(campaign=campaign.pk, model=item.endpoint_id, group=group.pk),
    ]


def _check(step: str) -> None:
    """The tally equals the recount (no row below 0), and the report's rows are the same both ways."""
    tally = _rows(TALLY)
    assert tally == _rows(RECOUNT), step
    assert not ScoreTally.objects.filter(n__lt=0).exists(), step
    for campaign in Campaign.objects.all():
        for filters in _filters(campaign):
            tallied = Counter(_score_rows(filters, from_tallies=True))
            assert tallied == Counter(_score_rows(filters, from_tallies=False)), (step, filters)


class World:
    """Two campaigns over one run's 12 outputs, three scorers, and the random choices of the walk."""

    def __init__(self, scheme, make_user, seed: int):
        self.rng = random.Random(seed)
        self.scheme = scheme
        self.labelled, self.annotators, items = build_campaign(scheme, make_user)
        self.run = next(iter(items.values())).run
        self.run_id = self.run.pk
        self.researcher = make_user("researcher", "walker")
        self.fresh = campaign_create(
            actor=self.researcher,
            name="fresh",
            scheme=scheme,
            selection={"runs": [self.run_id]},
            annotators=self.annotators,
            labels_per_output=2,
            seed=seed,
        )
        self.extra: list[Campaign] = []
        self.string_match = scorer_create(
            name="xstest", kind=Scorer.Kind.STRING_MATCH, scheme=scheme, config=XSTEST
        )
        self.imported = Scorer.objects.create(
            name="crowd", kind=Scorer.Kind.IMPORTED, scheme=scheme, version="v1"
        )
        self.flags = Scorer.objects.create(name="toxicity", kind=Scorer.Kind.IMPORTED, version="f1")
        self.outputs = list(Output.objects.filter(run_id=self.run_id).order_by("pk"))
        self.keys = list(scheme.categories.order_by("order").values_list("key", flat=True))
        self.category_ids = list(scheme.categories.values_list("pk", flat=True))
        self.versions = 1  # a counter for new scorer versions and campaign names

    def some(self, values: list, most: int = 4) -> list:
        return self.rng.sample(values, self.rng.randint(1, min(most, len(values)))) if values else []

    # score writes
    def score_run(self) -> None:
        if self.rng.random() < 0.5:  # a new version scores everything again
            phrase = self.rng.choice(["ok", f"never {self.versions}"])  # the outputs say "ok"
            rules = {"preset": None, "rules": [{"phrase": phrase, "match": "contains"}]}
            scorer_update(scorer=self.string_match, config={**XSTEST, **rules})
            self.versions += 1
        try:
            run = score_run_start(scorer=self.string_match, generation_run=self.run, dispatch=False)
        except AuditError:
            return  # unfinished scores of this version: the next score_update may finish them
        score_run_in_process(run=run)

    def score_import(self) -> None:
        self.versions += 1
        Scorer.objects.filter(pk=self.imported.pk).update(version=f"v{self.versions}")
        self.imported.refresh_from_db()
        lines = ["output_id,category"]
        for output in self.some(self.outputs, 8):
            lines.append(f"{output.pk},{self.rng.choice([*self.keys, 'gibberish'])}")
        content = ("\n".join(lines) + "\n").encode()
        try:
            scores_import(scorer=self.imported, content=content, filename="crowd.csv", actor=None)
        except AuditError:
            return  # an unknown category refuses the whole file: nothing written

    def score_bulk_insert(self) -> None:
        self.versions += 1
        run = self.flags.runs.create(name="bulk", scorer_version=self.flags.version, status="completed")
        Score.objects.bulk_create(
            Score(
                run=run,
                scorer=self.flags,
                scorer_version=f"f{self.versions}",
                output=output,
                status=self.rng.choice(["done", "done", "pending", "failed"]),
                flag_score=self.rng.random(),
                is_flagged=self.rng.choice([None, True, False]),
                is_unparseable=self.rng.random() < 0.2,
            )
            for output in self.some(self.outputs, 12)
        )

    def score_update(self) -> None:
        ids = self.some(list(Score.objects.values_list("pk", flat=True)), 6)
        Score.objects.filter(pk__in=ids).update(
            status=self.rng.choice(["done", "done", "running", "failed", "pending"]),
            category_id=self.rng.choice([None, *self.category_ids]),
            is_unparseable=self.rng.random() < 0.3,
            is_flagged=self.rng.choice([None, True, False]),
        )

    def score_delete(self) -> None:
        Score.objects.filter(pk__in=self.some(list(Score.objects.values_list("pk", flat=True)), 3)).delete()

    # item writes
    def label(self) -> None:
        for annotator in self.some(self.annotators, 3):
            lease = assignment_next(campaign=self.fresh, annotator=annotator)
            if lease is not None:
                key = self.rng.choice(self.keys[:2])
                label_submit(
                    campaign=self.fresh, annotator=annotator, item_id=lease.item_id, category_key=key
                )

    def relabel(self) -> None:
        labels = list(Label.objects.exclude(item__status="adjudicated").select_related("item__campaign"))
        for label in self.some(labels, 2):
            label_change(
                campaign=label.item.campaign,
                annotator=label.annotator,
                item_id=label.item_id,
                category_key=self.rng.choice(self.keys),
            )

    def adjudicate(self) -> None:
        disputed = list(CampaignItem.objects.filter(status__in=["disputed", "adjudicated"]))
        for item in self.some(disputed, 2):
            item_adjudicate(
                campaign=item.campaign,
                adjudicator=self.researcher,
                item_id=item.pk,
                category_key=self.rng.choice(self.keys),
                reason="walk",
            )

    def final_rule(self) -> None:
        campaign = self.rng.choice([self.labelled, self.fresh])
        campaign.refresh_from_db()
        rule = "majority" if campaign.final_rule == "adjudicate" else "adjudicate"
        campaign_update(actor=self.researcher, campaign=campaign, final_rule=rule)

    def items_bulk(self) -> None:
        """Items written around the services (the admin, SQL); items_refresh puts them back later."""
        ids = self.some(list(CampaignItem.objects.values_list("pk", flat=True)), 5)
        CampaignItem.objects.filter(pk__in=ids).update(
            final_category_id=self.rng.choice([None, *self.category_ids])
        )

    def refresh(self) -> None:
        items_refresh(item_ids=CampaignItem.objects.values_list("pk", flat=True))

    def campaign_new(self) -> None:
        self.versions += 1
        self.extra.append(
            campaign_create(
                actor=self.researcher,
                name=f"extra {self.versions}",
                scheme=self.scheme,
                selection={"runs": [self.run_id]},
                seed=self.versions,
            )
        )

    def items_delete(self) -> None:
        """Some items of a campaign nobody labels (deleting a whole campaign also drops its tally rows)."""
        if self.extra:
            items = list(CampaignItem.objects.filter(campaign=self.extra[-1]).values_list("pk", flat=True))
            CampaignItem.objects.filter(pk__in=self.some(items, 4)).delete()

    def campaign_drop(self) -> None:
        if self.extra:
            campaign_delete(actor=self.researcher, campaign=self.extra.pop(0))

    def rebuild(self) -> None:
        campaign_id = self.rng.choice([None, self.labelled.pk])
        rows = (
            ScoreTally.objects.all()
            if campaign_id is None
            else ScoreTally.objects.filter(campaign_id=campaign_id)
        )
        ScoreTally.objects.filter(pk__in=rows.values("pk")[:3]).update(n=99)  # drift, e.g. a restored backup
        tallies_rebuild(campaign_id=campaign_id)


STEPS = [
    "score_run", "score_import", "score_bulk_insert", "score_update", "score_update", "score_delete",
    "label", "label", "relabel", "adjudicate", "final_rule", "items_bulk", "refresh", "campaign_new",
    "items_delete", "campaign_drop", "rebuild",
]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_every_write_path_keeps_the_score_tally(default_scheme, make_user, seed):
    world = World(default_scheme, make_user, seed)
    _check("setup")
    world.score_run()
    _check("first score run")
    assert ScoreTally.objects.filter(campaign=world.labelled).exists()
    walk = STEPS + [world.rng.choice(STEPS) for _ in range(40)]  # every step once, then at random
    for number, step in enumerate(walk):
        getattr(world, step)()
        _check(f"{number}: {step}")
    world.refresh()
    world.score_run()
    _check("end")
    assert Score.objects.filter(status="done").count() > 12


def test_scorer_tables_are_the_same_from_the_tally_and_from_the_scores(default_scheme, make_user):
    world = World(default_scheme, make_user, seed=5)
    world.score_run()
    for _ in range(3):
        world.score_import()
        world.score_bulk_insert()
    Score.objects.filter(pk__in=Score.objects.filter(scorer=world.flags).values("pk")[:3]).update(
        status="done", is_flagged=True
    )
    world.label()
    world.label()
    compared = 0
    for campaign in (world.labelled, world.fresh):
        for filters in _filters(campaign):
            tallied = scorer_tables(filters=filters, n_resamples=50, seed=1)
            with mock.patch.object(selectors, "use_tallies", return_value=False):
                direct = scorer_tables(filters=filters, n_resamples=50, seed=1)
            assert tallied == direct, filters
            compared += len(tallied["scorers"]["rows"])
    assert compared > 10
    flagged = scorer_tables(filters=StatsFilters(campaign=world.labelled.pk), n_resamples=0)["scorer_flags"]
    assert flagged["rows"]
