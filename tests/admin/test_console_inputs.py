"""Console requests that answered 500 (issue 15): an id beyond any database id, and uploads whose name
is no file name. Each is now a 404 or a 400 in the console's language."""

from __future__ import annotations

import pytest

from tests.admin.conftest import Console

HUGE = "99999999999999999999999"


@pytest.mark.parametrize("path", [f"/admin/campaigns/{HUGE}", f"/admin/campaigns/{HUGE}/funnel",
                                  f"/admin/campaigns/{HUGE}/status.json", f"/admin/campaigns/{HUGE}/preview/0/fr",
                                  f"/admin/campaigns/{2**63}"])
def test_an_id_beyond_any_database_id_is_a_404(admin: Console, path: str) -> None:
    resp = admin.client.get(path)
    assert resp.status_code == 404 and "This page does not exist." in resp.text
    french = admin.client.get(path, headers={"accept-language": "fr"})
    assert french.status_code == 404 and "Cette page n’existe pas." in french.text
    assert admin.post(f"/admin/campaigns/{HUGE}/launch", {"confirm": "yes"}).status_code == 404


@pytest.mark.parametrize("name", ["..", ".", "x" * 300 + ".csv", "../..", "a/.."])
@pytest.mark.parametrize("path", ["/admin/contacts/import", "/admin/suppression/import"])
def test_an_upload_whose_name_is_no_file_name_is_a_400(admin: Console, name: str, path: str) -> None:
    files = {"file": (name, b"email\nperson1@example.org\n", "text/csv")}
    resp = admin.post(path, files=files)  # type: ignore[arg-type]
    assert resp.status_code == 400
    assert "This file name cannot be used. Rename the file (at most 255 characters" in resp.text
    french = admin.client.post(path, data={"csrf": admin.csrf}, files=files, headers={"accept-language": "fr"})
    assert french.status_code == 400 and "Ce nom de fichier est inutilisable" in french.text
