"""Imported message templates: ``reconsent templates import DIR`` and ``templates list`` (SPEC §11).

A company's own wording, without editing the package. ``DIR/<name>/<locale>/<part>`` has the layout
of the shipped templates (parts ``subject.txt``, ``body.txt``, ``body.html`` for email, ``sms.txt``
for SMS). Rules:

- **Checked whole, stored whole.** Every problem of the folder is reported, one line each
  (:func:`read_template_folder`); one problem and nothing is stored. Otherwise one transaction.
- **Versions kept.** A part's row is never rewritten. The version of a template's wording, per locale
  and channel, is computed as the shipped templates' (:func:`orchestrator.rendering.messages.wording_version`),
  so it is the ``template_version`` the outbox records for each message, and the exact sources of
  any version ever sent stay in the ``message_template`` table. Importing changed wording adds a
  version; unchanged wording adds nothing; wording imported before becomes current again.
- **An imported name replaces the shipped template of that name**, in every locale: a campaign step
  naming it renders only imported wording (a locale the import lacks is refused at creation, never
  filled in from the shipped template). Other names stay the shipped ones. ``templates list`` shows
  which is which.
- **A campaign pins its wording when it is created** (:func:`pin_wordings`, stored in the plan as
  ``wordings``): preview, launch and every dispatcher of the installation render exactly those
  versions, read once per process from the database (a version never changes, so nothing is ever
  stale). A later import changes the campaigns created after it, not the ones already created.
  Messages outside campaigns (the fresh link of the preference centre) render the current version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, nodes
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from orchestrator.config import Config
from orchestrator.domain.campaign import CampaignPlan, wording_key
from orchestrator.domain.model import Channel
from orchestrator.errors import InputError, TemplateProblems
from orchestrator.rendering.compiled import template_loads
from orchestrator.rendering.messages import EMAIL_PARTS, PARTS, SMS_PARTS, MessageRenderer, wording_version
from orchestrator.store.db import session_scope
from orchestrator.store.models import MessageTemplate

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime

ALL_PARTS = EMAIL_PARTS + SMS_PARTS
#: the one layout every imported HTML body may extend (the shipped one)
LAYOUT = "_layout.html"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
LOCALE = re.compile(r"[a-z]{2,3}")
_LAYOUT_HELP = "DIR/<name>/<locale>/{" + ",".join(ALL_PARTS) + "}"


class _T:
    """The columns of ``message_template``, typed for queries."""

    id = col(MessageTemplate.id)
    name = col(MessageTemplate.name)
    locale = col(MessageTemplate.locale)
    part = col(MessageTemplate.part)
    source = col(MessageTemplate.source)
    version = col(MessageTemplate.version)
    revision = col(MessageTemplate.revision)
    imported_at = col(MessageTemplate.imported_at)


@dataclass(frozen=True)
class FolderTemplate:
    """One locale of one template read from an import folder: ``parts`` maps part name → source."""

    name: str
    locale: str
    folder: Path
    parts: dict[str, str]

    def channels(self) -> list[Channel]:
        return [c for c in Channel if all(part in self.parts for part in PARTS[c])]

    def version(self, channel: Channel) -> str:
        return wording_version((part, self.parts[part].encode("utf-8")) for part in PARTS[channel])


# -- reading and checking a folder ----------------------------------------------------------------------
def read_template_folder(folder: Path, renderer: MessageRenderer, config: Config,
                         now: datetime) -> tuple[list[FolderTemplate], list[str]]:
    """The templates of an import folder, and every problem found in it (one line each, naming the
    file and, for template syntax, the line). The import stores nothing unless the list is empty.

    The layout and encoding are read here; what a template says is checked by
    :func:`problems_in_template`, the one place where template checks run.
    """
    found, problems = _read_layout(folder, renderer)
    for template in found:
        problems += problems_in_template(template, renderer, config, now)
    return found, sorted(problems)


def problems_in_template(template: FolderTemplate, renderer: MessageRenderer, config: Config,
                         now: datetime) -> list[str]:
    """What is wrong with one locale of an imported template, one line per problem.

    First what only an import can get wrong: Jinja syntax (with its line), and no template loaded
    but the shipped ``_layout.html`` (the wording version covers the parts only). Then the checks
    every campaign's templates pass (:func:`orchestrator.rendering.checks.check_template`: documented
    variables only, mandatory content, SMS segment budget), on the sources as they would be stored:
    the import, campaign creation and launch refuse the same things.
    """
    problems = []
    for part, source in template.parts.items():
        where = template.folder / part
        try:
            tree = renderer.env.parse(source, name=part)
        except TemplateSyntaxError as exc:
            problems.append(f"{where}: line {exc.lineno}: {exc.message}")
            continue
        for node in template_loads(tree):
            target = node.template
            if not (isinstance(node, nodes.Extends) and isinstance(target, nodes.Const) and target.value == LAYOUT):
                problems.append(f"{where}: line {node.lineno}: only {{% extends \"{LAYOUT}\" %}} (the shipped "
                                "layout) may load another template")
    if problems:
        return problems
    from orchestrator.rendering.checks import check_template

    for channel in template.channels():
        version = template.version(channel)
        renderer.load(template.name, template.locale, version, channel, sources=template.parts)

        def pinned(_template: str, _locale: str, _channel: Channel, version: str = version) -> str:
            return version

        problems += [f"{template.folder}: {problem}" for problem in
                     check_template(renderer, template.name, channel, [template.locale], config, now=now,
                                    wording=pinned)]
    return problems


def _read_layout(folder: Path, renderer: MessageRenderer) -> tuple[list[FolderTemplate], list[str]]:
    """Names, locales, part names, complete channels, UTF-8 text. Hidden files (``.*``) are skipped."""
    found: list[FolderTemplate] = []
    problems: list[str] = []
    for entry in _listing(folder):
        if entry.name == LAYOUT:
            if not _same_file(entry, renderer.root / LAYOUT):  # else an unchanged copy: skipped
                problems.append(f"{entry}: layouts are not imported (HTML bodies extend the shipped {LAYOUT}): "
                                "remove this file or undo its changes")
            continue
        if not entry.is_dir():
            problems.append(f"{entry}: not a template folder (expected {_LAYOUT_HELP})")
            continue
        if not NAME.fullmatch(entry.name):
            problems.append(f"{entry}: a template name is lowercase letters, digits, '-' and '_' (at most 64)")
            continue
        locales = _listing(entry)
        if not locales:
            problems.append(f"{entry}: no locale folder (expected {entry}/<locale>/<part>)")
        for locale in locales:
            if not locale.is_dir() or not LOCALE.fullmatch(locale.name):
                problems.append(f"{locale}: not a locale folder (a 2- or 3-letter language code: fr, en)")
                continue
            template, more = _read_locale(entry.name, locale)
            problems += more
            if template is not None:
                found.append(template)
    if not found and not problems:
        problems.append(f"{folder}: no templates (expected {_LAYOUT_HELP})")
    return found, problems


def _read_locale(name: str, folder: Path) -> tuple[FolderTemplate | None, list[str]]:
    parts: dict[str, str] = {}
    seen: set[str] = set()
    problems = []
    for path in _listing(folder):
        if path.name not in ALL_PARTS or not path.is_file():
            problems.append(f"{path}: unknown part (expected {', '.join(ALL_PARTS)})")
            continue
        seen.add(path.name)
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            problems.append(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})")
            continue
        if not text.strip():
            problems.append(f"{path}: empty")
            continue
        parts[path.name] = text
    email = [part for part in EMAIL_PARTS if part in seen]
    if email and len(email) < len(EMAIL_PARTS):
        missing = [part for part in EMAIL_PARTS if part not in seen]
        problems.append(f"{folder}: an email template needs {', '.join(EMAIL_PARTS)}; missing {', '.join(missing)}")
    if not seen and not problems:
        problems.append(f"{folder}: no parts (expected {', '.join(ALL_PARTS)})")
    return (FolderTemplate(name, folder.name, folder, parts) if parts else None), problems


def _listing(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _same_file(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


# -- importing ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Imported:
    """One wording of an import: ``outcome`` new (a new version), unchanged, or restored (a version
    imported before, current again)."""

    name: str
    locale: str
    channel: Channel
    version: str
    outcome: str


@dataclass
class ImportReport:
    wordings: list[Imported] = field(default_factory=list)
    #: imported names that replace a shipped template of the same name
    replacing: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{w.name}\t{w.locale}\t{w.channel.value}\t{w.version}\t{w.outcome}" for w in self.wordings]
        out += [f"{name}: replaces the shipped template {name!r} (in every locale) for campaigns created from now on"
                for name in self.replacing]
        counts = {o: sum(w.outcome == o for w in self.wordings) for o in ("new", "restored", "unchanged")}
        names = len({w.name for w in self.wordings})
        out.append(f"imported {names} template(s): {counts['new']} new version(s), {counts['restored']} restored, "
                   f"{counts['unchanged']} unchanged")
        return out


def import_templates(rt: Runtime, folder: Path) -> ImportReport:
    """Check ``folder`` and store its templates in one transaction; nothing is stored when anything
    is wrong (:class:`TemplateProblems` lists every problem)."""
    templates, problems = read_template_folder(folder, rt.renderer, rt.config, rt.clock.now())
    if problems:
        raise TemplateProblems(problems)
    return store_templates(rt, templates, str(folder))


def store_templates(rt: Runtime, templates: list[FolderTemplate], where: str) -> ImportReport:
    """Store checked templates in one transaction (the import's and the console editor's writer):
    a new version for changed wording, nothing for unchanged wording, an older version made
    current again. ``where`` names the source in the error when another writer raced this one."""
    now = rt.clock.now()
    report = ImportReport(replacing=sorted({t.name for t in templates} & set(shipped_names(rt.renderer))))
    try:
        with session_scope(rt.engine) as session:
            conn = session.connection()
            names = {t.name for t in templates}
            revision = int(conn.execute(select(func.coalesce(func.max(_T.revision), 0))).scalar_one()) + 1
            current = _current(conn, names)
            known = {tuple(row) for row in conn.execute(
                select(_T.name, _T.locale, _T.version).where(_T.name.in_(names)))}
            for template in templates:
                for channel in template.channels():
                    version = template.version(channel)
                    key = (template.name, template.locale, version)
                    if current.get(template.name, {}).get((template.locale, channel)) == version:
                        outcome = "unchanged"
                    elif key in known:
                        outcome = "restored"
                        conn.execute(update(MessageTemplate).where(
                            _T.name == template.name, _T.locale == template.locale, _T.version == version,
                        ).values(revision=revision, imported_at=now))
                    else:
                        outcome = "new"
                        session.add_all([MessageTemplate(
                            name=template.name, locale=template.locale, part=part, source=template.parts[part],
                            version=version, revision=revision, created_at=now, imported_at=now,
                        ) for part in PARTS[channel]])
                    report.wordings.append(Imported(template.name, template.locale, channel, version, outcome))
    except IntegrityError:
        raise InputError(f"{where}: another import stored the same templates meanwhile; nothing was "
                         "stored by this one: run it again") from None
    return report


# -- which wording is sent -------------------------------------------------------------------------------
def _current(conn: Connection, names: Iterable[str] | None = None) -> dict[str, dict[tuple[str, Channel], str]]:
    """Imported name → {(locale, channel): current version} (the names given, or all)."""
    firsts = {PARTS[c][0]: c for c in Channel}  # every part of a channel has the channel's version
    query = select(_T.name, _T.locale, _T.part, _T.version).where(_T.part.in_(firsts))
    if names is not None:
        query = query.where(_T.name.in_(list(names)))
    out: dict[str, dict[tuple[str, Channel], str]] = {}
    for name, locale, part, version in conn.execute(query.order_by(_T.revision, _T.id)):
        out.setdefault(name, {})[(locale, firsts[part])] = version  # the newest comes last
    return out


def pin_wordings(rt: Runtime, plan: CampaignPlan) -> CampaignPlan:
    """The plan with the current version of each imported template it sends, per locale and channel.

    A step whose template name was never imported stays the shipped template (no pin). Refused
    when an imported template lacks a locale or channel of the plan: an imported name never falls
    back to shipped wording.
    """
    with rt.engine.connect() as conn:
        current = _current(conn, {step.template for step in (*plan.steps, *plan.notice_steps())})
    pins = {}
    for step in (*plan.steps, *plan.notice_steps()):
        imported = current.get(step.template)
        if imported is None:
            continue
        for locale in plan.locales:
            version = imported.get((locale, step.channel))
            if version is None:
                have = sorted(loc for loc, channel in imported if channel is step.channel)
                raise InputError(
                    f"steps[{step.index}] ({step.channel.value}, template {step.template!r}, {locale}): the "
                    f"imported template {step.template!r} has no {locale} {step.channel.value} wording (it has: "
                    f"{', '.join(have) or 'none'}); an imported name replaces the shipped template: import "
                    f"{locale} too, or leave it out of 'locales'")
            pins[wording_key(step.template, locale, step.channel)] = version
    return replace(plan, wordings=pins)


def load_pinned(conn: Connection, renderer: MessageRenderer, plan: CampaignPlan) -> None:
    """Give ``renderer`` the sources of the versions ``plan`` pins, through ``conn`` (a dispatcher
    reads them with the campaign, off its event loop). A version it cannot find is left to the
    render, which refuses it."""
    for key, version in plan.wordings.items():
        template, locale, channel = key.rsplit("/", 2)
        sources = _sources(conn, template, locale, version)
        if sources:
            renderer.load(template, locale, version, Channel(channel), sources)


def wording_now(rt: Runtime, template: str, channel: Channel, wanted: str | None,
                default: str = "fr") -> tuple[str, str | None]:
    """The locale and version a message outside any campaign renders now: the current imported
    version when the name was imported (in one of its locales), else the shipped template
    (version None). ``wanted`` when the template has it, else ``default``, else its first locale."""
    with rt.engine.connect() as conn:
        imported = _current(conn, [template]).get(template)
    if imported is None:
        locales = rt.renderer.available_locales(template)
        return (wanted if wanted in locales else default), None
    versions = {locale: version for (locale, c), version in imported.items() if c is channel}
    if not versions:
        raise InputError(f"template {template!r} (imported) has no {channel.value} wording")
    locale = wanted if wanted in versions else default if default in versions else min(versions)
    return locale, versions[locale]


def fetch_wording(engine: Engine, template: str, locale: str, version: str) -> dict[str, str] | None:
    """{part: source} of one stored version, or None (the renderer's ``fetch``; also the proof: the
    exact wording behind an outbox row's ``template_version``)."""
    with engine.connect() as conn:
        return _sources(conn, template, locale, version)


def current_sources(rt: Runtime, template: str, locale: str) -> dict[str, str]:
    """{part: source} new campaigns would use for one template and locale: the current stored
    version of each channel when the name was imported, else the shipped files, else nothing."""
    if not (NAME.fullmatch(template) and LOCALE.fullmatch(locale)):
        return {}
    with rt.engine.connect() as conn:
        imported = _current(conn, [template]).get(template)
        if imported is not None:
            out: dict[str, str] = {}
            for (loc, _channel), version in imported.items():
                if loc == locale:
                    out.update(_sources(conn, template, locale, version) or {})
            return out
    folder = rt.renderer.root / template / locale
    if not folder.is_dir():
        return {}
    return {part: (folder / part).read_text(encoding="utf-8") for part in ALL_PARTS if (folder / part).is_file()}


def _sources(conn: Connection, template: str, locale: str, version: str) -> dict[str, str] | None:
    rows = conn.execute(select(_T.part, _T.source).where(
        _T.name == template, _T.locale == locale, _T.version == version)).all()
    return {part: source for part, source in rows} or None


# -- listing --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TemplateListing:
    """One wording: ``state`` current (what new campaigns use), replaced (a shipped template whose
    name was imported), old (an imported version no longer current)."""

    name: str
    locale: str
    channel: Channel
    version: str
    source: str  # shipped | imported
    state: str
    imported_at: datetime | None = None
    revision: int | None = None

    def line(self) -> str:
        when = self.imported_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.imported_at else "-"
        return (f"{self.name}\t{self.locale}\t{self.channel.value}\t{self.version}\t{self.source}\t{self.state}\t"
                f"{when}")


LISTING_HEADER = "name\tlocale\tchannel\tversion\tsource\tstate\timported_at"


def shipped_names(renderer: MessageRenderer) -> list[str]:
    root = renderer.root
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def template_names(rt: Runtime) -> list[str]:
    """Every name a campaign step can use: shipped and imported."""
    with rt.engine.connect() as conn:
        imported = set(conn.execute(select(_T.name).distinct()).scalars())
    return sorted(imported | set(shipped_names(rt.renderer)))


def list_templates(rt: Runtime, *, all_versions: bool = False) -> list[TemplateListing]:
    """Every wording by name, locale and channel: the shipped ones, the current imported ones and,
    with ``all_versions``, the imported versions no longer current."""
    renderer = rt.renderer
    firsts = [PARTS[c][0] for c in Channel]
    with rt.engine.connect() as conn:
        current = _current(conn)
        rows: list[Any] = list(conn.execute(
            select(_T.name, _T.locale, _T.part, _T.version, _T.revision, _T.imported_at)
            .where(_T.part.in_(firsts)).order_by(_T.revision.desc(), _T.id.desc())))
    out = []
    for name, locale, part, version, revision, imported_at in rows:
        channel = Channel.EMAIL if part == EMAIL_PARTS[0] else Channel.SMS
        state = "current" if current[name].get((locale, channel)) == version else "old"
        if state == "current" or all_versions:
            out.append(TemplateListing(name, locale, channel, version, "imported", state, imported_at, revision))
    for name in shipped_names(renderer):
        for locale in renderer.available_locales(name):
            for channel in Channel:
                if all((renderer.root / name / locale / part).is_file() for part in PARTS[channel]):
                    out.append(TemplateListing(name, locale, channel, renderer.version(name, channel, locale),
                                               "shipped", "replaced" if name in current else "current"))
    order = {"current": 0, "replaced": 1, "old": 2}
    return sorted(out, key=lambda w: (w.name, w.locale, w.channel.value, order[w.state],
                                      -(w.revision or 0)))
