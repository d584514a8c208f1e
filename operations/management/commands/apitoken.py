"""``manage.py apitoken create|list|revoke``: REST API tokens from a shell.

    python manage.py apitoken create USER [--name NAME] [--expires DAYS]
    python manage.py apitoken list [USER]
    python manage.py apitoken revoke USER PREFIX

``create`` prints the token alone on its last line (``TOKEN=$(... | tail -n1)``); it is
stored hashed and cannot be shown again.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from operations import api_tokens
from operations.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke REST API tokens."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        creating = actions.add_parser("create", help="a new token (printed once, last line)")
        creating.add_argument("user")
        creating.add_argument("--name", default="", help="what it is for (audited)")
        creating.add_argument("--expires", type=int, default=None, help="days until it expires")
        listing = actions.add_parser("list", help="tokens, never their secrets")
        listing.add_argument("user", nargs="?", default="")
        revoking = actions.add_parser("revoke", help="revoke a token by its prefix")
        revoking.add_argument("user")
        revoking.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(options["user"], options["name"], options["expires"])
        elif action == "list":
            self._list(options["user"])
        else:
            self._revoke(options["user"], options["prefix"])

    def _user(self, username: str) -> Any:
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None

    def _create(self, username: str, name: str, expires: int | None) -> None:
        if expires is not None and expires < 1:
            raise CommandError("--expires must be a positive number of days.")
        made = api_tokens.create(self._user(username), name, expires)
        token = made.token
        until = f"{token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never"
        self.stdout.write(f"Token {token.name!r} ({token.prefix}) for {username}, expires {until}.")
        self.stdout.write("It is shown only now; store it safely:")
        self.stdout.write(made.plaintext)

    def _list(self, username: str) -> None:
        rows = ApiToken.objects.select_related("user")
        if username:
            rows = rows.filter(user=self._user(username))
        for t in rows:
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            expires = f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never"
            self.stdout.write(
                f"{t.prefix}  {t.user.get_username():<20} {t.status:<8} expires {expires:<16} "
                f"last used {used:<16} {t.name}"
            )

    def _revoke(self, username: str, prefix: str) -> None:
        token = api_tokens.find(self._user(username), prefix)
        if token is None:
            raise CommandError(f"{username} has no token {prefix!r}.")
        if api_tokens.revoke(token):
            self.stdout.write(f"Revoked {token.prefix} ({token.name}).")
        else:
            self.stdout.write(f"{token.prefix} ({token.name}) was already revoked.")
