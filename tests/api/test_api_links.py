"""A fresh preference-page link for one person, asked by the company's system (issue 17 §2): it opens
that person's page on the real server; unknown or anonymised contacts get a problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx2

from tests.api.conftest import Api, new_token
from tests.api.test_api_campaigns import problem_of
from tests.support.factories import launch, person


def test_a_fresh_link_opens_the_persons_page(api: Api, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(api.rt, write_csv([person(1)]))
    with api.client(new_token(api.rt, "write")) as http:
        made = http.post("/contacts/C-1/links", json={"campaign_id": campaign_id, "channel": "email"})
        assert made.status_code == 201, made.text
        links = made.json()
        assert links["page_url"].startswith("https://prefs.example.com/p/") and links["expires_at"].endswith("Z")
        assert person(1)["email"] not in links["page_url"] and "C-1" not in links["page_url"]
        problem_of(http.post("/contacts/C-404/links"), 404)
        problem_of(http.post("/contacts/C-1/links", json={"campaign_id": 999}), 404)
        problem_of(http.post("/contacts/C-1/links", json={"channel": "fax"}), 422)
        assert http.post("/contacts/C-1/links").status_code == 201  # no body: a link outside any campaign
    path = links["page_url"].removeprefix("https://prefs.example.com")
    page = httpx2.get(api.url + path, headers={"accept-language": "en"})
    assert page.status_code == 200 and person(1)["first_name"] in page.text
    with api.client(new_token(api.rt, "read", "reader")) as reader:
        problem_of(reader.post("/contacts/C-1/links"), 403)
