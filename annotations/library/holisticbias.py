"""The HolisticBias descriptor lists (Smith et al. 2022) as groups: an axis per HolisticBias axis and version.

The HolisticBias dataset is licensed CC BY-SA 4.0: every imported axis and group carries the licence and the
attribution in its description, and anything derived from them keeps both.
"""

import json
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction

from annotations.core.exceptions import AuditError
from annotations.library.services import ImportPlan, group_import, group_upload_check

HOLISTICBIAS_VERSIONS = ("v1.0", "v1.1")
HOLISTICBIAS_ATTRIBUTION = (
    'From HolisticBias {version} (Smith et al. 2022, "I\'m sorry to hear that": Finding New Biases in '
    "Language Models with a Holistic Descriptor Dataset, arXiv 2205.09209; "
    "github.com/facebookresearch/ResponsibleNLP), licensed CC BY-SA 4.0 "
    "(https://creativecommons.org/licenses/by-sa/4.0/). Lists derived from it keep that licence and "
    "this attribution."
)


def shared_data_dir() -> Path:
    """The shared reference data folder: $AUDIT_SHARED_DIR, by default ../shared next to the repository."""
    return Path(os.environ.get("AUDIT_SHARED_DIR", settings.BASE_DIR.parent / "shared"))


def holisticbias_upload_files(*, path: Path, version: str = "v1.1") -> list[tuple[str, bytes]]:
    """HolisticBias descriptors.json as one JSON groups file per axis (name, content), ready to check.

    Axis `holisticbias-<version>-<axis>` (key e.g. holisticbias-v11-religion), one group per bucket,
    one member per descriptor; a descriptor's other
    fields (preference: reviewed/dispreferred/polarizing, gender, article) become its attributes. The
    descriptions carry the CC BY-SA 4.0 licence and the attribution.
    """
    if version not in HOLISTICBIAS_VERSIONS:
        raise AuditError(
            f"Unknown HolisticBias version {version!r}: use {' or '.join(HOLISTICBIAS_VERSIONS)}."
        )
    source = path / version / "descriptors.json"
    try:
        descriptors = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(f"Cannot read {source}: {exc}") from None
    attribution = HOLISTICBIAS_ATTRIBUTION.format(version=version)
    files = []
    for axis, buckets in descriptors.items():
        groups = [
            {
                "group": bucket,
                "description": f"Bucket {bucket!r} of axis {axis!r}. {attribution}",
                "members": [
                    {"value": item, "attributes": {}}
                    if isinstance(item, str)
                    else {
                        "value": item["descriptor"],
                        "attributes": {k: v for k, v in item.items() if k != "descriptor"},
                    }
                    for item in items
                ],
            }
            for bucket, items in buckets.items()
        ]
        document = {
            "axis": f"holisticbias-{version}-{axis}",
            "description": f"HolisticBias axis {axis!r}. {attribution}",
            "groups": groups,
        }
        files.append((f"holisticbias-{version}-{axis}.json", json.dumps(document).encode()))
    return files


@transaction.atomic
def group_import_holisticbias(*, path: Path, version: str = "v1.1", actor=None) -> ImportPlan:
    """Import the HolisticBias descriptor lists (every axis) as groups, all or nothing."""
    rows: list[dict] = []
    for filename, content in holisticbias_upload_files(path=path, version=version):
        rows.extend(group_upload_check(content=content, filename=filename).rows)
    return group_import(
        plan=ImportPlan(kind="groups", format="json", rows=rows),
        actor=actor,
        filename=str(path / version / "descriptors.json"),
    )
