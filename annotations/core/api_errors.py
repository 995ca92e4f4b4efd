"""Turns the domain exception into a 400 (or 404) with its message, for every API view."""

from django.core.exceptions import PermissionDenied
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotations.core.exceptions import AuditError, NotFoundError


def exception_handler(exc, context):
    """DRF's handler, plus AuditError -> 400/404 and ProtectedError -> 409 with a clear message."""
    if isinstance(exc, NotFoundError):
        return Response(exc.as_dict(), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, AuditError):
        return Response(exc.as_dict(), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError):
        names = sorted({obj._meta.verbose_name_plural for obj in exc.protected_objects})
        detail = f"Refused: other data depends on this ({', '.join(names)}). Nothing was deleted."
        return Response({"detail": detail, "code": "protected"}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, PermissionDenied):
        return Response({"detail": "You do not have permission for this."}, status=status.HTTP_403_FORBIDDEN)
    return drf_exception_handler(exc, context)
