"""The dashboard: a web app over the API, served by every API process at `/dashboard/`.

Its files (`api/web/`: HTML, CSS and ES modules, with the two vendored libraries) are
package data served from memory (api/static_bundle.py); every path under /dashboard/
that is not a file answers the app's one page, which routes in the browser. It talks
to the API of the same origin with the key the user pasted, kept in the tab's
sessionStorage (docs/dashboard.md).

Security headers: the app's responses carry a Content-Security-Policy that allows
scripts, styles and connections from this origin only (no inline script, no eval),
videos and posters from where outputs are served, and no framing (also
`X-Frame-Options: DENY`). Every response of the key-protected API says
`Cache-Control: no-store`, so nothing a browser keeps holds account data.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from aiohttp import web
from yarl import URL

from phantomflow.api.services import services_of
from phantomflow.api.static_bundle import CONTENT_TYPES, StaticBundle

PREFIX = "/dashboard"
STATIC = f"{PREFIX}/static"
BUNDLE = web.AppKey("dashboard_bundle", StaticBundle)

# The app's files hold no account data; they are revalidated (ETag) on every load, so
# an upgrade is seen at once.
STATIC_CACHE = "no-cache"

routes = web.RouteTableDef()


def content_security_policy(public_url: str | None) -> str:
    """Same-origin everything; media and posters also from PHANTOMFLOW_PUBLIC_URL's
    origin, which output links use when it is set."""
    media = "'self'"
    if public_url:
        origin = str(URL(public_url).origin())
        media = f"'self' {origin}"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media}",
            f"media-src {media}",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def page_headers(public_url: str | None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(public_url),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    path = request.path
    if path == "/" or path == PREFIX or path.startswith(f"{PREFIX}/"):
        public_url = services_of(request).runtime.settings.public_url
        response.headers.update(page_headers(public_url))
    elif path.startswith("/api/"):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # The published schemas say they may be cached; everything else behind a key
        # holds account data.
        if not response.headers.get("Cache-Control", "").startswith("public"):
            response.headers["Cache-Control"] = "no-store"


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{PREFIX}/")


@routes.get(PREFIX)
async def without_slash(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"{PREFIX}/")


@routes.get(STATIC + "/{name:.+}")
async def static_file(request: web.Request) -> web.StreamResponse:
    return request.app[BUNDLE].response(request, request.match_info["name"], STATIC_CACHE)


@routes.get(PREFIX + "/{page:.*}")
async def app_page(request: web.Request) -> web.StreamResponse:
    """The one page of the app, for every route it has (`/dashboard/jobs/…`)."""
    return request.app[BUNDLE].response(request, "index.html", STATIC_CACHE)


def install(app: web.Application) -> None:
    """Serve the dashboard from `app` and set the security headers."""
    app[BUNDLE] = StaticBundle(resources.files("phantomflow.api") / "web")
    app.add_routes(routes)
    app.on_response_prepare.append(add_security_headers)


def _page(
    operation_id: str, summary: str, answers: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    parameters = (
        [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}]
        if name
        else []
    )
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["dashboard"],
        "security": [],
        "parameters": parameters,
        "responses": answers,
    }


def _files(*content_types: str) -> dict[str, Any]:
    return {
        content_type.split(";")[0]: {"schema": {"type": "string"}} for content_type in content_types
    }


def _not_found(meaning: str) -> dict[str, Any]:
    return {
        "description": f"NOT_FOUND: {meaning}",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


UNCHANGED = {"description": "Not modified since the ETag the request sent (If-None-Match)"}


# The dashboard's routes, as the OpenAPI document lists them (api/openapi/operations.py): pages
# for people, not API operations; tagged so that client generators can leave them out.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/"): _page(
        "getRoot", "Redirects to the dashboard", {"302": {"description": "To /dashboard/"}}
    ),
    ("get", PREFIX): _page(
        "getDashboard", "Redirects to /dashboard/", {"301": {"description": "To /dashboard/"}}
    ),
    ("get", STATIC + "/{name}"): _page(
        "getDashboardFile",
        "A file of the dashboard web app",
        {
            "200": {"description": "The file", "content": _files(*CONTENT_TYPES.values())},
            "304": UNCHANGED,
            "404": _not_found("no such file"),
        },
        "name",
    ),
    ("get", PREFIX + "/{page}"): _page(
        "getDashboardPage",
        "The dashboard web app (one page, every route)",
        {
            "200": {"description": "The app's page", "content": _files("text/html")},
            "304": UNCHANGED,
            # A page name with a line break matches no route.
            "404": _not_found("no such route"),
        },
        "page",
    ),
}
