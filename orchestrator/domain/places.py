"""Where a recipient is, for send windows [R9]: their time zone and their holiday region.

The time zone is the contact's ``timezone`` column; without one, the zone of their phone number
(+590 → America/Guadeloupe, +596 → America/Martinique, +594 → America/Cayenne, +262 69 → Indian/Reunion,
+262 639 → Indian/Mayotte, +689 → Pacific/Tahiti…); else the configured default. The holiday
region (a subdivision of the ``holidays`` package for the window's country) comes from the number
where it can (an overseas department's own holidays, such as its abolition-of-slavery day), else from
the contact attribute ``region`` (``Alsace-Moselle``, ``57``, ``67``, ``Moselle``, ``Guadeloupe``…),
else none: the national holidays. Pure rules, no I/O.

>>> place_of("+590690001122", None, None, "Europe/Paris", "FR")
Place(zone='America/Guadeloupe', holiday_region='971', country='GP')
>>> place_of("+33612345678", None, "Alsace-Moselle", "Europe/Paris", "FR")
Place(zone='Europe/Paris', holiday_region='57', country='FR')
>>> place_of(None, "Europe/Brussels", None, "Europe/Paris", "FR")
Place(zone='Europe/Brussels', holiday_region=None, country=None)
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from babel.core import get_global
from phonenumbers import timezone as phone_zones

#: French overseas regions (the phone number's region code) → their zone and the subdivision of the
#: ``holidays`` package for France. phonenumbers alone gives both Reunion and Mayotte for +262.
FRENCH_OVERSEAS = {
    "GP": ("America/Guadeloupe", "971"), "MQ": ("America/Martinique", "972"), "GF": ("America/Cayenne", "973"),
    "RE": ("Indian/Reunion", "974"), "YT": ("Indian/Mayotte", "976"), "PM": ("America/Miquelon", "PM"),
    "BL": ("America/St_Barthelemy", "BL"), "MF": ("America/Marigot", "MF"), "NC": ("Pacific/Noumea", "NC"),
    "PF": ("Pacific/Tahiti", "PF"), "WF": ("Pacific/Wallis", "WF"),
}
#: names people write in a ``region`` column that the holidays package does not know as such
_REGION_NAMES = {"ALSACEMOSELLE": "57", "67": "6AE", "68": "6AE", "BASRHIN": "6AE", "HAUTRHIN": "6AE"}


@dataclass(frozen=True)
class Place:
    zone: str
    #: subdivision of the window's holiday country, or None (national holidays only)
    holiday_region: str | None
    #: ISO region of the phone number (FR, GP, GB…), None without a valid number
    country: str | None


def place_of(phone: str | None, timezone: str | None, region: str | None, default_zone: str,
             holiday_country: str | None) -> Place:
    """The recipient's :class:`Place` (see the module's docstring)."""
    country, number_zone = _number_place(phone or "")
    zone = (timezone or "").strip() or number_zone or default_zone
    holiday_region = None
    if holiday_country:
        from_number = FRENCH_OVERSEAS.get(country or "", (None, None))[1] if holiday_country == "FR" else None
        holiday_region = from_number or holiday_subdivision(holiday_country, region)
    return Place(zone, holiday_region, country)


def phone_country(phone: str | None) -> str | None:
    """The ISO region of an E.164 number ('+590690001122' → 'GP'), None when it tells none."""
    return _number_place(phone or "")[0]


def same_numbering(country: str | None, home: str) -> bool:
    """Whether a number of ``country`` is reached by ``home``'s national short codes: the home
    country itself and, for France, its overseas regions (one numbering plan). Unknown: yes.

    >>> same_numbering("GP", "FR"), same_numbering("GB", "FR"), same_numbering(None, "FR")
    (True, False, True)
    """
    return country is None or country == home or (home == "FR" and country in FRENCH_OVERSEAS)


@lru_cache(maxsize=8192)
def _number_place(phone: str) -> tuple[str | None, str | None]:
    """(region code, time zone) of an E.164 number; None for what the number does not tell.

    >>> _number_place("+262692001122"), _number_place("+262639001122")[1]
    (('RE', 'Indian/Reunion'), 'Indian/Mayotte')
    >>> _number_place("+447400123456"), _number_place("not a number")
    (('GB', 'Europe/London'), (None, None))
    """
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None, None
    country = phonenumbers.region_code_for_number(number)
    if country in FRENCH_OVERSEAS:
        return country, FRENCH_OVERSEAS[country][0]
    zones = [z for z in phone_zones.time_zones_for_number(number) if z != phone_zones.UNKNOWN_TIMEZONE]
    if not zones or not _same_clock(zones):
        return country, None
    # one clock, several names (a UK mobile: Guernsey, Isle of Man, Jersey, London): the country's own zone
    own = territory_zones().get(country or "", ())
    return country, next((z for z in zones if z in own), zones[0])


@lru_cache(maxsize=1)
def territory_zones() -> dict[str, tuple[str, ...]]:
    """Each country's time zones (CLDR, through Babel): ``GB`` → ``('Europe/London',)``."""
    return {country: tuple(zones) for country, zones in get_global("territory_zones").items()}


def _same_clock(zones: list[str]) -> bool:
    """Whether these zones keep the same time in winter and in summer (a UK mobile number gives
    London, Jersey, Guernsey and the Isle of Man: one clock; a Brazilian one gives several clocks)."""
    samples = [datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC)]
    try:
        return len({tuple(at.astimezone(ZoneInfo(z)).utcoffset() for at in samples) for z in zones}) == 1
    except (ZoneInfoNotFoundError, ValueError):
        return False


@lru_cache(maxsize=512)
def holiday_subdivision(country: str, region: str | None) -> str | None:
    """The subdivision of ``country`` that ``region`` names (its code, a name the holidays package
    knows, or one of :data:`_REGION_NAMES`), else None.

    >>> holiday_subdivision("FR", "moselle"), holiday_subdivision("FR", "67"), holiday_subdivision("FR", "Paris")
    ('57', '6AE', None)
    """
    if not region or not region.strip():
        return None
    try:
        known = holidays.country_holidays(country)
    except NotImplementedError:
        return None
    wanted = region.strip()
    codes = {str(code).upper(): str(code) for code in known.subdivisions}
    aliases = {_squeeze(alias): str(code) for code, names in known.get_subdivision_aliases().items()
               for alias in names}
    if wanted.upper() in codes:
        return codes[wanted.upper()]
    squeezed = _squeeze(wanted)
    return aliases.get(squeezed) or (_REGION_NAMES.get(squeezed) if country == "FR" else None)


def _squeeze(text: str) -> str:
    """Upper case, letters and digits only, accents dropped: 'La Réunion' → 'LAREUNION'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.upper() if ch.isalnum())
