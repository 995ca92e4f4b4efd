"""Requests refused before any view runs, in the one error shape of the API.

A NUL character in a query string: PostgreSQL text cannot hold one, so a search for it raised
`ValueError: A string literal cannot contain NUL (0x00) characters` (a 500) in every view that passed a
query parameter to the database (found by bench/fuzz_api.py). No legitimate request carries one; Django's
form fields and DRF's serializers already refuse it in bodies. Refusing it here covers every page and API
list, present and future, in one place.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from annotations.core.exceptions import AuditError


class QueryStringGuardMiddleware:
    """400 for a query string with a NUL character in a name or value, naming the parameter."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse the request, or pass it on."""
        raw = request.META.get("QUERY_STRING", "")
        if "%00" in raw or "\x00" in raw:  # cheap test on the raw string first: the hot path has none
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    return _refused(request, name.replace("\x00", "\\x00")[:100])
        return self.get_response(request)


def _refused(request: HttpRequest, name: str) -> HttpResponse:
    message = f"Query parameter {name!r} contains a NUL character (\\x00), which no value can hold."
    if request.path.startswith("/api/"):
        error = AuditError(message, errors=[{"field": name, "message": message}])
        return JsonResponse(error.as_dict(), status=400)
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
