"""The API's one error shape, for every API view (annotations and inference): `AuditError.as_dict()`.

    {"detail": "...", "code": "...", "errors": [{"field": "...", "message": "...", "row": 3}, ...]}

Domain errors (AuditError) answer 400 (NotFoundError 404); DRF's validation errors answer 400 with one
entry per problem, nested fields flattened to dotted paths (`selection.runs.0`, `gold.1.category`); a
malformed body, a missing or refused login, a missing object, a method not allowed, a throttled request
and an unsupported media type keep their status codes and headers (WWW-Authenticate, Retry-After, Allow)
and answer the same shape with an empty `errors`. `ApiErrorSerializer` documents the shape in the schema.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from annotations.core.exceptions import AuditError, NotFoundError

PERMISSION_DENIED = "You do not have permission for this."


class ApiErrorItemSerializer(serializers.Serializer):
    """One problem: the field (a dotted path, or null for the whole request) and, for uploads, the row."""

    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    row = serializers.IntegerField(required=False, allow_null=True)
    line = serializers.IntegerField(required=False, allow_null=True)


class ApiErrorSerializer(serializers.Serializer):
    """Every API error: a message, a machine-readable code and the itemised problems."""

    detail = serializers.CharField()
    code = serializers.CharField()
    errors = ApiErrorItemSerializer(many=True)


def validation_errors(detail, path: str = "") -> list[dict]:
    """DRF's nested `ValidationError.detail` as a flat list of {"field": dotted path, "message": ...}."""
    if isinstance(detail, dict):
        return [
            error for key, value in detail.items() for error in validation_errors(value, _join(path, key))
        ]
    if isinstance(detail, list | tuple):
        if all(isinstance(item, str) for item in detail):
            return [{"field": path or None, "message": str(item)} for item in detail]
        return [
            error
            for index, item in enumerate(detail)
            for error in validation_errors(item, _join(path, index))
        ]
    return [{"field": path or None, "message": str(detail)}]


def _join(path: str, key) -> str:
    if key == api_settings.NON_FIELD_ERRORS_KEY:
        return path
    return f"{path}.{key}" if path else str(key)


def _as_audit_error(exc: exceptions.APIException) -> AuditError:
    if isinstance(exc, exceptions.ValidationError):
        errors = validation_errors(exc.detail)
        summary = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        return AuditError(f"Invalid request: {summary}", errors=errors, code="invalid")
    codes = exc.get_codes()
    return AuditError(str(exc.detail), code=codes if isinstance(codes, str) else exc.default_code)


def exception_handler(exc, context):
    """Every error an API view raises, in the one shape; None (a 500) for anything unexpected."""
    if isinstance(exc, AuditError):
        set_rollback()
        code = status.HTTP_404_NOT_FOUND if isinstance(exc, NotFoundError) else status.HTTP_400_BAD_REQUEST
        return Response(exc.as_dict(), status=code)
    if isinstance(exc, ProtectedError):
        set_rollback()
        names = sorted({obj._meta.verbose_name_plural for obj in exc.protected_objects})
        detail = f"Refused: other data depends on this ({', '.join(names)}). Nothing was deleted."
        return Response(AuditError(detail, code="protected").as_dict(), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(PERMISSION_DENIED)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)  # the status, WWW-Authenticate, Retry-After, rollback
    if response is None:
        return None
    response.data = _as_audit_error(exc).as_dict()
    return response
