"""OpenID Connect single sign-on (mozilla-django-oidc) with the role map.

- The provider's endpoints come from the ``OIDC_OP_*`` settings, or else from the discovery
  document at ``OIDC_OP_DISCOVERY_URL``, fetched once per process on first use (never at
  import: a provider that is down must not stop the start, only sign-ins).
- ``RoleMappingBackend`` signs in the person the provider vouches for. The username is the
  first of ``preferred_username``, ``email``, ``sub`` that is a valid Django username (else
  ``oidc-`` and a hash of ``sub``): stable from one login to the next. A user is created on
  first login; a local account of the same name that has a password is never taken over.
- At every login the person's groups among those ``EVENTOPS_OIDC_ROLE_MAP`` can grant are
  set exactly to the ones the provider's groups claim maps to: a group taken away at the
  provider goes away here. Groups the map never mentions (given by hand in the admin) are
  left alone. Someone whose provider groups map to no role is refused.
- Logout also ends the provider's session when it has an ``end_session_endpoint``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from dashboard import role_map
from operations import access

logger = logging.getLogger(__name__)

# Our setting -> the discovery document's key (OpenID Connect Discovery 1.0, section 3).
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_LOGOUT_ENDPOINT": "end_session_endpoint",
}
_USERNAME = re.compile(r"[\w.@+-]{1,150}")
_discovery: dict[str, dict[str, Any]] = {}
_discovery_lock = threading.Lock()


def enabled() -> bool:
    """Whether single sign-on is configured."""
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def _discovery_document(url: str) -> dict[str, Any]:
    """The provider's discovery document, fetched once per process and URL."""
    with _discovery_lock:
        if url not in _discovery:
            response = requests.get(url, timeout=getattr(settings, "OIDC_TIMEOUT", 10.0))
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ImproperlyConfigured(f"OIDC_OP_DISCOVERY_URL {url} is not a JSON object")
            _discovery[url] = document
        return _discovery[url]


def forget_discovery() -> None:
    """Drop the cached discovery documents (tests; a provider that moved its endpoints)."""
    with _discovery_lock:
        _discovery.clear()


def provider_setting(name: str) -> str:
    """An ``OIDC_OP_*`` endpoint: the setting when set, else the discovery document's."""
    value = str(getattr(settings, name, "") or "")
    url = str(getattr(settings, "OIDC_OP_DISCOVERY_URL", "") or "")
    if value or not url or name not in DISCOVERED:
        return value
    return str(_discovery_document(url).get(DISCOVERED[name]) or "")


def _settings(attr: str, *default: Any) -> Any:
    """mozilla-django-oidc's ``get_settings``, with the endpoints resolved by discovery."""
    if attr in DISCOVERED:
        return provider_setting(attr) or (default[0] if default else "")
    if default:
        return getattr(settings, attr, default[0])
    if not hasattr(settings, attr):
        raise ImproperlyConfigured(f"Setting {attr} not found")
    return getattr(settings, attr)


def username_for(claims: dict[str, Any]) -> str:
    """The first of preferred_username, email, sub that is a valid username; else a hash."""
    for key in ("preferred_username", "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and _USERNAME.fullmatch(value):
            return value
    digest = hashlib.sha256(str(claims.get("sub", "")).encode()).hexdigest()[:24]
    return f"oidc-{digest}"


def claim_groups(claims: dict[str, Any]) -> list[str]:
    """The provider's groups, from ``EVENTOPS_OIDC_GROUPS_CLAIM`` (a list, or one string)."""
    value = claims.get(settings.EVENTOPS_OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value if isinstance(item, str | int)]
    return []


def sync_groups(user: Any, claims: dict[str, Any]) -> set[str]:
    """Set the user's mapped groups exactly to what ``claims`` grants; return them."""
    mapping = settings.EVENTOPS_OIDC_ROLE_MAP
    managed = role_map.managed_groups(mapping)
    granted = role_map.granted_groups(mapping, claim_groups(claims))
    current = set(user.groups.values_list("name", flat=True))
    stale = (current & managed) - granted
    if stale:
        user.groups.remove(*Group.objects.filter(name__in=stale))
    # An environment-scoped group (operator@prod) may not exist yet: it grants what its
    # base role grants (operations/access.py), so an empty group is all it needs.
    missing = granted - current
    if missing:
        user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in missing))
    access.forget(user)
    if stale or missing:
        logger.info(
            "oidc: %s groups now %s (added %s, removed %s)",
            user.get_username(),
            sorted(granted),
            sorted(missing),
            sorted(stale),
        )
    return granted


class RoleMappingBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend: username from the claims, groups from the role map."""

    get_settings = staticmethod(_settings)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The parent reads every endpoint here; this backend is also built for each
        # request's ``get_user``, so the endpoints are read lazily (properties below).
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # noqa: N802 (the parent's attribute names)
        return provider_setting("OIDC_OP_TOKEN_ENDPOINT")

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:  # noqa: N802
        return provider_setting("OIDC_OP_USER_ENDPOINT")

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:  # noqa: N802
        return provider_setting("OIDC_OP_JWKS_ENDPOINT")

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:  # noqa: N802
        return str(settings.OIDC_RP_CLIENT_ID)

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:  # noqa: N802
        return str(settings.OIDC_RP_CLIENT_SECRET)

    @property
    def OIDC_RP_SIGN_ALGO(self) -> str:  # noqa: N802
        return str(settings.OIDC_RP_SIGN_ALGO)

    @property
    def OIDC_RP_IDP_SIGN_KEY(self) -> str | None:  # noqa: N802
        return getattr(settings, "OIDC_RP_IDP_SIGN_KEY", None)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        if not enabled():
            return None
        return super().authenticate(request, **kwargs)

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        """The userinfo endpoint's claims over the ID token's (groups may be in either)."""
        userinfo: Any = {}
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = super().get_userinfo(access_token, id_token, payload) or {}
        # OpenID Connect Core 5.3.2: the userinfo's sub must be the ID token's.
        if userinfo and userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo response is about someone else (sub).")
        return {**payload, **userinfo}

    def retrieve_matching_jwk(self, token: Any) -> Any:
        """The provider's key for ``token``. The key ID (``kid``) is optional in a JWS (RFC
        7515, 4.1.4): without one, the provider's only signing key of the token's algorithm
        is used (the signature is still checked), never a guess between several."""
        header = jwt.get_unverified_header(token)
        if "kid" in header:
            return super().retrieve_matching_jwk(token)
        response = requests.get(
            self.OIDC_OP_JWKS_ENDPOINT,
            verify=self.get_settings("OIDC_VERIFY_SSL", True),
            timeout=self.get_settings("OIDC_TIMEOUT", None),
        )
        response.raise_for_status()
        algorithm = header.get("alg")
        keys = [
            key
            for key in response.json().get("keys", [])
            if key.get("alg", algorithm) == algorithm and key.get("use", "sig") == "sig"
        ]
        if len(keys) != 1:
            raise SuspiciousOperation("The ID token names no key and the provider has several.")
        return jwt.PyJWK(keys[0])

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return isinstance(claims.get("sub"), str) and bool(claims["sub"])

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(username=username_for(claims))

    def create_user(self, claims: dict[str, Any]) -> Any:
        granted = role_map.granted_groups(settings.EVENTOPS_OIDC_ROLE_MAP, claim_groups(claims))
        if not granted:
            raise SuspiciousOperation(f"{username_for(claims)}: no provider group maps to a role")
        email = claims.get("email") if isinstance(claims.get("email"), str) else ""
        user = self.UserModel.objects.create_user(username_for(claims), email=email or "")
        logger.info("oidc: created user %s", user.get_username())
        sync_groups(user, claims)
        return user

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        if user.has_usable_password():
            # A local account of that name: signing in through the provider must not
            # take it over (its owner may be someone else).
            raise SuspiciousOperation(f"{user.get_username()} is a local account with a password")
        if not sync_groups(user, claims):
            raise SuspiciousOperation(f"{user.get_username()}: no provider group maps to a role")
        return user


@method_decorator(login_not_required, name="dispatch")
class AuthenticationRequestView(OIDCAuthenticationRequestView):
    """``/oidc/authenticate/``: off (404) unless single sign-on is configured."""

    get_settings = staticmethod(_settings)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = str(settings.OIDC_RP_CLIENT_ID)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not enabled():
            raise Http404("Single sign-on is not configured.")
        self.OIDC_OP_AUTH_ENDPOINT = provider_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
        return super().get(request)


@method_decorator(login_not_required, name="dispatch")
class CallbackView(OIDCAuthenticationCallbackView):
    """``/oidc/callback/``: the provider sends the browser back here."""

    get_settings = staticmethod(_settings)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not enabled():
            raise Http404("Single sign-on is not configured.")
        return super().get(request)


def provider_logout_url(request: HttpRequest) -> str:
    """Where logout sends the browser: the provider's end_session_endpoint (RP-initiated
    logout) when it has one, back to our login page afterwards; else our login page."""
    back = request.build_absolute_uri(reverse("login"))
    id_token = request.session.get("oidc_id_token")
    if not enabled() or not id_token:
        return reverse("login")
    try:
        endpoint = provider_setting("OIDC_OP_LOGOUT_ENDPOINT")
    except (requests.RequestException, ValueError, ImproperlyConfigured) as exc:
        logger.warning("oidc: no end_session_endpoint (discovery failed: %s)", exc)
        return reverse("login")
    if not endpoint:
        return reverse("login")
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": back})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
