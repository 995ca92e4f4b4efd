"""python manage.py import_holisticbias: the HolisticBias descriptor lists as groups (CC BY-SA 4.0)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.library.holisticbias import (
    HOLISTICBIAS_VERSIONS,
    group_import_holisticbias,
    shared_data_dir,
)


class Command(BaseCommand):
    help = (
        "Import HolisticBias descriptors.json: one axis per HolisticBias axis and version "
        "(holisticbias-v11-<axis>), one "
        "group per bucket, one member per descriptor. The data is CC BY-SA 4.0; the groups' descriptions "
        "carry the licence and attribution."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--path",
            type=Path,
            help="Folder holding v1.0/ and v1.1/ (default: $AUDIT_SHARED_DIR/data/holistic_bias).",
        )
        parser.add_argument("--hb-version", dest="hb_version", choices=HOLISTICBIAS_VERSIONS, default="v1.1")

    def handle(self, *args, **opts) -> None:
        path = opts["path"] or shared_data_dir() / "data" / "holistic_bias"
        try:
            plan = group_import_holisticbias(path=path, version=opts["hb_version"])
        except AuditError as exc:
            raise CommandError("\n".join([exc.message, *(f"  {e['message']}" for e in exc.errors)])) from None
        counts = ", ".join(f"{name} {value}" for name, value in plan.counts.items())
        self.stdout.write(f"Imported HolisticBias {opts['hb_version']} from {path}: {counts}")
        self.stdout.write(
            "Licence: CC BY-SA 4.0 (Smith et al. 2022); derived lists keep it and the attribution."
        )
