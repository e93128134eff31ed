"""The contacts import in the console: the CLI's import (same validation, line numbers, warnings), its
messages in the console's language, and a mapping step when the file's header is not understood.

The uploaded file waits for the mapping step in a private temporary folder under a random name (the
name the browser gave is never used as a path); it is removed once imported, and any left behind
after an hour is removed by the next upload.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import Role
from orchestrator.contacts.columns import CONTACT_COLUMNS, HeaderProblem, detected
from orchestrator.contacts.reader import ContactsFile
from orchestrator.contacts.service import COLUMNS, FileProblem, ImportReport, import_contacts
from orchestrator.errors import ReconsentError
from preference_centre.admin.i18n import gettext_for
from preference_centre.admin.web import (
    UNUSABLE_NAME,
    client_ip,
    form_of,
    guard,
    lang_of,
    operator_of,
    render,
    rt_of,
    upload_bytes,
    usable_name,
)

UPLOADS = Path(tempfile.gettempdir()) / "reconsent-console-uploads"
KEEP_SECONDS = 3600
_TOKEN = re.compile(r"[0-9a-f]{32}\Z")
SAMPLE_ROWS = 5
GONE = "This file is no longer here (more than an hour old, or already imported): choose it again."


def column_help() -> list[tuple[str, tuple[str, ...]]]:
    """Each field with a few of the header names it is also found under (the page lists them in full)."""
    return [(c.name, c.aliases[:4]) for c in CONTACT_COLUMNS]


def page(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("report", None)
    return render(request, "contacts.html", status_code=status_code, columns=COLUMNS, column_help=column_help(),
                  **context)


def problem_text(request: Request, exc: ReconsentError) -> str:
    """The error in the console's language: a file problem is translated and keeps its line number."""
    _ = gettext_for(lang_of(request))
    if isinstance(exc, FileProblem):
        return _("Line %(line)s:", line=exc.line) + " " + _(exc.message, **exc.params)
    return str(exc)


def _stash(content: bytes) -> str:
    UPLOADS.mkdir(mode=0o700, exist_ok=True)
    cutoff = time.time() - KEEP_SECONDS
    for old in UPLOADS.glob("*.csv"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass
    token = secrets.token_hex(16)
    fd = os.open(UPLOADS / f"{token}.csv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    return token


def _stashed(token: str) -> Path | None:
    path = UPLOADS / f"{token}.csv"
    return path if _TOKEN.match(token) and path.is_file() else None


def _mapping_step(request: Request, token: str, path: Path, problem: str, chosen: dict[str, str]) -> Response:
    source = ContactsFile(path)
    header, rows = source.sample(SAMPLE_ROWS)
    proposed = {**detected(header), **chosen}
    width = max([len(header), *(len(r) for r in rows)])
    return page(request, status_code=400, problem=problem, mapping={
        "token": token, "header": [h.strip() for h in header] + [""] * (width - len(header)),
        "rows": [r + [""] * (width - len(r)) for r in rows], "proposed": proposed,
        "encoding": source.format.label, "delimiter": source.format.delimiter_name,
        "choices": [h.strip() for h in header if h.strip()],
    })


async def _run(request: Request, token: str, path: Path, mapping: dict[str, str]) -> Response:
    rt = rt_of(request)
    try:
        report: ImportReport = import_contacts(rt, path, mapping=mapping)
    except HeaderProblem as exc:  # the mapping step: the file waits for the operator's choice
        return _mapping_step(request, token, path, problem_text(request, exc), mapping)
    except ReconsentError as exc:
        path.unlink(missing_ok=True)
        accounts.record_action(rt, operator_of(request), "contacts.import", outcome="refused", ip=client_ip(request))
        return page(request, status_code=400, problem=problem_text(request, exc).replace(str(path), "CSV"))
    path.unlink(missing_ok=True)
    accounts.record_action(rt, operator_of(request), "contacts.import", ip=client_ip(request), read=report.read,
                           created=report.created, updated=report.updated, rejected=len(report.rejects),
                           warnings=len(report.warnings))
    return page(request, report=report)


@guard(role=Role.ADMIN)
async def contacts_import(request: Request) -> Response:
    """Import the uploaded file; a header that does not name the columns leads to the mapping step."""
    upload = await upload_bytes(await form_of(request), "file")
    if upload is None:
        _ = gettext_for(lang_of(request))
        return page(request, status_code=400, problem=_("Choose a CSV file to import."))
    if usable_name(upload[0]) is None:
        _ = gettext_for(lang_of(request))
        return page(request, status_code=400, problem=_(UNUSABLE_NAME))
    token = _stash(upload[1])
    path = _stashed(token)
    assert path is not None
    return await _run(request, token, path, {})


@guard(role=Role.ADMIN)
async def contacts_import_mapped(request: Request) -> Response:
    """The mapping step's answer: ``map_<field>`` = the file's column for that field."""
    form = await form_of(request)
    path = _stashed(str(form.get("upload") or ""))
    if path is None:
        _ = gettext_for(lang_of(request))
        return page(request, status_code=400, problem=_(GONE))
    mapping = {f: str(form.get(f"map_{f}") or "").strip() for f in COLUMNS}
    return await _run(request, path.stem, path, {f: c for f, c in mapping.items() if c})
