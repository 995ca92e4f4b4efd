"""The SQL behind CampaignItemTally and LabelSetTally (PostgreSQL): triggers that keep them, and a rebuild.

A tally row counts the items of a campaign that share one key. Three triggers on CampaignItem keep
the counts in the same transaction as the item write, so every write path is covered (services,
imports, bulk updates, the admin, plain SQL):
- after INSERT and after DELETE (per statement, over the transition table): add or subtract the
  statement's items, grouped by key, in one upsert per tally;
- after UPDATE of a key column (per row, only when a key changed): the old key counts one less and
  the new key one more, in one upsert per tally.
Every upsert writes its rows in key order (ORDER BY), so concurrent transactions lock tally rows in
one order and cannot deadlock on them. Rows that fall to 0 are kept (readers skip them).

The label-set tally keys on the item's prompt's group: if prompts were ever moved to another group,
`manage.py items_refresh` recounts the tallies. Migration 0006 installs these triggers and counts
the existing items; a change to this SQL needs a migration that runs INSTALL again.
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


def tallies_rebuild(*, campaign_id: int | None = None) -> None:
    """Recount a campaign's (or every campaign's) dashboard tallies from its items (PostgreSQL only).

    The triggers keep them; this is for repairs. Item writes wait meanwhile (a table lock).
    """
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for statement, params in zip(*rebuild_statements(campaign_id), strict=True):
            cursor.execute(statement, params)
