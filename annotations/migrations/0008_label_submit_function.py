"""The PostgreSQL function behind label_submit (annotations/submit_sql.py); nothing on SQLite."""

from django.db import migrations

from annotations import submit_sql


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in submit_sql.INSTALL:
            cursor.execute(statement)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in submit_sql.UNINSTALL:
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0007_assignment_one_holder")]

    operations = [migrations.RunPython(install, uninstall)]
