"""Password hashing: argon2id (argon2-cffi), with RFC 9106's low-memory
profile in production and the cheapest profile in tests (`QUARTIER_ENV=test`)."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST, RFC_9106_LOW_MEMORY

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

MIN_PASSWORD = 10
MAX_PASSWORD = 256


def check_password_policy(password: str, field: str = "password") -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            t(
                "a password has {minimum} to {maximum} characters",
                minimum=MIN_PASSWORD,
                maximum=MAX_PASSWORD,
            ),
            field=field,
        )
    if password.strip() == "":
        raise InvalidInput(t("a password cannot be blank"), field=field)
    return password


class PasswordHasher:
    def __init__(self, cheap: bool = False):
        params = CHEAPEST if cheap else RFC_9106_LOW_MEMORY
        self._hasher = argon2.PasswordHasher.from_parameters(params)
        self._dummy = self._hasher.hash("not a password of anybody")

    def hash(self, password: str) -> str:
        return self._hasher.hash(check_password_policy(password))

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def waste_time(self, password: str) -> None:
        """Spend as long as a real check, so that timing does not tell which
        addresses have an account."""
        self.verify(self._dummy, password)
