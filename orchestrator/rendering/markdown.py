"""A small Markdown for the console's template editor: what a marketer writes, turned into an HTML
body that extends the shipped email layout (``_layout.html``), so the message keeps the layout's
structure (bulletproof button, fonts on the wrapper, wrapping links, footer with the legal mentions).

Supported, and nothing else (anything else is text, HTML-escaped):

- paragraphs (blank line between them; a single newline is a line break);
- ``# Title`` / ``## Title`` (a heading), ``- item`` lists;
- ``**bold**``, ``*italic*``, ``[text](url)`` links and ``[[text]](url)`` buttons;
- Jinja expressions and tags as they are (``{{ first_name }}``, ``{% if first_name %}…{% endif %}``).

The Markdown itself is kept in the stored ``body.html`` as a Jinja comment after the ``extends``
line (:func:`markdown_of`), so the editor shows it again; the comment renders nothing.

>>> print(markdown_body("Hello **{{ first_name }}**\\n\\n[[Answer]]({{ page_url }})", "en"))  # doctest: +ELLIPSIS
{% extends "_layout.html" %}{# reconsent:markdown
Hello **{{ first_name }}**
<BLANKLINE>
[[Answer]]({{ page_url }})
#}
{% block body %}
<p>Hello <strong>{{ first_name }}</strong></p>
<table role="presentation" class="btn-table" ...><a class="btn" href="{{ page_url }}">Answer</a></td></tr></table>
{% endblock %}
...
"""

from __future__ import annotations

import html
import re

MARKER = "{# reconsent:markdown\n"
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_URL = r"(\{\{.*?\}\}|[^)\s]+)"
_BUTTON = re.compile(r"\[\[([^\]]+)\]\]\(" + _URL + r"\)")
_LINK = re.compile(r"\[([^\]]+)\]\(" + _URL + r"\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])")
_SLOT = "\x00{}\x00"
_ITEM = re.compile(r"^[-*]\s+")
_VAR = re.compile(r"\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}")

FOOTERS = {
    "fr": ('{{ sender.name }} · {{ sender.postal_address }}<br><a href="{{ unsubscribe_url }}">Se désabonner</a>'
           ' · <a href="{{ sender.privacy_url }}">Confidentialité</a>'),
    "en": ('{{ sender.name }} · {{ sender.postal_address }}<br><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
           ' · <a href="{{ sender.privacy_url }}">Privacy</a>'),
}


def markdown_body(source: str, locale: str) -> str:
    """The ``body.html`` source for Markdown ``source`` (see the module docstring)."""
    kept = source.replace("\r\n", "\n").strip("\n").replace("#}", "# }")
    footer = FOOTERS.get(locale, FOOTERS["en"])
    return (f'{{% extends "_layout.html" %}}{MARKER}{kept}\n#}}\n{{% block body %}}\n{to_html(source)}\n'
            f"{{% endblock %}}\n{{% block footer %}}{footer}{{% endblock %}}\n")


def markdown_of(body_html: str) -> str | None:
    """The Markdown a ``body.html`` was made from, or None (HTML written by hand).

    >>> markdown_of(markdown_body("Hi", "fr")), markdown_of("<p>Hi</p>")
    ('Hi', None)
    """
    start = body_html.find(MARKER)
    end = body_html.find("\n#}", start)
    if start < 0 or end < 0:
        return None
    return body_html[start + len(MARKER):end]


def to_html(source: str) -> str:
    """The blocks of ``source`` as HTML (no layout).

    >>> to_html("# Hi\\n\\n- a\\n- *b*\\n\\nx < y\\nz")
    '<h2>Hi</h2>\\n<ul>\\n<li>a</li>\\n<li><em>b</em></li>\\n</ul>\\n<p>x &lt; y<br>\\nz</p>'
    """
    blocks = re.split(r"\n\s*\n", source.replace("\r\n", "\n").strip())
    out = []
    for block in blocks:
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) == 1 and (heading := re.match(r"#{1,3}\s+(.*)", lines[0])):
            out.append(f"<h2>{_inline(heading.group(1))}</h2>")
        elif all(_ITEM.match(line) for line in lines):
            items = "\n".join(f"<li>{_inline(_ITEM.sub('', line))}</li>" for line in lines)
            out.append(f"<ul>\n{items}\n</ul>")
        elif len(lines) == 1 and (button := _BUTTON.fullmatch(lines[0].strip())):
            out.append(_button(button.group(1), button.group(2)))
        else:
            out.append("<p>" + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    return "\n".join(out)


def button(url: str, label: str) -> str:
    """The bulletproof button of the shipped layout: the padding on a table cell (Outlook for
    Windows ignores an inline link's padding), the link inside it. ``url`` and ``label`` are HTML
    (a Jinja expression as is).

    >>> print(button("{{ page_url }}", "Go"))  # doctest: +NORMALIZE_WHITESPACE
    <table role="presentation" class="btn-table" border="0" cellspacing="0" cellpadding="0"><tr><td
    class="btn-cell" bgcolor="{{ brand.colour }}"><a class="btn" href="{{ page_url }}">Go</a></td></tr></table>
    """
    return ('<table role="presentation" class="btn-table" border="0" cellspacing="0" cellpadding="0"><tr><td '
            f'class="btn-cell" bgcolor="{{{{ brand.colour }}}}"><a class="btn" href="{url}">{label}</a></td>'
            "</tr></table>")


def _button(text: str, url: str) -> str:
    return button(_attr(url) if _VAR.fullmatch(url) else html.escape(url), _inline(text))


def _inline(text: str) -> str:
    """Escape the text, keep Jinja as is, then bold, italic and links."""
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return _SLOT.format(len(kept) - 1)

    text = html.escape(_JINJA.sub(keep, text), quote=False)
    text = _BUTTON.sub(lambda m: f'<a class="btn" href="{_attr(m.group(2))}">{m.group(1)}</a>', text)
    text = _LINK.sub(lambda m: f'<a href="{_attr(m.group(2))}">{m.group(1)}</a>', text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)


def _attr(url: str) -> str:
    return url.replace('"', "%22")
