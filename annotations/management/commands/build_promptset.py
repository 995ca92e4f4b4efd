"""python manage.py build_promptset NAME --templates ... --groups ...: expand templates x group members."""

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.library.promptsets import promptset_build, promptset_plan, promptset_revise
from annotations.models import PromptSet


class Command(BaseCommand):
    help = (
        "Cross every chosen template with every member of every chosen group. Templates: keys or * for "
        "all; groups: axis/group or axis/* for every group of an axis. --dry-run prints the count and a "
        "sample. If NAME exists, --revise rebuilds it (or makes a new version when a run froze it)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--templates", nargs="+", required=True, help="Template keys, or * for all.")
        parser.add_argument("--groups", nargs="+", required=True, help="axis/group refs, or axis/*.")
        parser.add_argument("--description", default="")
        parser.add_argument("--dry-run", action="store_true", help="Preview: count, sample, duplicates.")
        parser.add_argument("--revise", action="store_true", help="Revise the newest version of NAME.")

    def handle(self, *args, **opts) -> None:
        try:
            if opts["dry_run"]:
                self._preview(opts)
                return
            if opts["revise"]:
                latest = PromptSet.objects.filter(name=opts["name"]).order_by("-version").first()
                if latest is None:
                    raise CommandError(f"No prompt set named {opts['name']!r} to revise.")
                prompt_set = promptset_revise(
                    prompt_set=latest,
                    template_keys=opts["templates"],
                    group_refs=opts["groups"],
                    description=opts["description"] or latest.description,
                )
            else:
                prompt_set = promptset_build(
                    name=opts["name"],
                    template_keys=opts["templates"],
                    group_refs=opts["groups"],
                    description=opts["description"],
                )
        except AuditError as exc:
            raise CommandError("\n".join([exc.message, *(f"  {e['message']}" for e in exc.errors)])) from None
        spec = prompt_set.spec
        self.stdout.write(
            f"Built {prompt_set} (id {prompt_set.pk}): {spec['prompt_count']} prompts from "
            f"{len(spec['templates'])} templates x {len(spec['groups'])} groups; "
            f"{spec['duplicate_count']} duplicate texts."
        )

    def _preview(self, opts) -> None:
        plan = promptset_plan(template_keys=opts["templates"], group_refs=opts["groups"])
        self.stdout.write(
            f"{plan.count} prompts from {len(plan.template_keys)} templates x {len(plan.group_refs)} groups "
            f"(dry run, nothing saved); {plan.duplicate_count} duplicate texts, {plan.error_count} errors."
        )
        for row in plan.sample:
            self.stdout.write(f"  {row['position'] + 1:>5}  {row['key']}  {row['text']}")
        for duplicate in plan.duplicates:
            self.stdout.write(
                f"  duplicate: {duplicate['key']} = {duplicate['same_as']}: {duplicate['text']}"
            )
        for error in plan.errors:
            self.stdout.write(f"  error: {error['message']}")
