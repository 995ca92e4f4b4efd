"""python manage.py score: apply a scorer to a run's or a campaign's outputs (or continue a score run)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.core.exceptions import AuditError
from annotations.models import Campaign
from inference.management.commands.import_scores import audit_error_lines
from inference.models import GenerationRun, Score, Scorer, ScoreRun
from inference.selectors import score_run_progress
from inference.services.runs import run_resume
from inference.services.scoring import score_run_in_process, score_run_start


class Command(BaseCommand):
    help = (
        "Score outputs: --scorer NAME with --run ID (a generation run's done outputs) or --campaign ID "
        "(its items), or continue --score-run ID. Without a broker (or with --in-process) it scores here "
        "with a progress bar; with a broker it queues the chunk tasks and follows their progress."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scorer", help="Scorer name.")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--run", type=int, help="Score the done outputs of this generation run.")
        target.add_argument("--campaign", type=int, help="Score the outputs of this campaign's items.")
        target.add_argument(
            "--score-run", type=int, help="Continue this score run: its pending, cancelled and failed scores."
        )
        parser.add_argument("--name", default="", help="Score run name.")
        parser.add_argument(
            "--chunk-size", type=int, help="Outputs per task (default: 5000 for string match, else 256)."
        )
        parser.add_argument("--max-attempts", type=int, default=5, help="Attempts per output (default 5).")
        parser.add_argument("--in-process", action="store_true", help="Score here even if a broker is set.")
        parser.add_argument(
            "--no-wait", action="store_true", help="With a broker: queue the tasks and return."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, **opts):
        in_process = opts["in_process"] or settings.CELERY_TASK_ALWAYS_EAGER
        try:
            run = self._run(opts, dispatch=not in_process)
        except AuditError as exc:
            raise CommandError(audit_error_lines(exc)) from None
        progress = score_run_progress(run_id=run.pk)
        already = (
            f"; {run.already_scored} outputs were scored by this version before" if run.already_scored else ""
        )
        self.stdout.write(f"Score run {run.pk} ({run.name}): {progress.total} scores{already}.")
        bar = tqdm(
            total=progress.total,
            initial=progress.done + progress.failed,
            unit="out",
            disable=opts["no_progress"],
            file=self.stderr._out,
            smoothing=0.1,
        )
        if in_process:

            def advance(done: int, failed: int) -> None:
                bar.update(done + failed)
                if failed:
                    bar.set_postfix(failed=run.scores.filter(status=Score.Status.FAILED).count())

            score_run_in_process(run=run, on_progress=advance)
        elif not opts["no_wait"]:
            self._follow(run, bar)
        bar.close()
        progress = score_run_progress(run_id=run.pk)
        self.stdout.write(
            f"Score run {run.pk}: {progress.status_display}: {progress.done} done, {progress.failed} failed, "
            f"{progress.pending + progress.running} to do, {progress.cancelled} cancelled."
        )

    def _run(self, opts, *, dispatch: bool) -> ScoreRun:
        if opts["score_run"]:
            run = ScoreRun.objects.filter(pk=opts["score_run"]).first()
            if run is None:
                raise CommandError(f"No score run {opts['score_run']}.")
            if run.scores.exclude(status=Score.Status.DONE).exists():
                try:
                    run_resume(run=run, actor=None, dispatch=dispatch)
                except AuditError as exc:  # what is left is held by a live worker: follow it
                    self.stdout.write(exc.message)
            return run
        if not opts["scorer"] or not (opts["run"] or opts["campaign"]):
            raise CommandError("Give --scorer and --run or --campaign (or --score-run N to continue one).")
        scorer = Scorer.objects.select_related("endpoint").filter(name=opts["scorer"]).first()
        if scorer is None:
            raise CommandError(f"No scorer named {opts['scorer']!r} (scorer_add registers one).")
        generation_run = campaign = None
        if opts["run"]:
            generation_run = GenerationRun.objects.filter(pk=opts["run"]).first()
            if generation_run is None:
                raise CommandError(f"No run {opts['run']}.")
        else:
            campaign = Campaign.objects.filter(pk=opts["campaign"]).first()
            if campaign is None:
                raise CommandError(f"No campaign {opts['campaign']}.")
        return score_run_start(
            scorer=scorer,
            generation_run=generation_run,
            campaign=campaign,
            name=opts["name"],
            chunk_size=opts["chunk_size"],
            max_attempts=opts["max_attempts"],
            dispatch=dispatch,
        )

    def _follow(self, run: ScoreRun, bar: tqdm) -> None:
        """Poll the score run's progress until it is finished."""
        while True:
            progress = score_run_progress(run_id=run.pk)
            bar.n = progress.done + progress.failed
            bar.set_postfix(failed=progress.failed, rate=progress.outputs_per_second)
            if progress.is_finished:
                return
            time.sleep(1)
