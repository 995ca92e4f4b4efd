"""One active lease per item (was: per item and annotator), the arbiter of the one-statement next item.

The labelling services never let two annotators hold an item at once, so existing data satisfies the new
constraint; should a database hold such pairs anyway (written by hand), all but the newest lease of each
item are marked expired first, so the migration cannot fail on them.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotations", "0006_tallies")]

    operations = [
        migrations.RunSQL(
            """UPDATE annotations_assignment SET status = 'expired'
               WHERE status = 'active' AND EXISTS (
                   SELECT 1 FROM annotations_assignment b
                   WHERE b.item_id = annotations_assignment.item_id AND b.status = 'active'
                     AND (b.leased_at > annotations_assignment.leased_at
                          OR (b.leased_at = annotations_assignment.leased_at
                              AND b.id > annotations_assignment.id)))""",
            migrations.RunSQL.noop,
        ),
        migrations.RemoveConstraint(model_name="assignment", name="assignment_one_active_lease"),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "active")), fields=("item",), name="assignment_one_holder"
            ),
        ),
    ]
