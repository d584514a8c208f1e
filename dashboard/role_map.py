"""``EVENTOPS_OIDC_ROLE_MAP``: which eventops group each identity-provider group grants.

``sre-oncall=operator,engineering=viewer,prod-admins=admin@prod`` maps the provider's group
``sre-oncall`` to the eventops group ``operator``, and so on. A value is one of the roles
(``viewer``, ``operator``, ``admin``), alone or scoped to one environment
(``operator@prod``, operations/access.py). One provider group may grant several eventops
groups (list it once per group). Read by settings.py, so a typo stops the start with a
message that names it.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

# The roles the migrations create (operations.access.DEFAULT_ROLES; not imported here:
# settings.py reads this module before the apps load).
ROLES = ("viewer", "operator", "admin")
# An environment name, as dashboard.environment.EnvironmentConverter takes it.
_ENVIRONMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# A provider group: anything printable but the separators, at most 255 characters.
_PROVIDER_GROUP = re.compile(r"[^\s,=]{1,255}")


def parse_role_map(text: str) -> dict[str, tuple[str, ...]]:
    """``"a=operator,b=viewer"`` -> ``{"a": ("operator",), "b": ("viewer",)}``.

    Raises ``ImproperlyConfigured`` naming the faulty item."""
    mapping: dict[str, list[str]] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        claim, sep, group = (part.strip() for part in item.partition("="))
        if not sep or not claim or not group:
            raise _bad(item, "write it as provider-group=role, e.g. sre-oncall=operator")
        if not _PROVIDER_GROUP.fullmatch(claim):
            raise _bad(item, "the provider's group name has spaces or is over 255 characters")
        role, at, scope = group.partition("@")
        if role not in ROLES:
            raise _bad(item, f"the role must be one of {', '.join(ROLES)}, not {role!r}")
        if at and not _ENVIRONMENT.fullmatch(scope):
            raise _bad(item, f"{scope!r} is not an environment name (a-z, 0-9, _ and -)")
        granted = mapping.setdefault(claim, [])
        if group not in granted:
            granted.append(group)
    return {claim: tuple(groups) for claim, groups in mapping.items()}


def _bad(item: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"EVENTOPS_OIDC_ROLE_MAP: {item!r}: {why}")


def managed_groups(role_map: dict[str, tuple[str, ...]]) -> set[str]:
    """Every eventops group the map can grant: the ones each login sets exactly."""
    return {group for groups in role_map.values() for group in groups}


def granted_groups(role_map: dict[str, tuple[str, ...]], claim_groups: list[str]) -> set[str]:
    """The eventops groups a person in ``claim_groups`` (the provider's) gets."""
    return {group for claim in claim_groups for group in role_map.get(claim, ())}
