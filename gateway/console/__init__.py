"""The tenant admin console (docs/console.md): static files served at
`/console/`, a single page that speaks only to the public GraphQL API at
`/graphql` (no other route, no server-side state, no cookie).

The files are read once, at import, from `gateway/console/static/` (a fixed
set: nothing under another path is ever served, so no path can climb out).
`/console` and `/console/` both serve the page (litestar reads them alike:
the page names its files by absolute paths). Each is sent with its content type, an `ETag` (a hash of its bytes; a
matching `If-None-Match` gets a 304), and:

* `Cache-Control: no-cache` (revalidate each time: a new version is seen at
  once), except for the vendored library whose file name carries its version
  (`immutable`, a year);
* a Content-Security-Policy that allows scripts, styles, images and
  connections from the gateway itself only, no inline script or style, no
  framing, no form posted elsewhere, no `<base>`;
* `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Response
from litestar.status_codes import HTTP_304_NOT_MODIFIED, HTTP_404_NOT_FOUND

PREFIX = "/console"
STATIC = Path(__file__).with_name("static")

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# litestar adds "; charset=utf-8" to the text types
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str
    cache_control: str


def _load(root: Path) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in TYPES:
            continue
        name = path.relative_to(root).as_posix()
        body = path.read_bytes()
        media_type = TYPES[path.suffix]
        versioned = name.startswith("vendor/") and path.suffix == ".js"
        assets[name] = Asset(
            body=body,
            media_type=media_type,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            cache_control=IMMUTABLE if versioned else REVALIDATE,
        )
    return assets


ASSETS = _load(STATIC)


def _headers(asset: Asset | None) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    if asset is not None:
        headers["Cache-Control"] = asset.cache_control
        headers["ETag"] = asset.etag
    return headers


def _serve(request: Request[object, object, object], name: str) -> Response[bytes]:
    asset = ASSETS.get(name)
    if asset is None:
        return Response(
            b"Not found.\n",
            status_code=HTTP_404_NOT_FOUND,
            media_type="text/plain",
            headers={**_headers(None), "Cache-Control": "no-store"},
        )
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=_headers(asset))
    return Response(asset.body, media_type=asset.media_type, headers=_headers(asset))


@get(PREFIX, include_in_schema=False, sync_to_thread=False)
def console_index(request: Request[object, object, object]) -> Response[bytes]:
    return _serve(request, "index.html")


@get(f"{PREFIX}/{{name:path}}", include_in_schema=False, sync_to_thread=False)
def console_asset(request: Request[object, object, object], name: FromPath[str]) -> Response[bytes]:
    return _serve(request, name.lstrip("/"))


routes = [console_index, console_asset]
