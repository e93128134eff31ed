"""The services' messages in the console's language.

The services (CLI, API, console alike) explain a refusal or a pause in English, one line; the
console shows that line through its ``_()``. A line that is no message id of the catalog is
translated here by pattern: a pattern's ``rest`` group is itself a message (translated the same way,
recursively: a planned launch that failed because of a template problem), its ``why`` group an
operating system's reason and its ``detail`` group a technical detail (an SMTP reply, a Twilio error,
a TOML parser's message…), both told by :func:`preference_centre.admin.details.explain`; other groups
are kept as written. A campaign file's checks name the file (``plan.toml: …``) as the form's name
``form``: one pattern serves both (:data:`PLAN`). A template
problem (``where: problem``) is translated by :mod:`preference_centre.admin.problems`. A line no
pattern knows is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from preference_centre.admin.details import explain
from preference_centre.admin.i18n import catalog
from preference_centre.admin.problems import translate_line
from preference_centre.i18n import translator

#: where a campaign plan's check names its source: the console's form, or an uploaded campaign file
PLAN = r"(?:form|[^:/]+\.toml): "
#: (pattern of the English line, message id with the pattern's named groups)
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"the planned launch failed: (?P<rest>.+)"),
     "The planned launch failed: %(rest)s Fix it, then plan the launch again."),
    (re.compile(r"paused by dispatch: (?P<n>\d+) message\(s\) could not be built since launch or the last resume "
                r"\(dispatch\.failure_pause_threshold = (?P<limit>\d+)\); last: (?P<rest>.+)"),
     "%(n)s message(s) could not be built since the launch or the last resume (the limit, "
     "dispatch.failure_pause_threshold, is %(limit)s). The last one: %(rest)s"),
    (re.compile(r"cannot build message: (?P<rest>.+)"), "the message cannot be built: %(rest)s"),
    (re.compile(r"template '(?P<name>[^']+)': missing (?P<part>[\w./-]+)"),
     "template “%(name)s”: %(part)s is missing (add it in the template editor)."),
    (re.compile(r"(?P<rest>.+) \(and (?P<n>\d+) more problem\(s\)\)"), "%(rest)s (and %(n)s more problem(s))"),
    (re.compile(r"(?P<path>.+): cannot read: (?P<why>.+)"),
     "The file cannot be read (%(why)s): upload it again."),
    (re.compile(r"(?P<path>.+): not valid TOML: (?P<detail>.+)"),
     "This campaign file is not valid TOML: %(detail)s"),
    (re.compile(r"campaign (?P<id>\d+): no such campaign \(see `reconsent campaign list`\)"),
     "There is no campaign %(id)s."),
    (re.compile(r"campaign (?P<id>\d+) is (?P<state>\w+); only a draft can be launched"),
     "Campaign %(id)s is %(state)s: only a draft can be launched."),
    (re.compile(r"campaign (?P<id>\d+) is (?P<state>\w+); only a draft can be scheduled"),
     "Campaign %(id)s is %(state)s: only a draft can be scheduled."),
    (re.compile(r"campaign (?P<id>\d+) is (?P<state>\w+), not scheduled"),
     "Campaign %(id)s is %(state)s, not scheduled."),
    (re.compile(r"campaign (?P<id>\d+) was launched or changed meanwhile"),
     "Campaign %(id)s was launched or changed meanwhile: reload the page."),
    (re.compile(r"campaign (?P<id>\d+) is (?P<state>\w+); cannot move to (?P<target>\w+)"),
     "Campaign %(id)s is %(state)s: it cannot become %(target)s."),
    (re.compile(r"campaign (?P<id>\d+) is (?P<state>\w+): a launched campaign's audience and steps cannot change "
                r"\(create a new campaign\)"),
     "Campaign %(id)s is %(state)s: a launched campaign’s audience and steps cannot change (create a new "
     "campaign)."),
    (re.compile(r"campaign (?P<id>\d+) is (?P<state>\w+): only a draft can be deleted \(its messages and answers "
                r"are proof\)"),
     "Campaign %(id)s is %(state)s: only a draft can be deleted (its messages and answers are proof)."),
    (re.compile(r"campaign (?P<id>\d+) does not exist"), "There is no campaign %(id)s."),
    (re.compile(r"contact (?P<id>\d+) holds no address any more \(erased\)"),
     "Contact %(id)s holds no address any more (erased)."),
    (re.compile(r"request (?P<id>\d+) does not exist \(see `reconsent dsr list`\)"), "There is no request %(id)s."),
    (re.compile(r"request (?P<id>\d+) is already (?P<state>\w+)"), "Request %(id)s is already %(state)s."),
    (re.compile(r"api token (?P<id>\d+): no such token \(see `reconsent api-tokens list`\)"),
     "There is no API token %(id)s."),
    (re.compile(r"EMAIL: not a valid address: (?P<detail>.+)"), "This email address is not valid: %(detail)s"),
    (re.compile(r"EMAIL: a console user (?P<email>\S+) already exists"), "A console user %(email)s already exists."),
    (re.compile(r"password: at least (?P<n>\d+) characters are required"),
     "The password needs at least %(n)s characters."),
    (re.compile(r"(?P<email>\S+) is the last enabled admin: (?P<what>.+) would close the console; add or enable "
                r"another admin first"),
     "%(email)s is the last enabled admin: this would close the console. Add or enable another admin first."),
    (re.compile(r"not a valid email: (?P<detail>.+)"), "This email address is not valid: %(detail)s"),
    (re.compile(r"(?P<path>.+): not UTF-8 text \(save the file as UTF-8\)"),
     "The file is not UTF-8 text: save it as CSV UTF-8 and upload it again."),
    (re.compile(r"failed: (?P<detail>.+)"), "not sent: %(detail)s"),
    # the test send's address (orchestrator.delivery.trial)
    (re.compile(r"--to '(?P<to>[^']*)': not a valid address: (?P<detail>.+)"),
     "The test address “%(to)s” is not a valid email address: %(detail)s"),
    (re.compile(r"--to '(?P<to>[^']*)': not a phone number: .*"),
     "“%(to)s” is neither an email address nor a phone number: type your own address or mobile number."),
    (re.compile(r"--to '(?P<to>[^']*)': not a valid number for its region: .*"),
     "“%(to)s” is not a valid phone number: write it with its country code (+33 6 12 34 56 78)."),
    # a person looked up or a request recorded by address (orchestrator.proof.rights), the request form
    (re.compile(r"--phone: not a valid number for its region: '(?P<to>[^']*)'"),
     "“%(to)s” is not a valid phone number: write it with its country code (+33 6 12 34 56 78)."),
    (re.compile(r"--phone: not a phone number: '(?P<to>[^']*)'"),
     "“%(to)s” is neither an email address nor a phone number: type one or the other."),
    (re.compile(r"kind: choose .*"), "Choose the kind of request in the list."),
    (re.compile(r"received_on: expected a date like 2026-11-25, got (?P<got>.+)"),
     "Date received: %(got)s is not a date: write it as 2026-11-25."),
    (re.compile(r"received_on: the date is in the future"),
     "Date received: the date is in the future: give the day the request arrived."),
    # console users and API tokens (orchestrator.accounts)
    (re.compile(r"--scope: expected read or write, got (?P<got>.+)"),
     "Scope: %(got)s is neither read nor write: choose one in the list."),
    (re.compile(r"(?:--role|ROLE): expected admin or viewer, got (?P<got>.+)"),
     "Role: %(got)s is neither admin nor viewer: choose one in the list."),
    (re.compile(r"no console user #(?P<id>\d+)"), "There is no console user %(id)s."),
    (re.compile(r"EMAIL: no console user (?P<email>\S+) \(see .*\)"), "There is no console user %(email)s."),
    # the suppression list's import: one refused line each (the page names the line)
    (re.compile(r"channel: expected email or sms, got (?P<got>.+)"),
     "Column “channel”: %(got)s is neither email nor sms: write email or sms, or leave it empty."),
    (re.compile(r"channel sms does not fit a value that looks like email"),
     "Column “channel”: sms does not fit an email address: write email, or leave it empty."),
    (re.compile(r"channel email does not fit a value that looks like sms"),
     "Column “channel”: email does not fit a phone number: write sms, or leave it empty."),
    (re.compile(r"reason: expected one of (?P<known>.+), got (?P<got>.+)"),
     "Column “reason”: %(got)s is not a known reason: write one of %(known)s, or leave it empty."),
    # a campaign file's keys (CampaignPlan.from_mapping)
    (re.compile(PLAN + r"unknown key '(?P<key>[^']+)' \(expected one of (?P<allowed>.+)\)"),
     "Unknown key “%(key)s” in the campaign file: check its spelling (the keys are %(allowed)s)."),
    (re.compile(PLAN + r"(?P<table>\[audience\]|steps\[\d+\]): unknown key '(?P<key>[^']+)' \(expected one of "
                r"(?P<allowed>.+)\)"),
     "Unknown key “%(key)s” in %(table)s: check its spelling (the keys are %(allowed)s)."),
    (re.compile(r"the launch time (?P<at>\S+) is not in the future; to launch now: reconsent campaign launch \d+"),
     "The launch time %(at)s is not in the future: to launch now, use “Launch”."),
    (re.compile(r"--at '(?P<text>.*)': expected an ISO 8601 time such as .*"),
     "“%(text)s” is not a date and time: write it as 2026-12-01T09:00."),
    # the campaign form (its fields reach the campaign file's checks, ``where`` = "form")
    (re.compile(PLAN + r"'name' is required \(a non-empty string\)"), "Give the campaign a name."),
    (re.compile(PLAN + r"'deadline_days' must be a whole number > 0 and ≤ (?P<most>\d+), got .*"),
     "Deadline: a whole number of days, from 1 to %(most)s."),
    (re.compile(PLAN + r"\[audience\] kinds must be a list of 'customer'/'prospect'"),
     "Tick customers, prospects or both."),
    (re.compile(PLAN + r"\[audience\] customer_inactive_months must be a whole number > 0 and ≤ (?P<most>\d+), "
                r"got .*"), "Customers: months without activity: a whole number from 1 to %(most)s."),
    (re.compile(PLAN + r"\[audience\] prospect_inactive_months must be a whole number > 0 and ≤ (?P<most>\d+), "
                r"got .*"), "Prospects: months without activity: a whole number from 1 to %(most)s."),
    (re.compile(PLAN + r"at least one \[\[steps\]\] entry is required"),
     "Add at least one step: a row with a template."),
    (re.compile(PLAN + r"steps\[\d+\]: 'day' must be a whole number ≥ 0, got .*"),
     "A step’s day is a whole number, 0 or more."),
    (re.compile(PLAN + r"steps\[\d+\]: 'day' = (?P<day>\d+) is not before the deadline \(deadline_days = "
                r"(?P<deadline>\d+)\)"),
     "The step of day %(day)s is not before the deadline (%(deadline)s days): move it earlier or give more days."),
    (re.compile(PLAN + r"steps\[\d+\]: 'channel' must be 'email' or 'sms', got .*"),
     "A step’s channel is email or SMS."),
    (re.compile(PLAN + r"steps must be in order of 'day'"), "Put the steps in the order of their day."),
]
#: words a pattern's groups carry that have a French name (campaign states)
_WORDS = ("draft", "scheduled", "running", "paused", "completed")


def say(text: str, _: Callable[..., str]) -> tuple[str, bool]:
    """(the line in the language of ``_``, translated?).

    >>> from preference_centre.admin.i18n import gettext_for
    >>> say("x.csv: cannot read: Permission denied", gettext_for("fr"))[0]
    'Impossible de lire le fichier (accès refusé)\\xa0: téléversez-le à nouveau.'
    >>> say("something new", gettext_for("fr"))
    ('something new', False)
    """
    for pattern, message in PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        values = {}
        for key, value in match.groupdict().items():
            if key == "rest":
                value = say(value, _)[0]
            elif key in ("why", "detail"):
                value = explain(value, _)
            elif value in _WORDS:
                value = _(value)
            values[key] = value
        return _(message, **values), True
    where, message, done = translate_line(text, _)
    if done:
        return (f"{place(where, _)} — {message}" if where else message), True
    return text, False


#: a template problem's place as the checks write it (``template 'x', fr/sms.txt line 3``)
_PLACE = re.compile(r"(?P<pre>.*?)template '(?P<name>[^']+)'(?:, (?P<part>[\w./-]+)(?: line (?P<line>\d+))?| \("
                    r"(?P<locale>[\w-]+), version (?P<version>\w+)\))")


def place(where: str, _: Callable[..., str]) -> str:
    """``where`` in the language of ``_`` when it is a template's part and line; else as written
    (and as written in English: the checks' own words).

    >>> from preference_centre.admin.i18n import gettext_for
    >>> place("template 'promo', fr/sms.txt line 3", gettext_for("fr"))
    'modèle «\xa0promo\xa0», fr/sms.txt, ligne\xa03'
    >>> place("template 'promo', fr/sms.txt line 3", gettext_for("en"))
    "template 'promo', fr/sms.txt line 3"
    """
    match = _PLACE.fullmatch(where)
    if match is None:
        return where
    message = "template “%(name)s” (%(locale)s, version %(version)s)" if match["version"] else \
        "template “%(name)s”, %(part)s, line %(line)s" if match["line"] else "template “%(name)s”, %(part)s"
    if _(message) == message:
        return where
    return match["pre"] + _(message, **{k: v for k, v in match.groupdict().items() if k != "pre"})


def gettext_for(lang: str) -> Callable[..., str]:
    """The console's ``_()``: the catalog's translation; in French, a line that is no message id
    (a service's message handed to a page) is translated by :func:`say`."""
    table = catalog(lang)
    plain = translator(table)
    if lang == "en":
        return plain

    def _(text: str, **values: object) -> str:
        if values or text in table:
            return plain(text, **values)
        return say(text, plain)[0]

    return _
