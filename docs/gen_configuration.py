"""Regenerate the settings table of docs/configuration.md from orchestrator/config.py.

    python docs/gen_configuration.py > docs/configuration.md
"""

from __future__ import annotations

from orchestrator.choices_settings import PARTNERS_DOC, TOPICS_DOC
from orchestrator.config import allowed, settings

HEAD = """# Configuration reference

Reconsent reads one TOML file: the one given by `--config PATH`, else by `RECONSENT_CONFIG`, else
`reconsent.toml` in the current directory (an instance folder made by `reconsent init`), else the
shipped defaults (`config/default.toml` in the repository, inside the installed package). Relative
paths in a config file (database, outboxes, DKIM key, evergreen campaign file) resolve from the folder
of that file; with the shipped defaults, from the current directory; `RECONSENT_HOME` sets that folder
explicitly. Settings a file leaves out take the defaults listed below.

In a file you write yourself, secrets would be readable by whoever reads the file: `reconsent init`
writes fresh random ones into a `reconsent.toml` readable by its owner only; production keeps them in
the environment.

Every setting can be overridden by an environment variable `RECONSENT_<SECTION>__<KEY>`, e.g.
`RECONSENT_EMAIL__HOST=smtp.example.fr`. Give secrets that way, never in the file:
`RECONSENT_SECURITY__SIGNING_KEYS`, `RECONSENT_SECURITY__SUPPRESSION_KEY`,
`RECONSENT_EMAIL__PASSWORD`, `RECONSENT_SMS__AUTH_TOKEN`. Lists are given comma-separated or as JSON
(`RECONSENT_SECURITY__SIGNING_KEYS="new-key,old-key"`); booleans as true/false.

`RECONSENT_NOW` (ISO 8601, e.g. `2026-12-01T09:00:00Z`) freezes the clock for every command.

An invalid or missing setting stops the command (exit code 1) with one line naming the file or
environment variable, the key, the value and what is expected; the last column says what each setting
allows (numbers: the inclusive range; time zones: a name of the IANA database such as `Europe/Paris`):

    reconsent.toml: server.port: expected 1 to 65535, got -1

| setting | default | what it does | allowed |
|---|---|---|---|
"""


CHOICES = f"""

## What people can choose: `[[topics]]` and `[[partners]]`

Two top-level arrays of tables (not sections): none by default. Each entry's `id` names its ledger
purpose; the labels and purposes are given for every language the pages ship in (French and
English). An invalid entry stops the command with one line naming it and the field, e.g.
`reconsent.toml: partners[2] "newco".privacy_url: expected the https URL of the partner's privacy policy`.
See docs/preference-centre.md.

| array | default | what it does |
|---|---|---|
| `[[topics]]` | `[]` | {TOPICS_DOC} |
| `[[partners]]` | `[]` | {PARTNERS_DOC} |

```toml
[[topics]]
id = "news"
fr = "Nouveautés"
en = "News"

[[partners]]
id = "transport-express"
name = "Transport Express SA"
purpose_fr = "vous proposer ses offres de livraison"
purpose_en = "offer you its delivery services"
privacy_url = "https://transport-express.example/confidentialite"
```
"""


def main() -> None:
    rows = []
    for section, key, default, doc in settings():
        shown = repr(default) if not isinstance(default, str) else f'"{default}"'
        rows.append(f"| `{section}.{key}` | `{shown}` | {doc} | {allowed(section, key)} |")
    print(HEAD + "\n".join(rows) + CHOICES)


if __name__ == "__main__":
    main()
