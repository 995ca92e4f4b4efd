"""API token: POST username and password, get the token (rate limited like the login page)."""

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.response import Response

from annotations.core.api_errors import ApiErrorSerializer
from annotations.core.security import login_failure_record, login_is_locked, login_success_clear
from annotations.core.tokens import token_issue
from annotations.core.views import LOCKED_MESSAGE

LOCKOUT_RETRY_SECONDS = 300


class TokenCreateApi(ObtainAuthToken):
    """Exchange a username and password for the user's API token (send it as `Authorization: Token ...`)."""

    permission_classes = ()
    authentication_classes = ()
    throttle_classes = ()

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}),
            400: ApiErrorSerializer,
            429: ApiErrorSerializer,
        },
        operation_id="auth_token_create",
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        """Return the token, or 400 for wrong credentials, or 429 after too many failures."""
        data = request.data if isinstance(request.data, Mapping) else {}
        username = str(data.get("username", ""))[:150]
        if login_is_locked(request=request, username=username):
            raise Throttled(wait=LOCKOUT_RETRY_SECONDS, detail=LOCKED_MESSAGE)
        serializer = self.get_serializer(data=data)
        try:
            serializer.is_valid(raise_exception=True)
        except ValidationError:
            login_failure_record(request=request, username=username)
            raise
        login_success_clear(request=request, username=username)
        return Response({"token": token_issue(user=serializer.validated_data["user"]).key})
