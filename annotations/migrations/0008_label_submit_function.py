"""The PostgreSQL function behind label_submit (annotations/submit_sql.py); nothing on SQLite."""

from django.db import migrations

from annotations import submit_sql


def _on_postgres(statements: list[str]):
    """A RunPython step running `statements` on PostgreSQL and nothing elsewhere."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("annotations", "0007_assignment_one_holder")]

    operations = [migrations.RunPython(_on_postgres(submit_sql.INSTALL), _on_postgres(submit_sql.UNINSTALL))]
