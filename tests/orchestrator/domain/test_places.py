"""Where a recipient is: the time zone read from a phone number when the contact has none [R9]."""

from orchestrator.domain.places import place_of


def test_a_uk_mobile_is_on_london_time_under_the_name_london() -> None:
    # phonenumbers gives Guernsey, Isle of Man, Jersey and London for a UK mobile: one clock, but the
    # name shown to operators and stored in exports must be the country's own zone
    assert place_of("+447400123456", None, None, "Europe/Paris", "FR").zone == "Europe/London"


def test_a_number_with_several_clocks_falls_back_to_the_default_zone() -> None:
    # a Spanish mobile may be on the Canaries (one hour behind Madrid): the number does not tell
    assert place_of("+34612345678", None, None, "Europe/Paris", "FR").zone == "Europe/Paris"


def test_the_contact_s_own_time_zone_wins_over_the_number() -> None:
    assert place_of("+447400123456", "Europe/Dublin", None, "Europe/Paris", "FR").zone == "Europe/Dublin"
