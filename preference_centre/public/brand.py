"""The brand on the public pages: the primary colour as a stylesheet (the pages' CSP allows only
their own stylesheets, no inline style) and the uploaded logo, both from the console's brand
settings (:mod:`orchestrator.rendering.brand`); a logo given as an https address instead is loaded
from there (the pages' CSP names that origin, :func:`image_origins`). Neither needs JavaScript."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.rendering.brand import DEFAULT_COLOUR, Brand, read_brand
from orchestrator.runtime import Runtime
from preference_centre.security import image_origin


def page_sender(rt: Runtime, brand: Brand) -> dict[str, str]:
    """The ``sender`` of the page templates: the config's, with the brand's name and privacy URL."""
    sender = rt.config.sender
    return {"name": brand.sender_name, "postal_address": sender.postal_address, "privacy_url": brand.privacy_url,
            "email_from": sender.email_from, "stop_number": sender.stop_number}


def page_brand(brand: Brand, lang: str) -> dict[str, str]:
    """The brand values a page template reads (empty: the shipped text or look applies)."""
    return {"title": brand.text(lang, "page_title") or "", "intro": brand.text(lang, "page_intro") or "",
            "button": brand.text(lang, "button") or "",
            "logo": f"/brand/logo/{brand.logo_hash}" if brand.logo_hash else (brand.logo_url or ""),
            "css": f"/brand.css?c={brand.colour.lstrip('#')}" if brand.colour != DEFAULT_COLOUR else ""}


def image_origins(rt: Runtime) -> list[str]:
    """What the pages' CSP adds to ``img-src``: the origin of the logo given as an https address (only
    when no logo is uploaded: the uploaded one is served from here)."""
    brand = read_brand(rt)
    origin = None if brand.logo_hash else image_origin(brand.logo_url)
    return [origin] if origin else []


async def brand_css(request: Request) -> Response:
    rt: Runtime = request.app.state.rt
    colour = read_brand(rt).colour
    css = (f":root{{--accent:{colour}}}\n"
           "@media (prefers-color-scheme:dark){:root{--accent:#7db4ff}}\n")
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=300"})


async def brand_logo(request: Request) -> Response:
    rt: Runtime = request.app.state.rt
    brand = read_brand(rt)
    if brand.logo is None or request.path_params["digest"] != brand.logo_hash:
        return Response("Not found", status_code=404, media_type="text/plain")
    kind, data = brand.logo
    return Response(data, media_type=kind, headers={"cache-control": "public, max-age=86400"})

