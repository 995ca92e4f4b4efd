"""`annotations_label_submit`: the PostgreSQL function behind `label_submit`, one round trip per label.

Why a function: submitting a label is a read under the item's row lock, a little arithmetic, and four
writes. From Python that took four round trips (BEGIN, the locking read, the writes, COMMIT) and the
transaction bookkeeping around them, on the busiest path of the platform; as one function called in
autocommit it is one statement, and PL/pgSQL keeps each inner statement's plan for the session.
(`bench/bench_next_item.py` prints the figures.)

What it computes is defined in Python, and this file follows that definition exactly:
- the label summary (`annotations.labelling.label_summary.label_summary`): pattern = category ids sorted,
  comma-separated; signature = "annotator:category" pairs sorted by annotator (then category);
- the outcome (`annotations.labelling.final_label.item_outcome`): open below the needed count; then
  complete when every label agrees (unanimous), or, with the majority rule, when one category has more
  than half the labels (majority); disputed otherwise.
tests/annotations/labelling/test_final_label.py runs one table of cases through this function and through
the Python definition; test_labelling_services.py checks, over random labellings under both rules, that
`items_refresh` finds nothing to change after this function wrote the items.
A change to this SQL needs a migration that runs INSTALL again (as 0008 does).

Result codes: 'ok' (with the label id and category id), 'not_found' (no such item in the campaign),
'unknown_category', 'complete' (the item needs no more labels), 'not_held' (no active lease of mine).
Every write happens under the item's row lock, taken first; each statement in a PL/pgSQL function
sees what was committed before it started, so the lease is checked after the lock is held.
"""
# ruff: noqa: S608

FUNCTION = "annotations_label_submit"

INSTALL = [
    f"""CREATE OR REPLACE FUNCTION {FUNCTION}(
    p_item bigint, p_campaign bigint, p_scheme bigint, p_category text, p_annotator bigint,
    p_note text, p_seconds double precision, p_now timestamptz, p_needed integer, p_majority boolean)
RETURNS TABLE (result text, label_id bigint, category_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_count integer;
    v_signature text;
    v_category bigint;
    v_lease bigint;
    v_pattern text;
    v_kinds integer;
    v_top bigint;
    v_top_n integer;
    v_final bigint;
    v_source text := '';
    v_label bigint;
BEGIN
    SELECT ci.status, ci.label_count, ci.label_signature INTO v_status, v_count, v_signature
    FROM annotations_campaignitem ci WHERE ci.id = p_item AND ci.campaign_id = p_campaign FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    SELECT c.id INTO v_category FROM annotations_labelcategory c
    WHERE c.scheme_id = p_scheme AND c.key = p_category;
    IF v_category IS NULL THEN
        RETURN QUERY SELECT 'unknown_category'::text, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    IF v_status <> 'open' THEN
        RETURN QUERY SELECT 'complete'::text, NULL::bigint, v_category;
        RETURN;
    END IF;
    UPDATE annotations_assignment SET status = 'done'
    WHERE item_id = p_item AND annotator_id = p_annotator AND status = 'active'
    RETURNING id INTO v_lease;
    IF v_lease IS NULL THEN
        RETURN QUERY SELECT 'not_held'::text, NULL::bigint, v_category;
        RETURN;
    END IF;

    -- The item's labels: its signature's pairs and mine.
    v_count := v_count + 1;
    WITH pairs AS (
        SELECT split_part(x, ':', 1)::bigint AS a, split_part(x, ':', 2)::bigint AS c
        FROM unnest(string_to_array(NULLIF(v_signature, ''), ',')) AS x
        UNION ALL SELECT p_annotator, v_category
    )
    SELECT string_agg(pairs.c::text, ',' ORDER BY pairs.c),
           string_agg(pairs.a::text || ':' || pairs.c::text, ',' ORDER BY pairs.a, pairs.c)
    INTO v_pattern, v_signature FROM pairs;
    v_status := 'open';
    IF v_count >= p_needed THEN
        SELECT count(*) OVER (), counts.c, counts.n INTO v_kinds, v_top, v_top_n
        FROM (SELECT x::bigint AS c, count(*) AS n FROM unnest(string_to_array(v_pattern, ',')) AS x
              GROUP BY 1) counts
        ORDER BY counts.n DESC, counts.c LIMIT 1;
        IF v_kinds = 1 THEN
            v_status := 'complete'; v_final := v_top; v_source := 'unanimous';
        ELSIF p_majority AND 2 * v_top_n > v_count THEN
            v_status := 'complete'; v_final := v_top; v_source := 'majority';
        ELSE
            v_status := 'disputed';
        END IF;
    END IF;

    INSERT INTO annotations_label
        (item_id, annotator_id, category_id, note, active_seconds, created_at, updated_at)
    VALUES (p_item, p_annotator, v_category, p_note, p_seconds, p_now, p_now) RETURNING id INTO v_label;
    INSERT INTO annotations_labelhistory
        (label_id, changed_by_id, changed_at, old_category_id, new_category_id, old_note, new_note)
    VALUES (v_label, p_annotator, p_now, NULL, v_category, '', p_note);
    UPDATE annotations_campaignitem SET label_count = v_count, label_pattern = v_pattern,
        label_signature = v_signature, status = v_status, final_category_id = v_final,
        final_source = v_source
    WHERE id = p_item;
    RETURN QUERY SELECT 'ok'::text, v_label, v_category;
END $$""",
]
UNINSTALL = [
    f"""DROP FUNCTION IF EXISTS {FUNCTION}(bigint, bigint, bigint, text, bigint, text, double precision,
    timestamptz, integer, boolean)""",
]
