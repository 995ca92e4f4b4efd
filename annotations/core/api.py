"""API tokens over the API: POST username and password for a new token (rate limited like the login
page); list your tokens; revoke one. Tokens are stored hashed (annotations/core/tokens.py)."""

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.core.api_errors import ApiErrorSerializer
from annotations.core.security import login_failure_record, login_is_locked, login_success_clear
from annotations.core.tokens import token_issue, token_revoke, tokens_of
from annotations.core.views import LOCKED_MESSAGE
from annotations.models import ApiToken

LOCKOUT_RETRY_SECONDS = 300


class TokenRequestSerializer(AuthTokenSerializer):
    """Username and password, and optionally the new token's name and lifetime in days."""

    name = serializers.CharField(required=False, max_length=100, default="api")
    days = serializers.IntegerField(
        required=False, min_value=1, max_value=3650, default=None, allow_null=True
    )


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret (only the first characters, to recognise it)."""

    username = serializers.CharField(source="user.username", read_only=True)
    is_live = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = (
            "id",
            "username",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "is_live",
        )
        read_only_fields = fields


class TokenCreateApi(APIView):
    """Exchange a username and password for a new API token (send it as `Authorization: Token ...`).

    The secret is in this answer only; the platform keeps its SHA-256 digest. Each call makes another
    token (several scripts, several tokens); revoke the ones you no longer use.
    """

    permission_classes = ()
    authentication_classes = ()
    throttle_classes = ()
    serializer_class = TokenRequestSerializer

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer(
                "Token",
                {
                    "token": serializers.CharField(),
                    "id": serializers.IntegerField(),
                    "name": serializers.CharField(),
                    "expires_at": serializers.DateTimeField(),
                },
            ),
            400: ApiErrorSerializer,
            429: ApiErrorSerializer,
        },
        operation_id="auth_token_create",
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        """Return a new token, or 400 for wrong credentials, or 429 after too many failures."""
        data = request.data if isinstance(request.data, Mapping) else {}
        username = str(data.get("username", ""))[:150]
        if login_is_locked(request=request, username=username):
            raise Throttled(wait=LOCKOUT_RETRY_SECONDS, detail=LOCKED_MESSAGE)
        serializer = TokenRequestSerializer(data=data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
        except ValidationError:
            if set(serializer.errors) <= {"name", "days"}:
                raise  # a bad name or number of days alone is not a failed login
            login_failure_record(request=request, username=username)
            raise
        login_success_clear(request=request, username=username)
        values = serializer.validated_data
        token, secret = token_issue(
            user=values["user"], name=values.get("name") or "api", days=values.get("days")
        )
        return Response({"token": secret, "id": token.pk, "name": token.name, "expires_at": token.expires_at})


class TokenListApi(APIView):
    """Your API tokens, newest first, revoked and expired ones included (never a secret)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: ApiTokenSerializer(many=True)}, operation_id="auth_tokens_list")
    def get(self, request):
        """List the caller's tokens."""
        return Response(ApiTokenSerializer(tokens_of(user=request.user), many=True).data)


class TokenRevokeApi(APIView):
    """Revoke one of your tokens (an admin: anyone's); it stops working at once and stays listed."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: ApiTokenSerializer, 404: ApiErrorSerializer},
        operation_id="auth_token_revoke",
    )
    def delete(self, request, token_id: int):
        """Revoke the token; 404 when it is not yours (or does not exist)."""
        token = token_revoke(token_id=token_id, actor=request.user)
        return Response(ApiTokenSerializer(token).data, status=status.HTTP_200_OK)
