"""The long tail of English that reached a French marketer in the console: Jinja's syntax messages in
the template editor, the suppression import's refused rows, the contacts import's row reasons, the
provider's refusals on the campaign page, a campaign file's TOML problems. Each is driven through the
real console in French (and the English console keeps English)."""

from __future__ import annotations

import html
import re

import pytest

from tests.admin.conftest import Console

NBSP = "\u00a0"


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).replace(NBSP, "~").split()).replace("~", NBSP)


def french(admin: Console) -> None:
    admin.client.cookies.set("reconsent_admin_lang", "fr")


def field_problems(page: str, field: str) -> list[tuple[str, str]]:
    """(attributes, text) of each problem shown under ``field`` in the editor."""
    return [(a, words(t)) for a, t in re.findall(rf'<p class="field-problem" id="{field}-problem-\d+"([^>]*)>(.*?)</p>',
                                                page, re.S)]


@pytest.mark.parametrize(("sms", "expected"), [
    ("Bonjour {{ first_name", f"Ligne{NBSP}1{NBSP}: Le texte se termine avant «{NBSP}}}}}{NBSP}»{NBSP}: fermez ce qui est "
                              "ouvert sur cette ligne."),
    ("{% if first_name %}Bonjour\n{{ short_url }}", f"Ligne{NBSP}2{NBSP}: Le bloc «{NBSP}if{NBSP}» n’est jamais fermé{NBSP}: "
                                                    f"ajoutez «{NBSP}{{% endif %}}{NBSP}» là où il se termine."),
    ("Bonjour {{ first_name|nosuch }}", f"Ligne{NBSP}1{NBSP}: Filtre inconnu «{NBSP}nosuch{NBSP}»{NBSP}: vérifiez son "
                                        "orthographe (docs/templates.md liste les filtres)."),
    ("{% if %}x{% endif %}", f"Ligne{NBSP}1{NBSP}: Il manque une variable ou une valeur avant «{NBSP}%}}{NBSP}» (par exemple "
                             "{{ first_name }})."),
    ("{% if x %}a{% endfor %}", f"Ligne{NBSP}1{NBSP}: «{NBSP}{{% endfor %}}{NBSP}» ne ferme pas le bloc «{NBSP}if{NBSP}» "
                                f"ouvert{NBSP}: fermez-le avec «{NBSP}{{% endif %}}{NBSP}»."),
    ("{% endif %}", f"Ligne{NBSP}1{NBSP}: «{NBSP}{{% endif %}}{NBSP}» ne ferme aucun bloc ouvert{NBSP}: supprimez-le."),
    ("{% sendmail %}", f"Ligne{NBSP}1{NBSP}: Instruction inconnue «{NBSP}{{% sendmail %}}{NBSP}»{NBSP}: vérifiez son "
                       "orthographe (docs/templates.md liste celles que vous pouvez utiliser)."),
    ("{{ first_name | }}", f"Ligne{NBSP}1{NBSP}: Attendu ici{NBSP}: un nom, et non «{NBSP}}}}}{NBSP}»."),
    ('{{ "STOP }}', f"Ligne{NBSP}1{NBSP}: Caractère inattendu «{NBSP}\"{NBSP}»{NBSP}: un guillemet ouvert doit être fermé sur "
                    "la même ligne."),
    ("{{ short_url( }}", f"Ligne{NBSP}1{NBSP}: «{NBSP}}}{NBSP}» inattendu{NBSP}: «{NBSP}){NBSP}» est attendu ici."),
    ("{{ first_name is nosuch }}", f"Ligne{NBSP}1{NBSP}: Test inconnu «{NBSP}nosuch{NBSP}» après «{NBSP}is{NBSP}»{NBSP}: "
                                   "vérifiez son orthographe."),
])
def test_a_jinja_syntax_error_in_the_editor_is_told_in_french(admin: Console, sms: str, expected: str) -> None:
    french(admin)
    resp = admin.post("/admin/templates/promo/fr", {"intent": "check", "sms": sms})
    assert resp.status_code == 400
    problems = field_problems(resp.text, "sms")
    assert (("", expected)) in problems, problems


def test_a_jinja_syntax_error_in_the_preview_is_told_in_french(admin: Console) -> None:
    french(admin)
    resp = admin.post("/admin/templates/promo/fr/preview", {"sms": "Bonjour {{ first_name|nosuch }}"})
    problem = re.search(r"\(sms\)</strong> <code([^>]*)>([^<]*)</code>", resp.text)
    assert problem, resp.text
    assert problem.group(1) == ""
    assert words(problem.group(2)).endswith(f"line 1 — Filtre inconnu «{NBSP}nosuch{NBSP}»{NBSP}: vérifiez son "
                                            "orthographe (docs/templates.md liste les filtres).")


def test_the_english_editor_keeps_english(admin: Console) -> None:
    resp = admin.post("/admin/templates/promo/fr", {"intent": "check", "sms": "Bonjour {{ first_name"})
    assert ("", "Line 1: The text ends before “}}”: close what is opened on this line.") in \
        field_problems(resp.text, "sms")
