"""Prepared statements (core/prepared.py): planned once per PostgreSQL session, plain SQL elsewhere."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from annotations.core.prepared import Statement

pytestmark = pytest.mark.django_db
POSTGRES = connection.vendor == "postgresql"
SUM = Statement("test_sum", "SELECT %(a)s::int + %(b)s::int * 10 + %(a)s::int * 100")


def _run(statement: Statement, params: dict) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        statement.execute(cursor, params)
        value = cursor.fetchone()[0]
    return value, [q["sql"] for q in queries.captured_queries]


def test_named_parameters_become_numbered_ones_each_name_once():
    assert SUM.names == ("a", "b")
    assert SUM.prepare == "PREPARE test_sum AS SELECT $1::int + $2::int * 10 + $1::int * 100"


@pytest.mark.skipif(not POSTGRES, reason="prepared statements are a PostgreSQL feature")
def test_prepared_once_per_session_then_executed():
    first, sent_first = _run(SUM, {"a": 1, "b": 2})
    second, sent_second = _run(SUM, {"b": 3, "a": 4})
    assert (first, second) == (121, 434)
    assert "PREPARE test_sum" in sent_first[0]
    assert "EXECUTE test_sum" in sent_first[0]
    assert sent_second == ["EXECUTE test_sum(4, 3)"]


@pytest.mark.skipif(not POSTGRES, reason="prepared statements are a PostgreSQL feature")
def test_a_failed_first_execution_leaves_the_session_usable():
    divide = Statement("test_divide", "SELECT 100 / %(d)s::int")
    with pytest.raises(DatabaseError), transaction.atomic():  # PREPARE ran, EXECUTE failed
        _run(divide, {"d": 0})
    value, sent = _run(divide, {"d": 4})  # forgets what is prepared, prepares again
    assert value == 25
    assert sent[0].startswith("DEALLOCATE ALL;")
    assert _run(divide, {"d": 5}) == (20, ["EXECUTE test_divide(5)"])


@pytest.mark.skipif(not POSTGRES, reason="prepared statements are a PostgreSQL feature")
@pytest.mark.django_db(transaction=True)
def test_a_new_session_prepares_again():
    assert _run(SUM, {"a": 1, "b": 1})[0] == 111
    connection.close()  # the next query opens a new session, where nothing is prepared
    value, sent = _run(SUM, {"a": 2, "b": 2})
    assert value == 222
    assert "PREPARE test_sum" in sent[0]


def test_plain_sql_where_not_prepared(settings):
    settings.AUDIT_PREPARED_STATEMENTS = False  # and on SQLite always
    plain = Statement("test_plain", "SELECT %(a)s + %(b)s * 10 + %(a)s * 100")
    value, sent = _run(plain, {"a": 3, "b": 0})
    assert value == 303
    assert "PREPARE" not in sent[0]
    assert "EXECUTE" not in sent[0]
