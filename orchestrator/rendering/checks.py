"""Template checks: a broken template never reaches the queue.

A campaign's templates are checked when it is created (file or console) and again at launch, by
:func:`check_template`, for each template and channel of its steps, in every locale the campaign
may use (``locales``; a contact in any other language gets ``default_locale``, itself one of them):

- every part is there (email: ``subject.txt``, ``body.txt``, ``body.html``; SMS: ``sms.txt``);
- Jinja syntax (and unknown filters or tests), in the part and in what it extends or includes;
- only documented variables (:func:`render_context`, listed in docs/templates.md): a name or a
  ``sender.…`` key the renderer does not supply is refused even inside a branch no sample takes;
- every part rendered (the full Jinja render, StrictUndefined) for each invented contact of
  :func:`sample_contexts` (with a first name, without one), without error and not empty;
- the mandatory content [R6, E1]: email bodies (text and HTML) carry the preference link, the
  unsubscribe link, the sender's name and postal address; an SMS carries a STOP mention and a link;
- the SMS segment budget [S6] (``sms.segment_budget``).

Each problem is one line naming the template, locale, part and (where there is one) line:

    template 'reminder', en/body.txt line 3: undefined variable 'frist_name'
    template 'reconsent', fr/body.html (_layout.html line 12): unexpected '}'

A message that still cannot be built at send time is described the same way
(:func:`describe_error`), recorded as a failure of its row and never retried in that run
(orchestrator.delivery.worker).
"""

from __future__ import annotations

import html
import re
import traceback
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import PurePath
from typing import Any

from jinja2 import Environment, TemplateNotFound, TemplateSyntaxError, meta, nodes

from orchestrator.config import Config, SenderConfig
from orchestrator.domain.model import Channel
from orchestrator.domain.segments import count_segments
from orchestrator.errors import ReconsentError
from orchestrator.ops.logs import scrub_text
from orchestrator.rendering.brand import DEFAULT_COLOUR, Brand
from orchestrator.rendering.compiled import template_source
from orchestrator.rendering.messages import MessageRenderer, RenderedMessage

#: the start of the reason recorded on an outbox row whose message could not be built
BUILD_FAILURE = "cannot build message"
#: where Jinja rewrites a traceback, the frames of template code carry these names
_TEMPLATE_FRAMES = re.compile(r"^(top-level template code|block '.*'|macro '.*'|template)$")


def render_context(sender: SenderConfig, *, first_name: str | None, page_url: str, unsubscribe_url: str,
                   short_url: str, deadline: Any, locale: str, brand: Brand | None = None,
                   base_url: str = "") -> dict[str, Any]:
    """The variables every message template is rendered with — and the only ones it may use
    (docs/templates.md lists them; a test keeps the two equal). ``brand``: the console's brand
    settings (sender name, privacy URL, colour, logo), else the config's and the shipped ones."""
    return {
        "first_name": first_name,
        "sender": {"name": brand.sender_name if brand else sender.name, "postal_address": sender.postal_address,
                   "email": sender.email_from, "stop_number": sender.stop_number,
                   "privacy_url": brand.privacy_url if brand else sender.privacy_url},
        "brand": {"colour": brand.colour if brand else DEFAULT_COLOUR,
                  "logo_url": (brand.logo_src(base_url) if brand else None) or ""},
        "page_url": page_url,
        "unsubscribe_url": unsubscribe_url,
        "short_url": short_url,
        "deadline": deadline,
        "locale": locale,
    }


def sample_contexts(config: Config, locale: str, now: datetime, brand: Brand | None = None) -> list[dict[str, Any]]:
    """The invented contacts templates are checked and previewed with: one with a first name typical
    of the locale, one without; links of realistic length on the configured public URL."""
    base = config.public.base_url.rstrip("/")
    token = "x" * 64

    def one(first_name: str | None) -> dict[str, Any]:
        return render_context(config.sender, first_name=first_name, page_url=f"{base}/p/{token}",
                              unsubscribe_url=f"{base}/u/{token}", short_url=f"{base}/s/{'x' * 11}",
                              deadline=now + timedelta(days=30), locale=locale, brand=brand, base_url=base)

    return [one("Camille" if locale == "fr" else "Alex"), one(None)]


def documented_variables(context: Mapping[str, Any]) -> list[str]:
    """The variable names of a context, dict values as ``name.key``.

    >>> documented_variables({"a": 1, "s": {"x": 1, "y": 2}})
    ['a', 's.x', 's.y']
    """
    return [f"{name}.{key}" if isinstance(value, Mapping) else name
            for name, value in context.items() for key in (value if isinstance(value, Mapping) else [None])]


#: which stored version of an imported template a campaign sends (None: the shipped template):
#: :meth:`orchestrator.domain.campaign.CampaignPlan.wording`
Wording = Callable[[str, str, Channel], str | None]


def check_template(renderer: MessageRenderer, template: str, channel: Channel, locales: Sequence[str],
                   config: Config, *, now: datetime, wording: Wording | None = None) -> list[str]:
    """Every problem of ``template`` for ``channel`` in these ``locales``, one line each (none: fine).

    ``wording`` names the stored version to check per locale (a campaign's pinned imports); the
    renderer must be able to load it (its ``fetch``, or sources given to ``renderer.load``)."""
    problems: list[str] = []
    for locale in locales:
        version = wording(template, locale, channel) if wording is not None else None
        if version is not None:
            try:
                renderer.load(template, locale, version, channel)
            except ReconsentError as exc:
                problems.append(_one_line(str(exc)))
                continue
        problems += _check_locale(renderer, template, channel, locale, config, now, version)
    return list(dict.fromkeys(problems))  # a layout's problem found through two parts is one problem


def describe_error(exc: BaseException, template: str, channel: str, locale: str) -> str:
    """One line for an exception raised while rendering ``template`` (no traceback, no address).

    >>> from jinja2 import TemplateSyntaxError
    >>> describe_error(TemplateSyntaxError("unexpected '}'", 3, "t/fr/sms.txt"), "t", Channel.SMS, "fr")
    "template 't', fr/sms.txt line 3: unexpected '}'"
    """
    if isinstance(exc, TemplateSyntaxError):
        where = _where(template, locale, exc.name if isinstance(exc.name, str) else exc.filename, exc.lineno)
        return f"template {template!r}, {where}: {_one_line(exc.message or str(exc))}"
    missing = exc if isinstance(exc, TemplateNotFound) else exc.__context__
    if isinstance(missing, TemplateNotFound):  # a part (or what it extends) gone since the check
        name = missing.name if isinstance(missing.name, str) else None
        return f"template {template!r}: missing {_where(template, locale, name, None)}"
    what = _one_line(str(exc))
    if isinstance(exc, ReconsentError) and what.startswith(f"template {template!r}"):
        return what  # the renderer's own words already name the template
    if type(exc).__name__ != "UndefinedError":
        what = f"{type(exc).__name__}: {what}" if what else type(exc).__name__
    name, line = _template_frame(exc)
    where = _where(template, locale, name, line) if name or line else f"{locale} ({channel})"
    return f"template {template!r}, {where}: {what}"


# -- one locale ---------------------------------------------------------------------------------------
def _check_locale(renderer: MessageRenderer, template: str, channel: Channel, locale: str, config: Config,
                  now: datetime, version: str | None = None) -> list[str]:
    env = renderer.env
    parts = renderer.parts(channel)
    missing = [part for part in parts if not _exists(env, _name(template, locale, part, version))]
    if missing:
        available = ", ".join(renderer.available_locales(template)) or "none"
        return [(f"template {template!r}: missing {', '.join(f'{locale}/{p}' for p in missing)} "
                 f"(available locales: {available}; add the part, or leave {locale!r} out of the campaign's "
                 f"locales: its contacts then get default_locale)")]
    samples = sample_contexts(config, locale, now)
    problems: list[str] = []
    for part in parts:
        problems += _static(env, template, locale, part, samples[0], version)
    if problems:
        return problems  # rendering would only repeat them
    rendered: list[RenderedMessage] = []
    for ctx in samples:
        try:
            rendered.append(renderer.render_full(template, channel, locale, ctx, version))
        except Exception as exc:
            return [describe_error(exc, template, channel, locale) + _for(ctx)]
    typical = _content(template, channel, locale, rendered[0], samples[0], config)
    problems += typical
    for ctx, message in zip(samples[1:], rendered[1:], strict=True):
        problems += [f"{p}{_for(ctx)}" for p in _content(template, channel, locale, message, ctx, config)
                     if p not in typical]
    if channel is Channel.SMS:
        problems += _segments(template, locale, rendered, config.sms.segment_budget)
    return problems


def _name(template: str, locale: str, part: str, version: str | None = None) -> str:
    """The loader's name of a part (as MessageRenderer loads it): ``t/fr/sms.txt``, or
    ``@<version>/t/fr/sms.txt`` for a stored version."""
    return f"{template}/{locale}/{part}" if version is None else f"@{version}/{template}/{locale}/{part}"


def _exists(env: Environment, name: str) -> bool:
    try:
        template_source(env, name)
    except TemplateNotFound:
        return False
    return True


def _static(env: Environment, template: str, locale: str, part: str, context: Mapping[str, Any],
            version: str | None = None) -> list[str]:
    """Syntax, unknown filters/tests and undocumented variables of a part and of the templates it
    extends, includes or imports, read from their syntax trees (branches no sample takes too)."""
    shape = tuple(sorted((k, frozenset(v) if isinstance(v, Mapping) else None) for k, v in context.items()))
    problems = []
    for name, source in _sources(env, _name(template, locale, part, version)):
        for line, what in _tree_problems(env, name, source, shape):
            problems.append(f"template {template!r}, {_where(template, locale, name, line, part)}: {what}")
    return problems


#: what a context looks like to the static check: (name, keys of a dict value or None), sorted
Shape = tuple[tuple[str, frozenset[str] | None], ...]


@lru_cache(maxsize=1024)
def _tree_problems(env: Environment, name: str, source: str, shape: Shape) -> tuple[tuple[int | None, str], ...]:
    """(line, problem) of one template's source. Cached by its text: parsing and compiling cost
    ~5 ms a template, and every campaign created or launched checks the same few."""
    try:
        tree = env.parse(source, name)
        env.compile(tree, name)  # unknown filters and tests are found here
    except TemplateSyntaxError as exc:
        return ((exc.lineno, _one_line(exc.message or str(exc))),)
    keys = dict(shape)
    out: list[tuple[int | None, str]] = []
    undeclared = meta.find_undeclared_variables(tree)
    for var in sorted(undeclared - set(keys) - set(env.globals)):
        out.append((_first_line(tree, var), f"undefined variable {var!r} (see docs/templates.md)"))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        key = node.attr if isinstance(node, nodes.Getattr) else getattr(getattr(node, "arg", None), "value", None)
        if not (isinstance(base, nodes.Name) and base.name in undeclared and isinstance(key, str)):
            continue
        allowed = keys.get(base.name)
        if allowed is not None and key not in allowed:
            out.append((node.lineno, f"undefined variable '{base.name}.{key}' (see docs/templates.md)"))
    return tuple(out)


def _sources(env: Environment, name: str) -> Iterator[tuple[str, str]]:
    """(name, source) of a template and of those it extends, includes or imports by a fixed name."""
    todo, seen = [name], set()
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        try:
            source = template_source(env, current)
        except TemplateNotFound:
            continue  # a missing layout is reported by the render, with the name it was asked as
        yield current, source
        todo += _references(env, current, source)


@lru_cache(maxsize=1024)
def _references(env: Environment, name: str, source: str) -> tuple[str, ...]:
    """The templates a source extends, includes or imports by a fixed name."""
    try:
        tree = env.parse(source, name)
    except TemplateSyntaxError:
        return ()
    out = []
    for ref in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        target = getattr(ref, "template", None)
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            out.append(target.value)
    return tuple(out)


def _first_line(tree: nodes.Template, var: str) -> int | None:
    lines = [n.lineno for n in tree.find_all(nodes.Name) if n.name == var and n.ctx == "load"]
    return min(lines) if lines else None


def _content(template: str, channel: Channel, locale: str, message: RenderedMessage, ctx: Mapping[str, Any],
             config: Config) -> list[str]:
    """Mandatory content of one rendered message [R6, E1]."""
    head = f"template {template!r}, {locale}"
    problems = []
    if channel is Channel.EMAIL:
        if not (message.subject or "").strip():
            problems.append(f"{head}/subject.txt: renders empty")
        sender = ctx["sender"]
        required = [("preference link", "{{ page_url }}", ctx["page_url"]),
                    ("unsubscribe link", "{{ unsubscribe_url }}", ctx["unsubscribe_url"]),
                    ("sender name", "{{ sender.name }}", sender["name"]),
                    ("postal address", "{{ sender.postal_address }}", sender["postal_address"])]
        for part, text in (("body.txt", message.text), ("body.html", html.unescape(message.html or ""))):
            flat = _flat(text)
            if not flat:
                problems.append(f"{head}/{part}: renders empty")
                continue
            for what, variable, value in required:
                if _flat(value) not in flat:
                    problems.append(f"{head}/{part}: no {what} ({variable})")
        return problems
    text = message.text
    if not text.strip():
        return [f"{head}/sms.txt: renders empty"]
    words = {_plain(w) for words in config.keywords.stop.values() for w in words} | {"STOP"}
    if not re.search(r"\b(" + "|".join(map(re.escape, sorted(words))) + r")\b", _plain(text)):
        problems.append(f"{head}/sms.txt: no STOP mention (e.g. STOP au {{{{ sender.stop_number }}}})")
    if not any(ctx[link] in text for link in ("short_url", "page_url", "unsubscribe_url")):
        problems.append(f"{head}/sms.txt: no link ({{{{ short_url }}}})")
    return problems


def _segments(template: str, locale: str, rendered: list[RenderedMessage], budget: int) -> list[str]:
    worst = max((count_segments(m.text) for m in rendered), key=lambda seg: seg.segments)
    if worst.segments <= budget:
        return []
    extra = f"; characters forcing UCS-2: {' '.join(worst.ucs2_chars)}" if worst.ucs2_chars else ""
    return [(f"template {template!r}, {locale}/sms.txt: {worst.segments} segments ({worst.encoding}, "
             f"{worst.units} units) exceeds sms.segment_budget = {budget}{extra}")]


def _for(ctx: Mapping[str, Any]) -> str:
    return "" if ctx.get("first_name") else " (for a contact without a first name)"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _plain(text: str) -> str:
    """Without accents (ARRÊT → ARRET), as SMS keywords are matched."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _one_line(text: str) -> str:
    return scrub_text(" ".join(text.split()))[:300]


# -- where an error is --------------------------------------------------------------------------------
def _where(template: str, locale: str, name: str | None, line: int | None, part: str | None = None) -> str:
    """``fr/body.txt line 3``, or ``fr/body.html (_layout.html line 12)`` for a template it extends."""
    at = f" line {line}" if line else ""
    if name and name.startswith("@") and "/" in name:
        name = name.split("/", 1)[1]  # a stored version's part: @<version>/t/fr/sms.txt
    own = f"{template}/{locale}/"
    if name and name.startswith(own):
        return f"{locale}/{name[len(own):]}{at}"
    if name and part is None:
        # a file name from a traceback: the part itself, or a template under the same root
        path = PurePath(name)
        if path.parent.parts[-2:] == (template, locale):
            return f"{locale}/{path.name}{at}"
        name = path.name
    prefix = f"{locale}/{part}" if part else locale
    return f"{prefix} ({name}{at})" if name else f"{prefix}{at}"


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line where a render failed, from the traceback Jinja rewrote."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if _TEMPLATE_FRAMES.match(frame.name or ""):
            found = (None if frame.filename == "<template>" else frame.filename, frame.lineno)
    return found
