"""Safe-by-default request checks, as aiohttp middlewares.

1. **Access token** — when the server listens on a non-loopback address, every request (routes,
   static files, `/ws`, routes added by packs) must carry the token: ``Authorization: Bearer <t>``,
   the ``weft_token`` cookie, or ``?token=<t>`` (which also sets the cookie, so a browser opened on
   ``http://host:8188/?token=…`` keeps working).
2. **Host allowlist** — on loopback, a ``Host`` header that is not a loopback name is refused, so a
   DNS-rebinding page cannot talk to the server under its own domain name.
3. **Cross-site guard** — a mutating request (POST, PUT, PATCH, DELETE) or a websocket upgrade
   from another site is refused: ``Origin`` whose host differs from ``Host``, ``Origin: null``, or
   ``Sec-Fetch-Site: cross-site``. ``--enable-cors-header ORIGIN`` allows exactly that origin.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from graph.validation import make_error

TOKEN_COOKIE = "weft_token"
MUTATING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(address: str) -> bool:
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def split_host(host: str) -> str:
    """The host name of a ``Host`` header value (without port or IPv6 brackets), lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class SecurityPolicy:
    listen_addresses: tuple[str, ...] = ("127.0.0.1",)
    access_token: str | None = None
    cors_origin: str | None = None
    extra_hosts: frozenset[str] = field(default_factory=frozenset)

    @property
    def loopback_only(self) -> bool:
        return all(is_loopback(a) for a in self.listen_addresses)

    def host_allowed(self, host: str | None) -> bool:
        if not self.loopback_only:
            return True  # reachable from the network: the token is what protects it
        if not host:
            return False
        name = split_host(host)
        return is_loopback(name) or name in self.extra_hosts

    def token_ok(self, request: web.Request) -> bool:
        if self.access_token is None:
            return True
        offered = []
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            offered.append(header[7:].strip())
        offered.append(request.cookies.get(TOKEN_COOKIE, ""))
        offered.append(request.query.get("token", ""))
        expected = self.access_token.encode()
        # a header that was not UTF-8 arrives with surrogate escapes: compared as its raw bytes
        return any(o and hmac.compare_digest(o.encode("utf-8", "surrogateescape"), expected) for o in offered)

    def cross_site(self, request: web.Request) -> str | None:
        """Why a mutating/upgrade request looks cross-site, or None."""
        origin = request.headers.get("Origin")
        if origin is not None:
            if origin.strip().lower() == "null":
                return "Origin: null"
            if self.cors_origin is not None and origin.rstrip("/") == self.cors_origin.rstrip("/"):
                return None
            parts = urlsplit(origin)
            if not parts.netloc or parts.netloc.lower() != (request.headers.get("Host") or "").lower():
                return f"Origin {origin} does not match Host"
        if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            return "Sec-Fetch-Site: cross-site"
        return None


def _refuse(status: int, error_type: str, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"error": make_error(error_type, message)}),
                        content_type="application/json")


def security_middleware(policy: SecurityPolicy):
    @web.middleware
    async def middleware(request: web.Request, handler):
        if not policy.host_allowed(request.headers.get("Host")):
            return _refuse(403, "forbidden_host", "Host header not allowed (DNS rebinding protection)")
        if not policy.token_ok(request):
            return web.Response(status=401, text=json.dumps({"error": make_error(
                "unauthorized", "An access token is required")}), content_type="application/json",
                headers={"WWW-Authenticate": "Bearer"})
        is_upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if request.method == "OPTIONS" and policy.cors_origin is not None:
            response = web.Response(status=204)
        else:
            if request.method in MUTATING_METHODS or is_upgrade:
                reason = policy.cross_site(request)
                if reason is not None:
                    return _refuse(403, "cross_site_request", f"Cross-site request refused: {reason}")
            response = await handler(request)
        if policy.cors_origin is not None and request.headers.get("Origin", "").rstrip("/") == \
                policy.cors_origin.rstrip("/"):
            response.headers["Access-Control-Allow-Origin"] = policy.cors_origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, Comfy-User"
            response.headers["Vary"] = "Origin"
        if policy.access_token is not None and request.query.get("token") and not is_upgrade:
            response.set_cookie(TOKEN_COOKIE, policy.access_token, httponly=True, samesite="Strict")
        return response

    return middleware
