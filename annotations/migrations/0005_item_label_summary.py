"""Items carry their output's run, model and prompt and a summary of their labels (see CampaignItem).

Added nullable, filled from the outputs and label rows, then made required. The label summary is
filled in Python (the format of `annotations.label_summary`, copied here as migrations are frozen).
"""

import django.db.models.deletion
from django.db import migrations, models

_BATCH = 5000


def fill(apps, schema_editor):
    CampaignItem = apps.get_model("annotations", "CampaignItem")
    Label = apps.get_model("annotations", "Label")
    Output = apps.get_model("inference", "Output")
    last = 0
    while True:
        items = list(CampaignItem.objects.filter(pk__gt=last).order_by("pk")[:_BATCH])
        if not items:
            return
        last = items[-1].pk
        outputs = Output.objects.in_bulk([item.output_id for item in items])
        pairs: dict[int, list[tuple[int, int]]] = {}
        for item_id, annotator_id, category_id in Label.objects.filter(
            item_id__in=[item.pk for item in items]
        ).values_list("item_id", "annotator_id", "category_id"):
            pairs.setdefault(item_id, []).append((annotator_id, category_id))
        for item in items:
            output = outputs[item.output_id]
            item.run_id, item.endpoint_id, item.prompt_id = (
                output.run_id,
                output.endpoint_id,
                output.prompt_id,
            )
            labels = sorted(pairs.get(item.pk, []))
            item.label_pattern = ",".join(str(c) for c in sorted(c for _, c in labels))
            item.label_signature = ",".join(f"{a}:{c}" for a, c in labels)
        CampaignItem.objects.bulk_update(
            items, ["run", "endpoint", "prompt", "label_pattern", "label_signature"], batch_size=1000
        )


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0004_issue5_next_item_indexes"),
        ("inference", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaignitem",
            name="label_pattern",
            field=models.TextField(blank=True, default="", help_text="Sorted category ids of the labels."),
        ),
        migrations.AddField(
            model_name="campaignitem",
            name="label_signature",
            field=models.TextField(
                blank=True, default="", help_text="annotator:category pairs of the labels, by annotator id."
            ),
        ),
        migrations.AddField(
            model_name="campaignitem",
            name="run",
            field=models.ForeignKey(
                null=True,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="inference.generationrun",
            ),
        ),
        migrations.AddField(
            model_name="campaignitem",
            name="endpoint",
            field=models.ForeignKey(
                null=True,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="inference.modelendpoint",
            ),
        ),
        migrations.AddField(
            model_name="campaignitem",
            name="prompt",
            field=models.ForeignKey(
                null=True,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="annotations.prompt",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="campaignitem",
            name="run",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="inference.generationrun",
            ),
        ),
        migrations.AlterField(
            model_name="campaignitem",
            name="endpoint",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="inference.modelendpoint",
            ),
        ),
        migrations.AlterField(
            model_name="campaignitem",
            name="prompt",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="annotations.prompt",
            ),
        ),
    ]
