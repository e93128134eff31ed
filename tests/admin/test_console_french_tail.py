"""The long tail of English that reached a French marketer in the console: Jinja's syntax messages in
the template editor, the suppression import's refused rows, the contacts import's row reasons, the
provider's refusals on the campaign page, a campaign file's TOML problems. Each is driven through the
real console in French (and the English console keeps English)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from orchestrator.accounts.service import add_user
from orchestrator.campaigns.service import create_campaign
from orchestrator.runtime import Runtime
from orchestrator.store.models import MessageTemplate
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, Console, sign_in
from tests.support.factories import plan
from tests.support.smtp import SmtpServer, free_port
from tests.support.twilio_standin import TwilioStandIn

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


def test_an_untranslated_problem_marks_only_its_own_words_as_english(admin: Console) -> None:
    """A Jinja message no pattern knows stays as Jinja wrote it, marked English; the French "Ligne 1 :"
    before it is not (a screen reader reads each in its language)."""
    french(admin)
    resp = admin.post("/admin/templates/promo/fr", {"intent": "check", "sms": "{% raw %}STOP"})
    problem = re.search(r'<p class="field-problem" id="sms-problem-1">(.*?)</p>', resp.text, re.S)
    assert problem, resp.text
    assert problem.group(1) == f'Ligne{NBSP}1{NBSP}: <span lang="en">Missing end of raw directive</span>'


def test_a_jinja_syntax_error_in_the_preview_is_told_in_french(admin: Console) -> None:
    french(admin)
    resp = admin.post("/admin/templates/promo/fr/preview", {"sms": "Bonjour {{ first_name|nosuch }}"})
    problem = re.search(r"\(sms\)</strong> <code([^>]*)>([^<]*)</code>", resp.text)
    assert problem, resp.text
    assert problem.group(1) == ""
    assert words(problem.group(2)) == (f"modèle «{NBSP}promo{NBSP}», fr/sms.txt, ligne{NBSP}1 — Filtre inconnu "
                                       f"«{NBSP}nosuch{NBSP}»{NBSP}: vérifiez son orthographe (docs/templates.md liste "
                                       "les filtres).")


def test_the_english_editor_keeps_english(admin: Console) -> None:
    resp = admin.post("/admin/templates/promo/fr", {"intent": "check", "sms": "Bonjour {{ first_name"})
    assert ("", "Line 1: The text ends before “}}”: close what is opened on this line.") in \
        field_problems(resp.text, "sms")


def rejected_rows(page: str) -> dict[str, tuple[str, str]]:
    """line → (field, reason) of the contacts import's rejected rows."""
    table = re.search(r"<caption>[^<]*</caption>(.*?)</table>", page.split('id="import-warnings"')[-1], re.S)
    assert table, page
    rows = [re.findall(r"<td>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)]
    return {words(r[0]): (words(r[1]), words(r[2])) for r in rows if r}


def test_every_kind_of_contact_row_refusal_is_told_in_french(admin: Console) -> None:
    french(admin)
    rows = ["external_id,kind,email,phone,locale,timezone,last_activity_at,b2b,email_consent_at,sms_consent_at",
            "1,customer,not-an-email@,,fr,,,,,", "2,customer,,hello,fr,,,,,", "3,customer,a3@shop.example,,1234,,,,,",
            "4,customer,a4@shop.example,,fr,Mars/Olympus,,,,", "5,customer,a5@shop.example,,fr,,yesterday,,,",
            "6,customer,a6@shop.example,,fr,,,maybe,,", "7,customer,a7@shop.example,,fr,,,,,2025-01-01",
            "8,customer,a8@shop.example,,fr,,,,soon,", ",customer,a9@shop.example,,fr,,,,,",
            "10,alien,a10@shop.example,,fr,,,,,", "11,customer,,,fr,,,,,", "12,customer,a12@shop.example,,fr,,,,,,extra",
            "13,customer,,+33 1,fr,,,,,"]
    resp = admin.post("/admin/contacts/import", files={"file": ("c.csv", ("\n".join(rows) + "\n").encode(), "text/csv")})
    got = rejected_rows(resp.text)
    assert got == {
        "2": ("email", f"adresse électronique non valide{NBSP}: 'not-an-email@'"),
        "3": ("phone", f"ce n’est pas un numéro de téléphone{NBSP}: 'hello'"),
        "4": ("locale", f"attendu{NBSP}: un code de langue comme fr ou en, reçu '1234'"),
        "5": ("timezone", "fuseau horaire inconnu 'Mars/Olympus' (attendu par exemple Europe/Paris)"),
        "6": ("last_activity_at", f"attendu{NBSP}: une date comme 31/03/2024 ou 2024-03-31, reçu 'yesterday'"),
        "7": ("b2b", f"attendu{NBSP}: oui/non (true/false), reçu 'maybe'"),
        "8": ("sms_consent_at", f"consentement SMS indiqué mais la ligne n’a pas de téléphone{NBSP}: ajoutez le numéro "
                                "ou videz la colonne sms_consent_at"),
        "9": ("email_consent_at", f"attendu{NBSP}: une date ou une date et heure ISO comme 2025-03-01 ou "
                                  "2025-03-01T14:30:00Z, reçu 'soon'"),
        "10": ("external_id", "obligatoire"),
        "11": ("kind", f"attendu{NBSP}: client (customer) ou prospect, reçu 'alien'"),
        "12": ("email", "un courriel ou un téléphone est obligatoire (les deux sont vides)"),
        "13": ("toute la ligne", "plus de cellules que de colonnes dans l’en-tête"),
        "14": ("phone", f"ce n’est pas un numéro de téléphone{NBSP}: '+33 1'"),
    }, got
    admin.client.cookies.set("reconsent_admin_lang", "en")  # the English console: the service's own words
    english = rejected_rows(admin.post("/admin/contacts/import", files={
        "file": ("c.csv", ("\n".join(rows) + "\n").encode(), "text/csv")}).text)
    assert english["8"] == ("sms_consent_at", "consent given for sms but the row has no phone")
    assert english["13"] == ("the whole row", "more cells than header columns")


def suppression_rejects(page: str) -> list[tuple[str, str, str]]:
    """(line, attributes of the reason cell, reason) of the suppression import's refused lines."""
    table = re.search(r"<caption>[^<]*</caption>(.*?)</table>", page, re.S)
    assert table, page
    return [(line, attrs, words(reason)) for line, attrs, reason in
            re.findall(r"<tr><td>(\d+)</td><td([^>]*)>(.*?)</td></tr>", table.group(1), re.S)]


SUPPRESSION_LIST = (b"email,channel,reason\nnot-an-email@\n+33 1 23\nhello\nbob@shop.example,fax,\nbob@shop.example,sms,\n"
                    b"0612345678,email,\nbob@shop.example,email,whatever\nalice@\n")


def test_each_refused_line_of_a_suppression_import_is_told_in_french(admin: Console) -> None:
    french(admin)
    page = admin.post("/admin/suppression/import", files={"file": ("liste.csv", SUPPRESSION_LIST, "text/csv")}).text
    reasons = ", ".join(["bounced", "complaint", "erased", "imported", "no_response", "not_granted", "sms_stop",
                         "unsubscribed"])
    assert suppression_rejects(page) == [
        ("2", "", f"Cette adresse e-mail n’est pas valide{NBSP}: Il manque quelque chose après le @."),
        ("3", "", f"ce numéro de téléphone n’est pas valide{NBSP}: écrivez-le avec son indicatif "
                  f"(+33{NBSP}6{NBSP}12{NBSP}34{NBSP}56{NBSP}78)"),
        ("4", "", f"ni une adresse e-mail, ni un numéro de téléphone, ni une clé de 64{NBSP}chiffres hexadécimaux"),
        ("5", "", f"Colonne «{NBSP}channel{NBSP}»{NBSP}: 'fax' n’est ni email ni sms{NBSP}: écrivez email ou sms, ou "
                  "laissez-la vide."),
        ("6", "", f"Colonne «{NBSP}channel{NBSP}»{NBSP}: sms ne va pas avec une adresse e-mail{NBSP}: écrivez email, ou "
                  "laissez-la vide."),
        ("7", "", f"Colonne «{NBSP}channel{NBSP}»{NBSP}: email ne va pas avec un numéro de téléphone{NBSP}: écrivez sms, "
                  "ou laissez-la vide."),
        ("8", "", f"Colonne «{NBSP}reason{NBSP}»{NBSP}: 'whatever' n’est pas un motif connu{NBSP}: écrivez l’un de "
                  f"ceux-ci, {reasons}, ou laissez-la vide."),
        ("9", "", f"Cette adresse e-mail n’est pas valide{NBSP}: Il manque quelque chose après le @."),
    ]
    assert "Corrigez ces lignes dans le fichier et importez-le à nouveau" in words(page)


def test_the_english_suppression_import_keeps_the_services_words(admin: Console) -> None:
    page = admin.post("/admin/suppression/import", files={"file": ("liste.csv", SUPPRESSION_LIST, "text/csv")}).text
    rejects = suppression_rejects(page)
    assert rejects[3] == ("5", ' lang="en"', "channel: expected email or sms, got 'fax'")
    assert rejects[0] == ("2", ' lang="en"', "not a valid email: There must be something after the @-sign.")


def console_on(make_rt: Callable[..., Runtime], **sections: dict[str, object]) -> Console:
    """A console signed in as an admin on a runtime configured with ``sections`` (a real SMTP relay…)."""
    rt = make_rt(**sections)
    add_user(rt, *ADMIN, "admin")
    client = TestClient(create_app(rt), base_url="https://testserver", headers={"accept-language": "en"})
    return Console(rt, client, sign_in(client, *ADMIN))


def trial_results(page: str) -> list[tuple[str, str]]:
    box = re.search(r'id="test-results"><ul>(.*?)</ul>', page, re.S)
    assert box, page
    return [(a, words(t)) for a, t in re.findall(r"<span([^>]*)>(.*?)</span>", box.group(1), re.S)]


def test_a_provider_refusal_on_the_campaign_page_is_told_in_french(
        make_rt: Callable[..., Runtime], smtp_server: SmtpServer, twilio: TwilioStandIn) -> None:
    admin = console_on(make_rt, email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port},
                       sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                            "api_base_url": twilio.base_url})
    smtp_server.handler.rcpt_replies["gone@shop.example"] = "550 5.1.1 <gone@shop.example>: no such user"
    twilio.errors["+33612345678"] = 21211
    campaign_id = create_campaign(admin.rt, plan())
    french(admin)
    base = f"/admin/campaigns/{campaign_id}/test-send"
    mail = trial_results(admin.post(base, {"to": "gone@shop.example", "step": "0", "locale": "fr"}).text)
    assert mail == [("", f"non envoyé{NBSP}: Le serveur de messagerie du destinataire indique que cette boîte n’existe "
                         f"pas{NBSP}: vérifiez l’adresse (SMTP 550 5.1.1 <gone@shop.example>: no such user).")]
    sms_step = next(s.index for s in plan().steps if s.channel.value == "sms")
    sms = trial_results(admin.post(base, {"to": "+33612345678", "step": str(sms_step), "locale": "fr"}).text)
    assert len(sms) == 1 and sms[0][0] == "" and sms[0][1].startswith(
        f"non envoyé{NBSP}: Ce numéro ne peut pas recevoir de SMS (non valide, pas un mobile, ou injoignable depuis "
        f"votre expéditeur){NBSP}: vérifiez-le (Twilio 400 21211: "), sms
    bad = admin.post(base, {"to": "moi@", "step": "0"})
    assert bad.status_code == 400
    assert (f"L’adresse de test «{NBSP}moi@{NBSP}» n’est pas une adresse e-mail valide{NBSP}: Il manque quelque chose "
            "après le @.") in words(bad.text)
    admin.client.cookies.set("reconsent_admin_lang", "en")  # English: the service's own words, marked English
    english = trial_results(admin.post(base, {"to": "gone@shop.example", "step": "0", "locale": "fr"}).text)
    assert english == [(' lang="en"', "failed: SMTP 550 5.1.1 <gone@shop.example>: no such user")]


def test_an_unreachable_mail_server_is_told_in_french(make_rt: Callable[..., Runtime]) -> None:
    admin = console_on(make_rt, email={"transport": "smtp", "host": "127.0.0.1", "port": free_port()})
    campaign_id = create_campaign(admin.rt, plan())
    french(admin)
    mail = trial_results(admin.post(f"/admin/campaigns/{campaign_id}/test-send",
                                   {"to": "moi@shop.example", "step": "0", "locale": "fr"}).text)
    assert len(mail) == 1 and mail[0][1].startswith(
        f"non envoyé{NBSP}: Le serveur de messagerie est injoignable{NBSP}: vérifiez email.host et email.port, ou le "
        "réseau (SMTP connection problem: "), mail


@pytest.mark.parametrize(("toml", "expected"), [
    (b'name = "Relance"\ndeadline_days = 30\nkind = Relance\n',
     f"Ce fichier de campagne n’est pas un TOML valide{NBSP}: ligne{NBSP}3, colonne{NBSP}8{NBSP}: cette valeur n’est "
     f"pas valide{NBSP}: un texte se met entre guillemets (\"…\"), un nombre, true ou false sans guillemets"),
    (b'name "Relance"\n', f"Ce fichier de campagne n’est pas un TOML valide{NBSP}: ligne{NBSP}1, colonne{NBSP}6{NBSP}: un "
                          f"«{NBSP}={NBSP}» est attendu après la clé (clé = valeur)"),
    (b'name = "Relance\n', f"Ce fichier de campagne n’est pas un TOML valide{NBSP}: ligne{NBSP}1, colonne{NBSP}16{NBSP}: un "
                           "guillemet (\") ouvert n’est jamais fermé"),
    (b'name = "A"\nname = "B"\n', f"Ce fichier de campagne n’est pas un TOML valide{NBSP}: ligne{NBSP}2, "
                                  f"colonne{NBSP}11{NBSP}: cette clé ou cette table est donnée deux fois{NBSP}: n’en gardez "
                                  "qu’une"),
    (b'nme = "Relance"\n', f"Clé inconnue «{NBSP}nme{NBSP}» dans le fichier de campagne{NBSP}: vérifiez son orthographe "
                           "(les clés sont "),
    (b'name = "R"\ndeadline_days = 30\n[[steps]]\nday = 0\nchanel = "sms"\ntemplate = "reconsent"\n',
     f"Clé inconnue «{NBSP}chanel{NBSP}» dans steps[0]{NBSP}: vérifiez son orthographe (les clés sont "),
    (b'name = "R"\ndeadline_days = 0\n', "Délai"),
])
def test_a_campaign_file_problem_is_told_in_french(admin: Console, toml: bytes, expected: str) -> None:
    french(admin)
    resp = admin.post("/admin/campaigns", files={"file": ("relance.toml", toml, "application/toml")})
    assert resp.status_code == 400
    alert = re.search(r'<div class="alert" role="alert"><p>(.*?)</p>', resp.text, re.S)
    assert alert, resp.text
    assert words(alert.group(1)).startswith(expected), words(alert.group(1))


def test_a_file_the_server_cannot_write_is_told_in_french(make_rt: Callable[..., Runtime], tmp_path: Path) -> None:
    """An operating system's refusal inside a console action (here the test send's email folder is
    a file) is a page in French naming the reason, the system's words kept for support, not a bare 500."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    admin = console_on(make_rt, email={"transport": "file", "outbox_dir": str(blocker / "outbox")})
    campaign_id = create_campaign(admin.rt, plan())
    french(admin)
    resp = admin.post(f"/admin/campaigns/{campaign_id}/test-send", {"to": "moi@shop.example", "step": "0"})
    assert resp.status_code == 500
    assert (f"Le serveur n’a pas pu lire ou écrire un fichier{NBSP}: ce n’est pas un dossier. Réessayez{NBSP}; si cela se "
            "reproduit, prévenez votre administrateur (NotADirectoryError: Not a directory).") in words(resp.text)
    assert str(blocker) not in resp.text  # no server path on the page
    admin.client.cookies.set("reconsent_admin_lang", "en")
    english = admin.post(f"/admin/campaigns/{campaign_id}/test-send", {"to": "moi@shop.example", "step": "0"})
    assert ("The server could not read or write a file: Not a directory. Try again; if it happens again, tell your "
            "administrator (NotADirectoryError: Not a directory).") in words(english.text)


def test_every_detail_has_its_french_translation() -> None:
    from preference_centre.admin import details, problems
    from preference_centre.admin.i18n import catalog

    fr = catalog("fr")
    ids = [m for _, m in details.DETAILS + details.TOML] + list(problems.WORDS.values())
    assert sorted(m for m in ids if m not in fr) == []
    for m in ids:  # French typography: a no-break space before : ; ? ! and inside « », never a plain one
        assert not re.search(r" [:;?!»]|« ", fr[m]), fr[m]


def alerts(page: str) -> list[str]:
    return [words(a) for a in re.findall(r'role="alert"><p>(.*?)</p>', page, re.S)]


def test_the_people_requests_users_and_tokens_forms_refuse_in_french(admin: Console) -> None:
    french(admin)
    assert alerts(admin.post("/admin/contacts/lookup", {"address": "12"}).text) == [
        f"«{NBSP}12{NBSP}» n’est pas un numéro de téléphone valide{NBSP}: écrivez-le avec son indicatif "
        f"(+33{NBSP}6{NBSP}12{NBSP}34{NBSP}56{NBSP}78)."]
    assert alerts(admin.post("/admin/contacts/lookup", {"address": "bonjour"}).text) == [
        f"«{NBSP}bonjour{NBSP}» n’est ni une adresse e-mail ni un numéro de téléphone{NBSP}: saisissez l’un ou l’autre."]
    request = {"address": "bob@shop.example", "kind": "access"}
    assert alerts(admin.post("/admin/requests", {**request, "kind": "nope"}).text) == [
        "Choisissez le type de demande dans la liste."]
    assert alerts(admin.post("/admin/requests", {**request, "received_on": "hier"}).text) == [
        f"Date de réception{NBSP}: 'hier' n’est pas une date{NBSP}: écrivez-la sous la forme 2026-11-25."]
    assert alerts(admin.post("/admin/requests", {**request, "received_on": "2099-01-01"}).text) == [
        f"Date de réception{NBSP}: cette date est dans le futur{NBSP}: indiquez le jour où la demande est arrivée."]
    assert alerts(admin.post("/admin/api-tokens", {"name": "crm", "scope": "admin"}).text) == [
        f"Portée{NBSP}: 'admin' n’est ni read ni write{NBSP}: choisissez-en une dans la liste."]
    assert alerts(admin.post("/admin/users", {"email": "bob@shop.example", "password": "x" * 20,
                                              "role": "king"}).text) == [
        f"Rôle{NBSP}: 'king' n’est ni admin ni viewer{NBSP}: choisissez-en un dans la liste."]
    assert "Il n’y a pas d’utilisateur de la console 999." in alerts(
        admin.post("/admin/users/999/disable", {"confirm": "yes"}).text)
    admin.client.cookies.set("reconsent_admin_lang", "en")  # English: the service's own line
    assert alerts(admin.post("/admin/requests", {**request, "received_on": "2099-01-01"}).text) == [
        "received_on: the date is in the future"]


def test_a_drafts_altered_template_is_placed_and_told_in_french(admin: Console) -> None:
    """A stored template changed in the database since the draft pinned it (its text no longer its
    version): the campaign page says which template and version, and what to do, in French."""
    saved = admin.post("/admin/templates/promo/fr", {"intent": "save", "sms": "Bonjour {{ first_name }}\n"
                                                     "STOP au {{ sender.stop_number }} {{ short_url }}"})
    assert saved.status_code == 303, saved.text
    campaign_id = create_campaign(admin.rt, plan(steps=[{"day": 0, "channel": "sms", "template": "promo"}],
                                                 locales=["fr"], default_locale="fr"))
    with admin.rt.engine.begin() as conn:
        conn.execute(update(MessageTemplate).where(MessageTemplate.name == "promo")  # type: ignore[arg-type]
                     .values(source="Bonjour\n{{ first_name }} {{ short_url }}"))
    del admin.rt.renderer  # as a restarted console reads it: the process keeps the versions it loaded
    french(admin)
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    box = re.search(r'id="template-problems">(.*?)</div>', page, re.S)
    assert box, page
    item = re.search(r"<li>(.*?)</li>", box.group(1), re.S)
    assert item and re.fullmatch(
        f"<code>steps\\[0\\] \\(sms\\): modèle «{NBSP}promo{NBSP}» \\(fr, version \\w+\\)</code> — Le texte "
        f"enregistré de cette version ne lui correspond plus \\(modifié dans la base après son enregistrement\\)"
        f"{NBSP}: prévenez votre administrateur. Enregistrer à nouveau le modèle dans l’éditeur crée une nouvelle "
        "version saine.", html.unescape(item.group(1))), box.group(1)


def test_the_contrast_problem_reads_once_with_its_comma(admin: Console) -> None:
    """The brand page's contrast refusal carried the service line's comma into the sentence (« 1.07:1,, »)."""
    data = {"sender_name": "Boutique", "privacy_url": "https://shop.example/privacy", "colour": "#ffff00"}
    french(admin)
    problem = re.search(r'<p class="field-problem" id="colour-problem">([^<]*)</p>', admin.post("/admin/brand", data).text)
    assert problem and html.unescape(problem.group(1)) == (
        f"Le contraste avec le blanc est de 1.07:1, sous le 4.5:1 qu’exige le niveau AA des WCAG{NBSP}: choisissez une "
        "couleur plus foncée.")
    admin.client.cookies.set("reconsent_admin_lang", "en")
    problem = re.search(r'<p class="field-problem" id="colour-problem">([^<]*)</p>', admin.post("/admin/brand", data).text)
    assert problem and html.unescape(problem.group(1)) == (
        "Contrast with white is 1.07:1, below the 4.5:1 that WCAG AA requires: choose a darker colour.")
