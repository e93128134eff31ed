"""The consent receipt on the web (issue 18 §4): ``GET /p/{token}/receipt`` downloads the signed receipt of
the person's most recent answer (the page link already names them: no address, no id in the URL, and the
log scrubber masks the token as for every /p/ path); ``GET /.well-known/jwks.json`` publishes the keys
that verify it. Both only read.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.proof import receipt_keys, receipts
from preference_centre.public.pages import _off_loop, error_page, open_link, rt_of


async def receipt(request: Request) -> Response:
    return await _off_loop(rt_of(request), _receipt, request)


def _receipt(request: Request) -> Response:
    opened = open_link(request, "page")
    if isinstance(opened, Response):  # tampered, expired, or the person is gone
        return opened
    claims, _facts = opened
    rt = rt_of(request)
    if not receipt_keys.enabled(rt.config):  # reaching people without a key of its own: receipts are off
        return error_page(request, 404, "not_found")
    found = receipts.receipt_for(rt, claims.contact_id)
    if found is None:  # no answer yet: nothing to give a receipt for
        return error_page(request, 404, "not_found")
    name = f"consent-receipt-{found.claims['consentReceiptID'][:8]}.json"
    return Response(found.document(receipts.jwks_url(rt)), media_type="application/json",
                    headers={"content-disposition": f'attachment; filename="{name}"',
                             "cache-control": "no-store"})


async def jwks(request: Request) -> Response:
    """The public keys of receipts, current first (a JWK Set, RFC 7517)."""
    body = json.dumps(receipt_keys.jwks(rt_of(request).config), indent=2).encode() + b"\n"
    return Response(body, media_type="application/jwk-set+json",
                    headers={"cache-control": "public, max-age=3600", "access-control-allow-origin": "*"})
