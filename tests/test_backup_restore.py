"""Backup and restore, rehearsed: pg_dump a database with a campaign mid-labelling, pg_restore it into a
fresh database, and the dashboard numbers, the tallies (triggers included) and the next items are the
same; after the same writes on both, still the same (docs/operations.md, "Backup and restore")."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from inference.models import Score, Scorer, ScoreRun
from inference.services.scoring import scorer_create
from tests import factories
from tests.conftest import REPO, _database_url_for_test_db, _requires_postgres


def _mid_labelling_campaign(scheme, make_user):
    """8 outputs, 3 annotators, 2 labels an output: some items final, one disputed, some untouched, one
    held by a lease; a string-match scorer with a score on every output."""
    outputs = factories.two_model_outputs()
    annotators = [make_user("annotator", f"ann{i}") for i in range(3)]
    campaign = factories.campaign_with_items(scheme, outputs, labels_per_output=2, annotators=annotators)
    items = list(campaign.items.order_by("rank"))
    factories.label(items[0], annotators[0], "answer")
    factories.label(items[0], annotators[1], "answer")
    factories.label(items[1], annotators[0], "refusal-to-answer")
    factories.label(items[1], annotators[2], "answer")  # disputed
    factories.label(items[2], annotators[1], "refusal-to-answer")
    factories.label(items[2], annotators[2], "refusal-to-answer")
    factories.label(items[3], annotators[2], "partial-answer")  # one of two
    scorer = scorer_create(
        name="xstest", kind=Scorer.Kind.STRING_MATCH, scheme=scheme,
        config={"preset": "xstest", "refusal_category": "refusal-to-answer", "otherwise_category": "answer"},
    )  # fmt: skip
    run = ScoreRun.objects.create(
        name="scores", scorer=scorer, scorer_version=scorer.version, campaign=campaign, status="completed"
    )
    categories = {c.key: c for c in scheme.categories.all()}
    Score.objects.bulk_create(
        Score(
            run=run,
            scorer=scorer,
            scorer_version=scorer.version,
            output=output,
            status=Score.Status.DONE,
            category=categories["refusal-to-answer" if i % 3 == 0 else "answer"],
            finished_at=timezone.now(),
        )
        for i, output in enumerate(outputs)
    )
    return campaign


def _fingerprint(database_url: str, campaign_id: int) -> dict:
    result = subprocess.run(
        [sys.executable, str(REPO / "tests/support/restore_fingerprint.py"), str(campaign_id)],
        env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.mark.skipif(
    shutil.which("pg_dump") is None, reason="needs pg_dump and pg_restore (PostgreSQL's client)"
)
def test_a_restored_database_gives_the_same_numbers_tallies_and_next_items(
    transactional_db, default_scheme, make_user, tmp_path
):
    _requires_postgres()
    campaign = _mid_labelling_campaign(default_scheme, make_user)
    settings = connection.settings_dict
    server = ["-h", settings.get("HOST") or "127.0.0.1", "-p", str(settings.get("PORT") or 5432)]
    server += ["-U", settings.get("USER") or "postgres"]
    dump = tmp_path / "audit.dump"
    subprocess.run(
        ["pg_dump", *server, "-Fc", "-d", settings["NAME"], "-f", str(dump)], check=True, timeout=300
    )
    restored = f"restore_{uuid.uuid4().hex[:10]}"
    subprocess.run(["createdb", *server, restored], check=True, timeout=60)
    try:
        subprocess.run(
            ["pg_restore", *server, "--no-owner", "--exit-on-error", "-d", restored, str(dump)],
            check=True,
            timeout=300,
        )
        original = _fingerprint(_database_url_for_test_db(), campaign.pk)
        url = _database_url_for_test_db().rsplit("/", 1)[0] + f"/{restored}"
        copy = _fingerprint(url, campaign.pk)
    finally:
        subprocess.run(["dropdb", *server, "--if-exists", "--force", restored], check=False, timeout=60)
    for moment in ("before", "after"):
        for part in ("report", "tallies", "next"):
            assert copy[moment][part] == original[moment][part], (moment, part)
    before, after = original["before"], original["after"]
    assert before["tallies"]["annotations_scoretally"], "the scores are tallied"
    assert before["tallies"] != after["tallies"], "the labels written after the restore moved the tallies"
    assert all(item is not None for item in before["next"].values())
