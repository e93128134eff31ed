"""The console's template editor: read a template's wording for one locale, check a draft, preview
it for an invented contact, and save it as a new version.

A save goes through the same door as ``reconsent templates import``
(:func:`orchestrator.rendering.template_store.store_templates`): the same checks
(:func:`~orchestrator.rendering.template_store.problems_in_template`), the same versions (a part's
row is never rewritten, unchanged wording adds nothing), the same pinning (a campaign keeps the
version it was created with; the outbox and the ledger record the version each person saw).

The first save of a shipped name also stores the shipped wording of its other locales, unchanged:
an imported name replaces the shipped template in every locale, so editing the French wording of
``reconsent`` must not leave its English wording behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.domain.model import Channel
from orchestrator.domain.segments import SegmentCount, count_segments
from orchestrator.errors import InputError, ReconsentError
from orchestrator.rendering.brand import read_brand
from orchestrator.rendering.checks import describe_error, documented_variables, sample_contexts
from orchestrator.rendering.markdown import markdown_body, markdown_of
from orchestrator.rendering.messages import EMAIL_PARTS, PARTS, SMS_PARTS, MessageRenderer, wording_version
from orchestrator.rendering.template_store import (
    LOCALE,
    NAME,
    FolderTemplate,
    ImportReport,
    TemplateListing,
    current_sources,
    list_templates,
    problems_in_template,
    shipped_names,
    store_templates,
)

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime

#: the editor's fields, by the part they write
FIELDS = {"subject.txt": "subject", "body.txt": "body_txt", "body.html": "body_html", "sms.txt": "sms"}
_PART = re.compile(r"(subject\.txt|body\.txt|body\.html|sms\.txt)")
_LINE = re.compile(r"\bline (\d+)\b")


@dataclass(frozen=True)
class Draft:
    """What the editor holds for one template and locale. ``markdown`` set: the HTML body is made
    from it (:func:`orchestrator.rendering.markdown.markdown_body`); else ``body_html`` is raw HTML."""

    name: str
    locale: str
    subject: str = ""
    body_txt: str = ""
    body_html: str = ""
    markdown: str | None = None
    sms: str = ""

    def parts(self) -> dict[str, str]:
        """{part: source} of the channels the draft fills (an empty email leaves email out)."""
        html = markdown_body(self.markdown, self.locale) if self.markdown is not None else self.body_html
        email = {"subject.txt": self.subject, "body.txt": self.body_txt, "body.html": html}
        if self.markdown is not None and not self.markdown.strip():
            email["body.html"] = ""
        out = {part: _clean(text) for part, text in email.items()
               if any(v.strip() for v in (self.subject, self.body_txt, self.body_html, self.markdown or ""))}
        if self.sms.strip():
            out["sms.txt"] = _clean(self.sms)
        return out


@dataclass(frozen=True)
class Problem:
    """One problem of a draft: the editor ``field`` it belongs to (``name`` for the whole
    template), its ``line`` when known, and ``text``: what is wrong, in English, without the place."""

    field: str
    text: str
    line: int | None = None


@dataclass
class Preview:
    """A draft rendered for the first invented contact; ``error`` when it cannot be."""

    subject: str | None = None
    html: str | None = None
    text: str | None = None
    sms: str | None = None
    segments: SegmentCount | None = None
    errors: dict[str, str] = field(default_factory=dict)


def draft_for(rt: Runtime, name: str, locale: str) -> Draft:
    """The wording new campaigns would use: the current stored version, else the shipped files,
    else empty (a new template)."""
    parts = current_sources(rt, name, locale)
    html = parts.get("body.html", "")
    markdown = markdown_of(html)
    return Draft(name, locale, subject=parts.get("subject.txt", ""), body_txt=parts.get("body.txt", ""),
                 body_html="" if markdown is not None else html, markdown=markdown, sms=parts.get("sms.txt", ""))


def variables(rt: Runtime, locale: str) -> list[str]:
    """The variables a template may use (docs/templates.md), as ``{{ name }}`` insertions take them."""
    return documented_variables(sample_contexts(rt.config, locale, rt.clock.now())[0])


def check_draft(rt: Runtime, draft: Draft) -> list[Problem]:
    """Every problem of the draft (none: it can be saved), each placed on its field."""
    problems = _shape_problems(draft)
    if problems:
        return problems
    template = _as_template(draft, current_sources(rt, draft.name, draft.locale))
    lines = problems_in_template(template, scratch_renderer(rt), rt.config, rt.clock.now())
    return [_place(line, template) for line in lines]


def save_draft(rt: Runtime, draft: Draft) -> ImportReport:
    """Check the draft and store it as a new version (InputError listing the problems otherwise)."""
    problems = check_draft(rt, draft)
    if problems:
        raise InputError("; ".join(f"{p.field}: {p.text}" for p in problems))
    templates = [_as_template(draft, current_sources(rt, draft.name, draft.locale))]
    if draft.name in shipped_names(rt.renderer) and not any(
            w.source == "imported" for w in list_templates(rt) if w.name == draft.name):
        for locale in rt.renderer.available_locales(draft.name):
            if locale != draft.locale:
                parts = current_sources(rt, draft.name, locale)
                templates.append(FolderTemplate(draft.name, locale, Path(draft.name) / locale, parts))
    return store_templates(rt, templates, f"console:{draft.name}/{draft.locale}")


def preview_draft(rt: Runtime, draft: Draft) -> Preview:
    """The draft rendered for an invented contact (nothing stored)."""
    preview = Preview()
    parts = draft.parts()
    renderer = scratch_renderer(rt)
    sample = sample_contexts(rt.config, draft.locale, rt.clock.now(), read_brand(rt))[0]
    for channel in Channel:
        if not all(part in parts for part in PARTS[channel]):
            continue
        version = wording_version((part, parts[part].encode("utf-8")) for part in PARTS[channel])
        try:
            renderer.load(draft.name, draft.locale, version, channel, sources=parts)
            message = renderer.render_full(draft.name, channel, draft.locale, sample, version)
        except Exception as exc:
            key = "email" if channel is Channel.EMAIL else "sms"
            preview.errors[key] = describe_error(exc, draft.name, channel.value, draft.locale)
            continue
        if channel is Channel.EMAIL:
            preview.subject, preview.html, preview.text = message.subject, message.html, message.text
        else:
            preview.sms, preview.segments = message.text, count_segments(message.text)
    return preview


def scratch_renderer(rt: Runtime) -> MessageRenderer:
    """A renderer for drafts, dropped after use: the runtime's renderer keeps every version it
    loads for the life of the process, and a draft (one per preview while typing) is not one."""
    return MessageRenderer(rt.renderer.root.parent, fetch=rt.renderer.fetch)


def versions(rt: Runtime, name: str, locale: str) -> list[TemplateListing]:
    """Every version of one template and locale, newest first (the shipped one last)."""
    return [w for w in list_templates(rt, all_versions=True) if w.name == name and w.locale == locale]


def _shape_problems(draft: Draft) -> list[Problem]:
    problems = []
    if not NAME.fullmatch(draft.name):
        problems.append(Problem("name", "a template name is lowercase letters, digits, '-' and '_' (at most 64)"))
    if not LOCALE.fullmatch(draft.locale):
        problems.append(Problem("name", "a language is a 2- or 3-letter code (fr, en)"))
    parts = draft.parts()
    if not parts:
        problems.append(Problem("name", "empty: write an email (subject, text, HTML) or an SMS"))
    for part in EMAIL_PARTS:
        if parts and any(p in parts for p in EMAIL_PARTS) and not parts.get(part, "").strip():
            problems.append(Problem(FIELDS[part], "empty: an email needs a subject, a text body and an HTML body"))
    return problems


def _as_template(draft: Draft, current: dict[str, str] | None = None) -> FolderTemplate:
    """The draft as a template to check and store. A part that differs from the ``current``
    wording only by its final line breaks (a browser's text field drops the subject's) keeps
    the current text, so an unchanged wording stays the same version."""
    parts = draft.parts()
    for part, text in (current or {}).items():
        if part in parts and parts[part].rstrip("\n") == text.rstrip("\n"):
            parts[part] = text
    return FolderTemplate(draft.name, draft.locale, Path(draft.name) / draft.locale, parts)


def _place(line: str, template: FolderTemplate) -> Problem:
    """A problem line of the checks, on its field: ``…, fr/sms.txt: no STOP mention`` → sms."""
    head = str(template.folder)
    text = line[len(head) + 2:] if line.startswith(head + ": ") else line
    part = _PART.search(text)
    name = part.group(1) if part else None
    if name is None:
        return Problem("name", text)
    # the text after the place: "template 't', fr/sms.txt line 3: what" or "t/fr/sms.txt: line 3: what"
    rest = text[part.end():] if part else text
    line_no = _LINE.match(rest.lstrip(" :"))
    what = rest.split(": ", 1)[1] if ": " in rest else rest
    if line_no and what.startswith(f"line {line_no.group(1)}: "):
        what = what.split(": ", 1)[1]
    if name in SMS_PARTS and "segments" in what:
        line_no = None
    return Problem(FIELDS[name], what.strip(), int(line_no.group(1)) if line_no else None)


def _clean(text: str) -> str:
    """Text as a browser posts it (CRLF) stored as the files are (LF, one final newline or none)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


__all__ = ["FIELDS", "Draft", "Preview", "Problem", "ReconsentError", "check_draft", "draft_for", "preview_draft",
           "save_draft", "variables", "versions"]
