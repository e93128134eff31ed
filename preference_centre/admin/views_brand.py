"""Brand settings: the sender name, logo (uploaded or a URL), primary colour (checked for contrast),
privacy URL and, per locale, the preference page's title, introduction and button text; used by the
message layout and the public pages (:mod:`orchestrator.rendering.brand`). An empty field keeps
the default: the config's sender settings, the shipped colour and the shipped texts."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import Role
from orchestrator.rendering.brand import (
    DEFAULT_COLOUR,
    GLOBAL_KEYS,
    LOCALE_KEYS,
    MIN_CONTRAST,
    Brand,
    brand_problems,
    contrast,
    read_brand,
    save_brand,
)
from preference_centre import i18n as public_i18n
from preference_centre.admin.i18n import gettext_for
from preference_centre.admin.web import (
    client_ip,
    form_of,
    guard,
    lang_of,
    operator_of,
    render,
    rt_of,
    see_other,
    upload_bytes,
)

LOCALES = ("fr", "en")
CONTRAST = "Contrast with white is %(r)s, below the %(min)s:1 that WCAG AA requires: choose a darker colour."
PROBLEMS = {
    "a colour is written #rrggbb (for example #0b5cad)": "A colour is written #rrggbb (for example #0b5cad).",
    "an address starting with https://": "An address starting with https://.",
    "a logo is a PNG, JPEG or GIF image": "A logo is a PNG, JPEG or GIF image.",
    "at most 120 characters": "At most 120 characters.",
}


def _defaults() -> dict[str, dict[str, str]]:
    """The shipped texts, shown as placeholders: what applies when a field is left empty."""
    out = {}
    for locale in LOCALES:
        shipped = public_i18n.gettext_for(locale)  # the public pages' catalog, not the console's
        out[locale] = {
            "page_title": shipped("Do you still want to hear from %(sender)s?", sender="…"),
            "page_intro": shipped("You are receiving this because you are a customer or asked us for information. "
                                  "We only keep writing to people who tell us they want it."),
            "button": shipped("Yes, keep me informed"),
        }
    return out


def _values(brand: Brand) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    values = {"sender_name": brand.sender_name, "logo_url": brand.logo_url or "",
              "colour": brand.colour if brand.colour != DEFAULT_COLOUR else "", "privacy_url": brand.privacy_url}
    texts = {loc: {k: brand.text(loc, k) or "" for k in LOCALE_KEYS} for loc in LOCALES}
    return values, texts


def _page(request: Request, values: dict[str, str], texts: dict[str, dict[str, str]], brand: Brand, *,
          problems: dict[str, str] | None = None, status_code: int = 200) -> Response:
    _ = gettext_for(lang_of(request))
    shown: dict[str, str] = {}
    for field, text in (problems or {}).items():
        if text.startswith("contrast with white is "):
            shown[field] = _(CONTRAST, r=text.split(" ")[4].rstrip(","), min=MIN_CONTRAST)
        elif text.startswith("a logo is at most"):
            shown[field] = _("A logo is at most %(n)s kB.", n=text.split()[4])
        else:
            shown[field] = _(PROBLEMS.get(text, text))
    colour = values.get("colour") or DEFAULT_COLOUR
    ratio = contrast(colour, "#ffffff") if re.fullmatch(r"#[0-9a-fA-F]{6}", colour) else None
    return render(request, "brand.html", status_code=status_code, values=values, texts=texts, locales=LOCALES,
                  defaults=_defaults(), problems=shown, brand=brand, ratio=ratio, swatch=colour,
                  default_colour=DEFAULT_COLOUR, min_contrast=MIN_CONTRAST,
                  saved=request.query_params.get("saved") == "1")


@guard()
async def brand_page(request: Request) -> Response:
    brand = read_brand(rt_of(request), fresh=True)
    values, texts = _values(brand)
    return _page(request, values, texts, brand)


@guard(role=Role.ADMIN)
async def brand_save(request: Request) -> Response:
    rt = rt_of(request)
    form = await form_of(request)
    values = {k: str(form.get(k) or "") for k in GLOBAL_KEYS}
    texts = {loc: {k: str(form.get(f"{k}_{loc}") or "") for k in LOCALE_KEYS} for loc in LOCALES}
    upload = await upload_bytes(form, "logo")
    logo = None
    if upload is not None:
        item = form.get("logo")
        kind = getattr(item, "content_type", "") or ""
        logo = (kind, upload[1])
    problems = brand_problems(values, logo)
    brand = read_brand(rt, fresh=True)
    if problems:
        accounts.record_action(rt, operator_of(request), "brand.save", outcome="refused", ip=client_ip(request))
        return _page(request, values, texts, brand, problems=problems, status_code=400)
    save_brand(rt, values, texts, logo=logo, remove_logo=form.get("remove_logo") == "yes")
    accounts.record_action(rt, operator_of(request), "brand.save", target="brand", ip=client_ip(request))
    return see_other("/admin/brand?saved=1")
