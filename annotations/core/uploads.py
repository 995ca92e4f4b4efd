"""The one check of an upload's size (settings.AUDIT_UPLOAD_MAX_BYTES), made by every upload route.

Views call `upload_read` on the uploaded file and hand the bytes to the service, so services and parsers
never check the size again; the message names the file's size and the limit, the same on every route.
"""

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from annotations.core.exceptions import AuditError


def upload_read(upload: UploadedFile | None, *, field: str = "file") -> bytes:
    """The bytes of an uploaded file; AuditError, without reading it, when none was sent or it is too big."""
    if upload is None:
        raise AuditError(
            "Choose a file to upload.",
            errors=[{"row": None, "line": None, "field": field, "message": "no file was sent"}],
        )
    limit = settings.AUDIT_UPLOAD_MAX_BYTES
    if upload.size > limit:
        message = f"the file is {upload.size:,} bytes; the limit is {limit:,} bytes"
        raise AuditError(
            f"The upload was rejected: {message}; nothing was saved.",
            errors=[{"row": None, "line": None, "field": field, "message": message}],
            code="invalid_upload",
        )
    return upload.read()
