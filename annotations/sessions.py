"""Database sessions read with one plain statement (every authenticated request reads its session)."""

from django.contrib.sessions.backends import db
from django.db import connection
from django.utils import timezone

from annotations.plainsql import model_from_row, select_columns


class SessionStore(db.SessionStore):
    """Django's database session store; only the read skips the ORM's query compiler."""

    def _get_session_from_db(self):
        """The unexpired session row for this key, or None (and forget the key), as the parent does."""
        model = self.model
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {select_columns(model, 's')} FROM {model._meta.db_table} s "  # noqa: S608
                "WHERE s.session_key = %s AND s.expire_date > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return model_from_row(model, row)
