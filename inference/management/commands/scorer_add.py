"""python manage.py scorer_add NAME --kind K ...: register (or with --update, change) a scorer."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.models import LabelScheme
from inference.management.commands.import_scores import audit_error_lines
from inference.models import ModelEndpoint, Scorer
from inference.services.scoring import scorer_create, scorer_update

# The category a string match gives a matching output, and every other output, when not told:
# the first of these keys the scheme has (the study's scheme, qos-six, has refusal-to-answer and answer).
DEFAULT_REFUSAL_KEYS = ("refusal", "refusal-to-answer")
DEFAULT_OTHERWISE_KEYS = ("answer",)


def _default_category(scheme: LabelScheme | None, candidates: tuple[str, ...], option: str) -> str:
    keys = list(scheme.categories.order_by("order").values_list("key", flat=True)) if scheme else []
    for key in candidates:
        if key in keys:
            return key
    raise CommandError(
        f"Give {option}: the scheme has none of {', '.join(candidates)} (it has {', '.join(keys)})."
    )


class Command(BaseCommand):
    help = (
        "Register a scorer (string_match, judge, classifier or imported); --update changes the "
        "configuration or description of the one with that name (a new version)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Letters, digits, - and _; the export column is score_<name>.")
        parser.add_argument("--kind", choices=Scorer.Kind.values, help="Required for a new scorer.")
        parser.add_argument("--scheme", help="Label scheme key whose categories the scorer assigns.")
        parser.add_argument("--endpoint", help="Model endpoint name a judge or classifier calls.")
        config = parser.add_mutually_exclusive_group()
        config.add_argument("--config", help="The configuration as a JSON object.")
        config.add_argument("--config-file", help="A file holding the configuration as a JSON object.")
        config.add_argument(
            "--preset", choices=["xstest"], help="String match: XSTest's published refusal rule."
        )
        parser.add_argument(
            "--refusal-category",
            help="String match: the category of a matching output (default refusal or refusal-to-answer).",
        )
        parser.add_argument(
            "--otherwise-category", help="String match: the category of every other output (default answer)."
        )
        parser.add_argument("--description")
        parser.add_argument(
            "--update", action="store_true", help="Change the scorer of that name if it exists."
        )

    def handle(self, *args, **opts):
        existing = Scorer.objects.select_related("scheme", "endpoint").filter(name=opts["name"]).first()
        if existing is not None and not opts["update"]:
            raise CommandError(f"A scorer named {opts['name']!r} exists; --update changes it.")
        scheme = self._scheme(opts["scheme"])
        endpoint = self._endpoint(opts["endpoint"])
        try:
            if existing is not None:
                self._check_unchanged(existing, opts, scheme=scheme, endpoint=endpoint)
                config = self._config(
                    opts, kind=existing.kind, scheme=existing.scheme, current=existing.config
                )
                scorer = scorer_update(
                    scorer=existing, config=config, description=opts["description"], actor=None
                )
            else:
                if not opts["kind"]:
                    raise CommandError("Give --kind for a new scorer.")
                config = self._config(opts, kind=opts["kind"], scheme=scheme)
                scorer = scorer_create(
                    name=opts["name"],
                    kind=opts["kind"],
                    scheme=scheme,
                    endpoint=endpoint,
                    config=config or {},
                    description=opts["description"] or "",
                    actor=None,
                )
        except AuditError as exc:
            raise CommandError(audit_error_lines(exc)) from None
        self.stdout.write(
            f"{'Updated' if existing else 'Registered'} scorer {scorer.name} ({scorer.get_kind_display()}, "
            f"id {scorer.pk}, version {scorer.version})."
        )

    @staticmethod
    def _scheme(key: str | None) -> LabelScheme | None:
        if not key:
            return None
        scheme = LabelScheme.objects.filter(key=key).first()
        if scheme is None:
            known = ", ".join(LabelScheme.objects.order_by("key").values_list("key", flat=True)) or "none"
            raise CommandError(f"No label scheme {key!r} (known: {known}).")
        return scheme

    @staticmethod
    def _endpoint(name: str | None) -> ModelEndpoint | None:
        if not name:
            return None
        endpoint = ModelEndpoint.objects.filter(name=name).first()
        if endpoint is None:
            raise CommandError(f"No model endpoint named {name!r} (endpoint_add registers one).")
        return endpoint

    @staticmethod
    def _check_unchanged(scorer: Scorer, opts: dict, *, scheme, endpoint) -> None:
        """Kind, scheme and model decide what a scorer is: changing them makes another scorer."""
        changed = [
            option
            for option, given, current in (
                ("--kind", opts["kind"], scorer.kind),
                ("--scheme", scheme, scorer.scheme),
                ("--endpoint", endpoint, scorer.endpoint),
            )
            if given is not None and given != current
        ]
        if changed:
            raise CommandError(
                f"The {', '.join(changed)} of scorer {scorer.name!r} cannot change; register another scorer."
            )

    @staticmethod
    def _config(
        opts: dict, *, kind: str, scheme: LabelScheme | None, current: dict | None = None
    ) -> dict | None:
        """The configuration given (None: unchanged on --update), with the string-match categories
        filled in: as given, else as configured, else the scheme's default keys."""
        if opts["config_file"]:
            path = Path(opts["config_file"])
            if not path.is_file():
                raise CommandError(f"No file {path}.")
            text = path.read_text(encoding="utf-8")
        else:
            text = opts["config"]
        config = None
        if text is not None:
            try:
                config = json.loads(text)
            except ValueError as exc:
                raise CommandError(f"The configuration is not JSON: {exc}.") from None
            if not isinstance(config, dict):
                raise CommandError("The configuration must be a JSON object.")
        categories = opts["refusal_category"] or opts["otherwise_category"]
        if kind != Scorer.Kind.STRING_MATCH:
            if opts["preset"] or categories:
                raise CommandError(
                    "--preset, --refusal-category and --otherwise-category are for string_match."
                )
            return config
        if opts["preset"]:
            config = {"preset": opts["preset"]}
        if config is None and categories:
            if current is None:
                raise CommandError("Give --config, --config-file or --preset with the categories.")
            config = dict(current)
        if config is not None and scheme is not None:  # without a scheme scorer_create says so
            config["refusal_category"] = (
                opts["refusal_category"]
                or config.get("refusal_category")
                or _default_category(scheme, DEFAULT_REFUSAL_KEYS, "--refusal-category")
            )
            config["otherwise_category"] = (
                opts["otherwise_category"]
                or config.get("otherwise_category")
                or _default_category(scheme, DEFAULT_OTHERWISE_KEYS, "--otherwise-category")
            )
        return config
