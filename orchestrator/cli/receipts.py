"""``reconsent receipts …``: the keys of consent receipts and their offline check (issue 18 §4).
The work is :mod:`orchestrator.proof.receipt_keys` and :mod:`orchestrator.proof.receipts`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from orchestrator.cli.common import fail_cleanly, get_rt


@click.group("receipts")
def receipts() -> None:
    """Consent receipts: make a signing key, check a receipt offline."""


@receipts.command("keygen")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the private key to this file (readable by you only) instead of standard output.")
@fail_cleanly
def keygen(out: str | None) -> None:
    """Make an Ed25519 key for [receipts] signing_key (PEM); its public JWK and kid go to stderr."""
    import json

    from orchestrator.proof.receipt_keys import new_key

    pem, jwk = new_key()
    if out is None:
        click.echo(pem, nl=False)
    else:
        path = Path(out)
        if path.exists():
            raise click.ClickException(f"{out} exists: refusing to overwrite a key (choose another --out)")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(pem)
        click.echo(f"private key written to {out}; set [receipts] signing_key = \"{out}\" "
                   "(or RECONSENT_RECEIPTS__SIGNING_KEY), and move the old key to previous_keys", err=True)
    click.echo(f"kid {jwk['kid']}; public key: {json.dumps(jwk)}", err=True)


@receipts.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--jwks", "jwks_source", default=None,
              help="JWK Set file or URL (e.g. https://…/.well-known/jwks.json); default: this instance's keys.")
@click.pass_context
@fail_cleanly
def verify(ctx: click.Context, file: str, jwks_source: str | None) -> None:
    """Check a consent receipt's signature offline; exit 0 and a summary when genuine, 1 when not."""
    from orchestrator.proof.receipt_keys import jwks
    from orchestrator.proof.receipts import load_jwks, verify_receipt

    key_set = load_jwks(jwks_source) if jwks_source else jwks(get_rt(ctx, need_db=False).config)
    claims, kid = verify_receipt(Path(file).read_bytes(), key_set)
    controllers = ", ".join(str(c.get("piiController")) for c in claims.get("piiControllers", []))
    click.echo(f"valid: receipt {claims.get('consentReceiptID')} of {claims.get('consentTime')}, "
               f"signed by key {kid} for {controllers}")
    for service in claims.get("services", []):
        for p in service.get("purposes", []):
            click.echo(f"  {service.get('service')} {p.get('purpose')}: {p.get('action')}  event {p.get('eventHash')}")
    wording = claims.get("wording") or {}
    click.echo(f"  wording {wording.get('name')} ({wording.get('locale')}) {wording.get('hash')}")
