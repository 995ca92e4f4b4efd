"""The SQL behind the dashboard tallies (PostgreSQL): triggers that keep them, and a rebuild.

A tally row counts the items of a campaign that share one key. Triggers keep the counts in the same
transaction as the write, so every write path is covered (services, imports, bulk updates, the admin,
plain SQL):
- after INSERT and after DELETE (per statement, over the transition table): add or subtract the
  statement's rows, grouped by key, in one upsert per tally;
- after UPDATE of a key column of an item (per row, only when a key changed): the old key counts one
  less and the new key one more, in one upsert per tally; after UPDATE of scores (per statement: a
  score run writes a chunk in one UPDATE) the same over the old and new transition tables.
Every upsert writes its rows in key order (ORDER BY), so concurrent transactions lock tally rows in
one order and cannot deadlock on them. Rows that fall to 0 are kept (readers skip them).

CampaignItemTally and LabelSetTally count items (triggers on CampaignItem). ScoreTally counts pairs of
an item and a finished (DONE) score of its output, so it follows both tables; a pair is seen by whichever
write comes second, and locks make sure that write sees the first one committed:
- a score write locks the items of the outputs whose finished scores it adds or removes (FOR SHARE,
  in id order) before it reads them: a label submit or adjudication holds its item's row lock, so
  one waits for the other and the second reads the first's result;
- an item insert or delete (campaign creation and deletion: rare, bulk) takes SHARE on the scores
  table: it waits for score writes in flight and holds new ones until it commits;
- an item update takes no further lock: its own row lock is what the score writes wait for.

The label-set tally keys on the item's prompt's group: if prompts were ever moved to another group,
`manage.py items_refresh` recounts the tallies (the score tally keys on the prompt and its readers join
the group). Migration 0006 installs the item tallies' SQL and 0011 the score tally's, each counting what
exists; a change to this SQL needs a migration that runs it again.
Every fragment below is a constant of this module; values go in as query parameters.
"""
# ruff: noqa: S608

from django.db import connection, transaction

ITEM_KEY = ", ".join(
    [
        "campaign_id", "run_id", "endpoint_id", "prompt_id", "final_category_id", "adjudicated",
        "gold_category_id", "label_pattern",
    ]
)  # fmt: skip
SET_KEY = "campaign_id, run_id, endpoint_id, group_id, gold_category_id, label_signature"
ITEM_TALLY = "annotations_campaignitemtally"
SET_TALLY = "annotations_labelsettally"
_ITEM_COLUMNS = """i.campaign_id, i.run_id, i.endpoint_id, i.prompt_id, COALESCE(i.final_category_id, -1),
    i.final_source = 'adjudicated', COALESCE(i.gold_category_id, -1), i.label_pattern"""
_SET_COLUMNS = """i.campaign_id, i.run_id, i.endpoint_id, COALESCE(p.group_id, -1),
    COALESCE(i.gold_category_id, -1), i.label_signature"""


def _upserts(rows: str, n: str, *, where: str = "", having: str = "") -> list[str]:
    """The two upserts adding `n` (an aggregate over `rows` aliased i) per key of each tally."""
    item = f"""INSERT INTO {ITEM_TALLY} ({ITEM_KEY}, n)
  SELECT {_ITEM_COLUMNS}, {n} FROM {rows} i {where}
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 {having} ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
  ON CONFLICT ({ITEM_KEY}) DO UPDATE SET n = {ITEM_TALLY}.n + EXCLUDED.n"""
    labels_where = f"{where} AND" if where else "WHERE"
    label_sets = f"""INSERT INTO {SET_TALLY} ({SET_KEY}, n)
  SELECT {_SET_COLUMNS}, {n} FROM {rows} i JOIN annotations_prompt p ON p.id = i.prompt_id
  {labels_where} i.label_signature <> ''
  GROUP BY 1, 2, 3, 4, 5, 6 {having} ORDER BY 1, 2, 3, 4, 5, 6
  ON CONFLICT ({SET_KEY}) DO UPDATE SET n = {SET_TALLY}.n + EXCLUDED.n"""
    return [item, label_sets]


def _function(name: str, statements: list[str]) -> str:
    body = "\n".join(f"  {statement};" for statement in statements)
    return f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{body}
  RETURN NULL;
END $$"""


_KEY_COLUMNS = (
    "campaign_id, run_id, endpoint_id, prompt_id, final_category_id, final_source, gold_category_id, "
    "label_pattern, label_signature"
)
_OLD_KEY = ", ".join(f"OLD.{c.strip()}" for c in _KEY_COLUMNS.split(","))
_NEW_KEY = ", ".join(f"NEW.{c.strip()}" for c in _KEY_COLUMNS.split(","))
_CHANGE = "(SELECT (OLD).*, -1 AS sign UNION ALL SELECT (NEW).*, 1 AS sign)"

INSTALL = [
    _function("annotations_tally_items_inserted", _upserts("new_rows", "COUNT(*)")),
    _function("annotations_tally_items_deleted", _upserts("old_rows", "-COUNT(*)")),
    _function(
        "annotations_tally_item_updated", _upserts(_CHANGE, "SUM(i.sign)", having="HAVING SUM(i.sign) <> 0")
    ),
    """CREATE TRIGGER annotations_tally_insert AFTER INSERT ON annotations_campaignitem
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION annotations_tally_items_inserted()""",
    """CREATE TRIGGER annotations_tally_delete AFTER DELETE ON annotations_campaignitem
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION annotations_tally_items_deleted()""",
    f"""CREATE TRIGGER annotations_tally_update AFTER UPDATE OF {_KEY_COLUMNS} ON annotations_campaignitem
  FOR EACH ROW WHEN (({_OLD_KEY}) IS DISTINCT FROM ({_NEW_KEY}))
  EXECUTE FUNCTION annotations_tally_item_updated()""",
]
UNINSTALL = [
    "DROP TRIGGER IF EXISTS annotations_tally_insert ON annotations_campaignitem",
    "DROP TRIGGER IF EXISTS annotations_tally_delete ON annotations_campaignitem",
    "DROP TRIGGER IF EXISTS annotations_tally_update ON annotations_campaignitem",
    "DROP FUNCTION IF EXISTS annotations_tally_items_inserted()",
    "DROP FUNCTION IF EXISTS annotations_tally_items_deleted()",
    "DROP FUNCTION IF EXISTS annotations_tally_item_updated()",
]


# ScoreTally: (campaign, run, model, prompt, final label) of an item x (scorer, version, category,
# unparseable?, flag) of a DONE score of its output. -1 = none; flagged: -1 no flag, 0 no, 1 yes.
SCORE_KEY = ", ".join(
    [
        "campaign_id", "run_id", "endpoint_id", "prompt_id", "final_category_id", "scorer_id",
        "scorer_version", "category_id", "is_unparseable", "flagged",
    ]
)  # fmt: skip
SCORE_TALLY = "annotations_scoretally"
_SCORE_COLUMNS = """i.campaign_id, i.run_id, i.endpoint_id, i.prompt_id, COALESCE(i.final_category_id, -1),
    s.scorer_id, s.scorer_version, COALESCE(s.category_id, -1), s.is_unparseable,
    COALESCE(s.is_flagged::int, -1)"""
_ORDER = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
_SCORE_FIELDS = "output_id, status, scorer_id, scorer_version, category_id, is_unparseable, is_flagged"
_SCORE_CHANGE = f"""(SELECT {_SCORE_FIELDS}, -1 AS sign FROM old_rows
    UNION ALL SELECT {_SCORE_FIELDS}, 1 AS sign FROM new_rows)"""


def _score_upsert(items: str, scores: str, n: str, *, where: str = "", having: str = "") -> str:
    """The upsert adding `n` per key over `items` (aliased i) joined to the DONE rows of `scores` (s)."""
    return f"""INSERT INTO {SCORE_TALLY} ({SCORE_KEY}, n)
  SELECT {_SCORE_COLUMNS}, {n}
  FROM {items} i JOIN {scores} s ON s.output_id = i.output_id
  WHERE s.status = 'done'{where}
  GROUP BY {_ORDER} {having} ORDER BY {_ORDER}
  ON CONFLICT ({SCORE_KEY}) DO UPDATE SET n = {SCORE_TALLY}.n + EXCLUDED.n"""


def _lock_items(scores: str) -> str:
    """Lock (FOR SHARE, in id order) the items of the outputs that have a DONE row in `scores`."""
    return f"""PERFORM 1 FROM annotations_campaignitem i
  WHERE i.output_id IN (SELECT s.output_id FROM {scores} s WHERE s.status = 'done')
  ORDER BY i.id FOR SHARE"""


_LOCK_SCORES = "LOCK TABLE inference_score IN SHARE MODE"
_SCORE_ITEM_COLUMNS = "campaign_id, run_id, endpoint_id, prompt_id, output_id, final_category_id"
_OLD_ITEM = ", ".join(f"OLD.{c.strip()}" for c in _SCORE_ITEM_COLUMNS.split(","))
_NEW_ITEM = ", ".join(f"NEW.{c.strip()}" for c in _SCORE_ITEM_COLUMNS.split(","))
_SCORE_TRIGGERS = (  # per statement: (trigger, table, event, transition tables, function)
    ("items_insert", "annotations_campaignitem", "INSERT", "NEW TABLE AS new_rows", "items_inserted"),
    ("items_delete", "annotations_campaignitem", "DELETE", "OLD TABLE AS old_rows", "items_deleted"),
    ("insert", "inference_score", "INSERT", "NEW TABLE AS new_rows", "scores_inserted"),
    ("delete", "inference_score", "DELETE", "OLD TABLE AS old_rows", "scores_deleted"),
    ("update", "inference_score", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "scores_updated"),
)

SCORE_INSTALL = [
    _function(
        "annotations_score_tally_items_inserted",
        [_LOCK_SCORES, _score_upsert("new_rows", "inference_score", "COUNT(*)")],
    ),
    _function(
        "annotations_score_tally_items_deleted",
        [_LOCK_SCORES, _score_upsert("old_rows", "inference_score", "-COUNT(*)")],
    ),
    _function(
        "annotations_score_tally_item_updated",
        [_score_upsert(_CHANGE, "inference_score", "SUM(i.sign)", having="HAVING SUM(i.sign) <> 0")],
    ),
    _function(
        "annotations_score_tally_scores_inserted",
        [_lock_items("new_rows"), _score_upsert("annotations_campaignitem", "new_rows", "COUNT(*)")],
    ),
    _function(
        "annotations_score_tally_scores_deleted",
        [_lock_items("old_rows"), _score_upsert("annotations_campaignitem", "old_rows", "-COUNT(*)")],
    ),
    _function(
        "annotations_score_tally_scores_updated",
        [
            _lock_items(_SCORE_CHANGE),
            _score_upsert(
                "annotations_campaignitem", _SCORE_CHANGE, "SUM(s.sign)", having="HAVING SUM(s.sign) <> 0"
            ),
        ],
    ),
    *(
        f"""CREATE TRIGGER annotations_score_tally_{name} AFTER {event} ON {table}
  REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION annotations_score_tally_{function}()"""
        for name, table, event, transition, function in _SCORE_TRIGGERS
    ),
    f"""CREATE TRIGGER annotations_score_tally_item_update AFTER UPDATE OF {_SCORE_ITEM_COLUMNS}
  ON annotations_campaignitem FOR EACH ROW WHEN (({_OLD_ITEM}) IS DISTINCT FROM ({_NEW_ITEM}))
  EXECUTE FUNCTION annotations_score_tally_item_updated()""",
]
SCORE_UNINSTALL = [
    *(
        f"DROP TRIGGER IF EXISTS annotations_score_tally_{name} ON {table}"
        for name, table, *_ in _SCORE_TRIGGERS
    ),
    "DROP TRIGGER IF EXISTS annotations_score_tally_item_update ON annotations_campaignitem",
    "DROP FUNCTION IF EXISTS annotations_score_tally_item_updated()",
    *(f"DROP FUNCTION IF EXISTS annotations_score_tally_{function}()" for *_, function in _SCORE_TRIGGERS),
]


def rebuild_statements(campaign_id: int | None) -> tuple[list[str], list]:
    """SQL (and parameters) recounting the tallies of one campaign, or of all, from the items.

    Blocks item writes meanwhile (SHARE ROW EXCLUSIVE), so no label lands between delete and count.
    """
    where, params = ("WHERE i.campaign_id = %s", [campaign_id]) if campaign_id is not None else ("", [])
    scope = "WHERE campaign_id = %s" if campaign_id is not None else ""
    statements = [
        "LOCK TABLE annotations_campaignitem IN SHARE ROW EXCLUSIVE MODE",
        f"DELETE FROM {ITEM_TALLY} {scope}",
        f"DELETE FROM {SET_TALLY} {scope}",
        *_upserts("annotations_campaignitem", "COUNT(*)", where=where),
    ]
    parameters = [[], params, params, params, params]
    return statements, parameters


def score_rebuild_statements(campaign_id: int | None) -> tuple[list[str], list]:
    """SQL (and parameters) recounting the score tally of one campaign, or of all, from items and scores.

    Blocks item and score writes meanwhile (SHARE ROW EXCLUSIVE on both, items first, as an item
    insert takes them).
    """
    where, params = (" AND i.campaign_id = %s", [campaign_id]) if campaign_id is not None else ("", [])
    scope = "WHERE campaign_id = %s" if campaign_id is not None else ""
    statements = [
        "LOCK TABLE annotations_campaignitem IN SHARE ROW EXCLUSIVE MODE",
        "LOCK TABLE inference_score IN SHARE ROW EXCLUSIVE MODE",
        f"DELETE FROM {SCORE_TALLY} {scope}",
        _score_upsert("annotations_campaignitem", "inference_score", "COUNT(*)", where=where),
    ]
    return statements, [[], [], params, params]


def tallies_rebuild(*, campaign_id: int | None = None) -> None:
    """Recount a campaign's (or every campaign's) dashboard tallies from its items (PostgreSQL only).

    The triggers keep them; this is for repairs. Item and score writes wait meanwhile (table locks).
    """
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for rebuild in (rebuild_statements, score_rebuild_statements):
            for statement, params in zip(*rebuild(campaign_id), strict=True):
                cursor.execute(statement, params)
