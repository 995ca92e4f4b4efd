"""python manage.py generate: start (or continue) a generation run, in this process or on the workers."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.core.exceptions import AuditError
from annotations.models import PromptSet
from inference.models import GenerationRun, ModelEndpoint, Output
from inference.selectors import run_progress
from inference.services.runs import run_generate_in_process, run_resume, run_start


def _prompt_set(value: str) -> PromptSet:
    """A prompt set by id, or by name (its latest version)."""
    found = (
        PromptSet.objects.filter(pk=int(value)) if value.isdigit() else PromptSet.objects.filter(name=value)
    )
    prompt_set = found.order_by("-version").first()
    if prompt_set is None:
        raise CommandError(f"No prompt set {value!r} (give its id or name).")
    return prompt_set


class Command(BaseCommand):
    help = (
        "Generate outputs: start a run from a prompt set and models (or continue --run N). Without a "
        "broker (or with --in-process) it generates here with a progress bar; with a broker it queues "
        "the chunk tasks and follows their progress."
    )

    def add_arguments(self, parser):
        parser.add_argument("--prompt-set", help="Prompt set id or name (latest version).")
        parser.add_argument("--model", action="append", default=[], help="Model endpoint name (repeatable).")
        parser.add_argument("--samples", type=int, default=3, help="Samples per prompt (default 3).")
        parser.add_argument("--name", default="", help="Run name.")
        parser.add_argument("--chunk-size", type=int, default=256)
        parser.add_argument("--max-attempts", type=int, default=5)
        parser.add_argument(
            "--run", type=int, help="Continue this run: its pending, cancelled and failed outputs."
        )
        parser.add_argument(
            "--in-process", action="store_true", help="Generate here even if a broker is set."
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="With a broker: queue the tasks and return."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, **opts):
        in_process = opts["in_process"] or settings.CELERY_TASK_ALWAYS_EAGER
        try:
            run = self._run(opts, dispatch=not in_process)
        except AuditError as exc:
            raise CommandError(exc.message) from None
        total = run.outputs.count()
        self.stdout.write(f"Run {run.pk} ({run.name}): {total} outputs.")
        done_already = run.outputs.filter(status__in=[Output.Status.DONE, Output.Status.FAILED]).count()
        bar = tqdm(
            total=total,
            initial=done_already,
            unit="out",
            disable=opts["no_progress"],
            file=self.stderr._out,
            smoothing=0.1,
        )
        if in_process:

            def advance(done: int, failed: int) -> None:
                bar.update(done + failed)
                if failed:
                    bar.set_postfix(failed=run.outputs.filter(status=Output.Status.FAILED).count())

            run_generate_in_process(run=run, on_progress=advance)
        elif not opts["no_wait"]:
            self._follow(run, bar)
        bar.close()
        progress = run_progress(run_id=run.pk)
        self.stdout.write(
            f"Run {run.pk}: {progress.status_display}: {progress.done} done, {progress.failed} failed, "
            f"{progress.pending + progress.running} to do, {progress.cancelled} cancelled."
        )

    def _run(self, opts, *, dispatch: bool) -> GenerationRun:
        if opts["run"]:
            run = GenerationRun.objects.filter(pk=opts["run"]).first()
            if run is None:
                raise CommandError(f"No run {opts['run']}.")
            if run.outputs.exclude(status=Output.Status.DONE).exists():
                run_resume(run=run, actor=None, dispatch=dispatch)
            return run
        if not opts["prompt_set"] or not opts["model"]:
            raise CommandError("Give --prompt-set and at least one --model (or --run N to continue a run).")
        endpoints = list(ModelEndpoint.objects.filter(name__in=opts["model"]))
        missing = sorted(set(opts["model"]) - {e.name for e in endpoints})
        if missing:
            raise CommandError(f"No model endpoint named {', '.join(missing)}.")
        return run_start(
            prompt_set=_prompt_set(opts["prompt_set"]),
            endpoints=endpoints,
            samples_per_prompt=opts["samples"],
            name=opts["name"],
            chunk_size=opts["chunk_size"],
            max_attempts=opts["max_attempts"],
            dispatch=dispatch,
        )

    def _follow(self, run: GenerationRun, bar: tqdm) -> None:
        """Poll the run's progress until it is finished."""
        while True:
            progress = run_progress(run_id=run.pk)
            bar.n = progress.done + progress.failed
            bar.set_postfix(failed=progress.failed, rate=progress.outputs_per_second)
            if progress.is_finished:
                return
            time.sleep(1)
