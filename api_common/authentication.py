"""`Authorization: Token <token>` authentication against hashed API client tokens."""

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from api_common.models import ApiClient, hash_token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[ApiClient, str] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Token <token>'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("The token must be ASCII.") from error
        client = ApiClient.objects.active().filter(token_hash=hash_token(token)).first()
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return client, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
