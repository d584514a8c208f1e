"""Create the demo users: ``oncall`` (operator) and ``viewer``."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

DEMO_USERS = (("oncall", "operator"), ("viewer", "viewer"))


class Command(BaseCommand):
    help = (
        "Create or update the demo users oncall (operator) and viewer. Their password is "
        "DEMO_PASSWORD, or a generated one that is printed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_PASSWORD", "").strip()
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User = get_user_model()
        with transaction.atomic():
            for username, group_name in DEMO_USERS:
                try:
                    group = Group.objects.get(name=group_name)
                except Group.DoesNotExist:
                    raise CommandError(
                        f"Group {group_name!r} is missing: run `python manage.py migrate` first."
                    ) from None
                user, created = User.objects.get_or_create(username=username)
                user.set_password(password)
                user.is_active = True
                user.save()
                user.groups.set([group])
                verb = "Created" if created else "Updated"
                self.stdout.write(f"{verb} {username} ({group_name})")
        source = "generated" if generated else "from DEMO_PASSWORD"
        self.stdout.write(
            self.style.SUCCESS(f"Password for oncall and viewer ({source}): {password}")
        )
