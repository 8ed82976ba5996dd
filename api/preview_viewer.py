"""The preview viewer: a page anyone with its link can open, playing the proxy and showing
the storyboard, and the preview's files under it.

    GET /previews/{preview_id}/{token}          the page
    GET /previews/{preview_id}/{token}/{file}   storyboard-NN.jpg, proxy.mp4

No API key: the link is the permission. It holds the preview's token (256 random bits,
domain/previews.py), compared in constant time, so knowing a preview's id is not enough;
a wrong token is answered exactly like an unknown preview (404). The page shows the
proxy, the storyboard and when the preview expires, and nothing else of the account:
no id of the account, its key, its script or its error messages.

The page has no script at all. Its Content-Security-Policy allows only images and media
from this origin and its one inline stylesheet (by hash), nothing to be framed, no
forms, no base URL; `Referrer-Policy: no-referrer` keeps the link out of other sites'
logs. While the preview is being drawn the page reloads itself every 2 s (a meta
refresh, not a script). An expired preview answers 410 Gone (its files are deleted).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import UTC, datetime

from aiohttp import web

from phantomflow.api.errors import not_found
from phantomflow.api.outputs import serve_object
from phantomflow.api.previews import preview_expired, viewer_path
from phantomflow.api.services import Services, services_of
from phantomflow.domain.previews import (
    COMPLETED,
    FAILED,
    TRANSITION,
    Preview,
    PreviewNotFound,
    parse_preview_ref,
)
from phantomflow.projections.timestamps import iso

routes = web.RouteTableDef()

FILE_NAME = re.compile(r"storyboard-\d{2,3}\.jpg|proxy\.mp4")
REFRESH_SECONDS = 2

STYLE = """
body{margin:0;background:#111;color:#eee;font:16px/1.4 system-ui,sans-serif}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:20px;margin:0 0 16px}
video{width:100%;height:auto;background:#000;border-radius:6px}
ol{list-style:none;padding:0;margin:24px 0;display:grid;gap:12px;
grid-template-columns:repeat(auto-fill,minmax(180px,1fr))}
figure{margin:0}img{width:100%;height:auto;border-radius:4px;display:block}
figcaption{font-size:13px;color:#aaa;margin-top:4px}
p{color:#aaa}
""".strip()
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "img-src 'self'",
        "media-src 'self'",
        f"style-src 'sha256-{STYLE_HASH}'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


def shared_preview(services: Services, ref: str, token: str) -> Preview | None:
    """The preview a viewer link names, if its token is right and it is not deleted."""
    preview_id = parse_preview_ref(ref)
    if preview_id is None:
        return None
    try:
        preview = services.runtime.app.get_preview(preview_id)
    except PreviewNotFound:
        return None
    if preview.deleted or not preview.matches_token(token):
        return None
    return preview


async def find(request: web.Request) -> Preview | None:
    services = services_of(request)
    info = request.match_info
    return await services.call(shared_preview, services, info["preview_id"], info["token"])


@routes.get("/previews/{preview_id}/{token}")
async def viewer_page(request: web.Request) -> web.Response:
    preview = await find(request)
    if preview is None:
        return page(404, "Not found", "<p>There is no preview at this address.</p>")
    if not preview.is_live(datetime.now(UTC)):
        return page(410, "Preview expired", "<p>This preview has expired.</p>")
    return page(200, "Preview", body_of(preview), refresh=not preview.is_finished)


@routes.get("/previews/{preview_id}/{token}/{name}")
async def preview_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    preview = await find(request)
    if preview is None or not FILE_NAME.fullmatch(name):
        raise not_found("No such file.")
    if not preview.is_live(datetime.now(UTC)):
        raise preview_expired(preview)
    key = next((k for k in preview.locations if k.rsplit("/", 1)[-1] == name), None)
    served = await serve_object(request, key) if key else None
    if served is None:
        raise not_found("No such file.")
    served.headers["X-Content-Type-Options"] = "nosniff"
    served.headers["X-Robots-Tag"] = "noindex, nofollow"
    return served


def body_of(preview: Preview) -> str:
    """What the page shows: the proxy (once drawn), the storyboard, the expiry."""
    base = viewer_path(preview)
    parts: list[str] = []
    proxy = preview.proxy
    if preview.status == COMPLETED and proxy is not None:
        poster = f' poster="{base}/storyboard-01.jpg"' if preview.storyboard else ""
        parts.append(
            f'<video controls playsinline preload="metadata"'
            f' width="{int(proxy["width"])}" height="{int(proxy["height"])}"{poster}>'
            f'<source src="{base}/proxy.mp4" type="video/mp4"></video>'
        )
    elif preview.status == FAILED:
        parts.append("<p>This preview could not be drawn.</p>")
    else:
        parts.append("<p>The preview is being drawn; this page shows it when it is ready.</p>")
    if preview.storyboard:
        figures = "".join(figure(base, frame) for frame in preview.storyboard)
        parts.append(f"<ol>{figures}</ol>")
    parts.append(f"<p>This link works until {iso(preview.expires_at)}.</p>")
    return "".join(parts)


def figure(base: str, frame: dict[str, object]) -> str:
    number = int(str(frame["scene"])) + 1
    what = f"Scene {number} to {number + 1}" if frame["kind"] == TRANSITION else f"Scene {number}"
    caption = html.escape(f"{what}, {float(str(frame['time'])):.2f} s")
    name = str(frame["location"]).rsplit("/", 1)[-1]
    return (
        f'<li><figure><img src="{base}/{html.escape(name)}" alt="{caption}"'
        f' loading="lazy"><figcaption>{caption}</figcaption></figure></li>'
    )


def page(status: int, title: str, body: str, refresh: bool = False) -> web.Response:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex,nofollow">{meta}'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(
        status=status,
        text=document,
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )
