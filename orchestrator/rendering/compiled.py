"""Compiled forms of Jinja templates: render once per shape, then only fill in the per-person strings.

One mechanism for the message templates (:mod:`orchestrator.rendering.messages`) and the pages
(:mod:`preference_centre.templating`). A caller names the *slots* (the per-person strings) and a
*key* holding everything else the output may depend on. The first time a key is seen the template
is rendered with random markers in the slots (:func:`markers`) and split on them (:class:`Form`);
then every render only joins the literal pieces with the values. A form is used only after checks:

- :func:`uses` reads the templates' syntax trees: a slot must only be printed (``{{ name }}``, or
  ``{{ d.key }}`` / ``{{ d[k] }}`` for a dict of strings), tested (``{% if name %}``) or passed to a
  function the caller names (``_("Hello %(name)s", name=name)``); anything else (a filter, a
  comparison with a fixed string, a slice) means the full render every time;
- :func:`compile_form` renders again with other markers and compares with the joined result;
- :func:`add_form` compares the first real render (the caller's reference) with the joined result.

A form that fails any check is remembered as None: that key takes the full render every time.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, TemplateNotFound, nodes

#: how a template uses a name: printed or tested as is, through one ``.attr``/``[key]``, otherwise
PRINT, ITEM, OTHER = "print", "item", "other"
LIMIT = 1024

_MISSING: Any = object()


def markers(n: int) -> list[str]:
    """``n`` markers no value or template holds, that escaping and HTML/CSS serializers keep as is.

    >>> a, b = markers(2); a != b and a.isalnum() and b.isalnum()
    True
    """
    nonce = secrets.token_hex(6)
    return [f"rcslot{nonce}n{i}z" for i in range(n)]


@dataclass(frozen=True)
class Form:
    """Per text: the pieces, with slot numbers where the values go.

    >>> form = Form.split(("Hello m0, m1 and m0", "plain"), ["m0", "m1"])
    >>> form.join(["Zoé", "Léa"])
    ('Hello Zoé, Léa and Zoé', 'plain')
    """

    texts: tuple[tuple[tuple[str | int, ...], tuple[tuple[int, int], ...]], ...]

    @classmethod
    def split(cls, texts: Sequence[str], marks: Sequence[str]) -> Form:
        index = {m: i for i, m in enumerate(marks)}
        pattern = re.compile("(" + "|".join(map(re.escape, marks)) + ")")
        out = []
        for text in texts:
            pieces: list[str | int] = []
            where = []
            for n, piece in enumerate(pattern.split(text)):
                if n % 2:
                    where.append((len(pieces), index[piece]))
                    pieces.append(index[piece])
                elif piece:
                    pieces.append(piece)
            out.append((tuple(pieces), tuple(where)))
        return cls(tuple(out))

    def join(self, values: Sequence[str]) -> tuple[str, ...]:
        # an int piece is the index of the slot value that goes there
        return tuple("".join([values[p] if isinstance(p, int) else p for p in pieces]) for pieces, _ in self.texts)


Render = Callable[[Sequence[str]], tuple[str, ...]]

TemplateLoad = nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport
_LOADS = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def template_source(env: Environment, name: str) -> str:
    """The source of the template ``name`` from ``env``'s loader; TemplateNotFound when there is none."""
    if env.loader is None:
        raise TemplateNotFound(name)
    return env.loader.get_source(env, name)[0]


def template_loads(tree: nodes.Node) -> Iterator[TemplateLoad]:
    """The {% extends %}, {% include %}, {% import %} and {% from … import %} nodes of ``tree``."""
    for node in tree.find_all(_LOADS):
        if isinstance(node, _LOADS):
            yield node


Guard = Callable[[tuple[str, ...], list[str]], bool]


def compile_form(render: Render, n: int, guard: Guard | None = None) -> Form | None:
    """The form of ``render`` (the texts with these ``n`` slot values), checked with a second set of
    markers; None when it fails, or when ``guard(texts, markers)`` refuses the first rendering."""
    first, second = markers(n), markers(n)
    texts = render(first)
    if guard is not None and not guard(texts, first):
        return None
    form = Form.split(texts, first)
    return form if form.join(second) == render(second) else None


def add_form(forms: dict[Any, Form | None], key: Any, fill: Sequence[str], render: Render,
             reference: Callable[[], tuple[str, ...]],
             guard: Callable[[tuple[str, ...], list[str]], bool] | None = None) -> Form | None:
    """Compile the form of a ``key`` not in ``forms`` yet, check it against ``reference()`` (the full
    render of this call, whose slot values are ``fill``), store it (None when a check failed) and
    return it. Callers look ``key`` up in ``forms`` themselves first (a TypeError there: a key that
    cannot be hashed, no form) and join the values of each call: ``form.join(fill)``."""
    if len(forms) >= LIMIT:
        forms.clear()
    form = forms[key] = compile_form(render, len(fill), guard)
    if form is not None and form.join(fill) != reference():
        form = forms[key] = None
    return form


def uses(env: Environment, names: Iterable[str], calls: tuple[str, ...] = ()) -> dict[str, set[str]] | None:
    """How the templates ``names`` (and those they extend, include or import) use each variable:
    a set of :data:`PRINT`, :data:`ITEM`, :data:`OTHER`; None when one is missing or loads a
    template chosen at run time (it cannot be analysed). Keyword arguments of a call of a function
    named in ``calls`` count as printed."""
    found: dict[str, set[str]] = {}
    seen: set[str] = set()
    try:
        for name in names:
            if not _uses(env, name, calls, seen, found):
                return None
    except TemplateNotFound:
        return None
    return found


def _uses(env: Environment, name: str, calls: tuple[str, ...], seen: set[str], found: dict[str, set[str]]) -> bool:
    if name in seen:
        return True
    seen.add(name)
    tree = env.parse(template_source(env, name))
    plain: dict[str, dict[str, int]] = {PRINT: {}, ITEM: {}}

    def shown(node: nodes.Node) -> None:
        if isinstance(node, nodes.Name):
            way, target = PRINT, node.name
        elif isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
            way, target = ITEM, node.node.name
        else:
            return
        plain[way][target] = plain[way].get(target, 0) + 1

    for output in tree.find_all(nodes.Output):
        for node in output.nodes:
            shown(node)
    for test in tree.find_all(nodes.If):  # elif branches are If nodes too
        shown(test.test)
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in calls:
            for kwarg in call.kwargs:
                shown(kwarg.value)
    total: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        total[node.name] = total.get(node.name, 0) + 1
    for var, count in total.items():
        ways = found.setdefault(var, set())
        printed, items = plain[PRINT].get(var, 0), plain[ITEM].get(var, 0)
        if printed:
            ways.add(PRINT)
        if items:
            ways.add(ITEM)
        if printed + items != count:
            ways.add(OTHER)
    for loader in template_loads(tree):
        target = loader.template
        if not isinstance(target, nodes.Const) or not isinstance(target.value, str):
            return False
        if not _uses(env, target.value, calls, seen, found):
            return False
    return True


def freeze(value: Any) -> Any:
    """A hashable key for a context value; values that compare equal but could render differently
    (1 and True, the same instant in two time zones, two orders of a dict) get different keys.
    Unhashable values give a key that raises TypeError when hashed.

    >>> freeze({"x": 1}) == freeze({"x": True}), freeze([1]) == freeze((1,))
    (False, False)
    """
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is dict:
        return (dict, tuple([(k, freeze(v)) for k, v in value.items()]))
    if kind is list or kind is tuple:
        return (kind, tuple([freeze(v) for v in value]))
    if kind is int or kind is bool or kind is float:
        return (kind, value)
    if hasattr(kind, "__dataclass_fields__"):  # a dataclass instance: by its fields
        return (kind, tuple([(f.name, freeze(getattr(value, f.name))) for f in dataclasses.fields(value)]))
    return (kind, value, repr(value))
