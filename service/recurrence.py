"""Recurring tasks: RFC 5545 RRULEs, validated and expanded by python-dateutil (no engine of our
own), in the user's time zone so "every Monday 09:00 Europe/Berlin" stays at 09:00 across
daylight-saving changes.

The rule is stored as the client gave it. Expanding it, the completed occurrence's due date is
DTSTART in the user's zone; the next occurrence is the rule's first instance strictly after it,
and its rule has COUNT one less (COUNT=1 was the last one). An UNTIL without `Z` is a local time
of the user's zone (dateutil wants UTC once DTSTART has a zone).
"""
import calendar
import functools
import math
import re
import zoneinfo
from datetime import UTC, datetime, timedelta

from dateutil.rrule import rrulestr

PARTS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "COUNT", "UNTIL", "WKST")
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_LENGTH = 500
HORIZON_YEARS = 10
LONGEST_MONTHS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_UNTIL_LOCAL = re.compile(r"^(\d{8})(T(\d{6}))?$")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_SAMPLE_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday: checks a rule before it has a due date


# Files of a zoneinfo folder that are not zone names: the machine's own zone (a link to
# /etc/localtime, which PostgreSQL 18 does not know) and the POSIX rules template.
NOT_ZONES = frozenset({"localtime", "posixrules"})


@functools.cache
def time_zones():
    """The IANA time zone names this machine knows (the tzdata package stands in for the OS's)."""
    return frozenset(zoneinfo.available_timezones()) - NOT_ZONES


def time_zone(name):
    """`name` when it is an IANA time zone, else ValueError."""
    if not isinstance(name, str) or name not in time_zones():
        raise ValueError("must be an IANA time zone name, such as Europe/Berlin or UTC")
    return name


def _parts(rule):
    """{PART: value} of a rule (`RRULE:` prefix allowed, parts in any case), or ValueError."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:"):]
    parts = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep or not value.strip():
            raise ValueError(f"{item!r} is not NAME=VALUE")
        if key not in PARTS:
            raise ValueError(f"{key} is not supported (use {', '.join(PARTS)})")
        if key in parts:
            raise ValueError(f"{key} is given twice")
        parts[key] = value.strip().upper()
    if parts.get("FREQ") not in FREQUENCIES:
        raise ValueError(f"FREQ must be one of {', '.join(FREQUENCIES)}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL cannot both be given (RFC 5545)")
    if "COUNT" in parts and (not parts["COUNT"].isdigit() or int(parts["COUNT"]) < 1):
        raise ValueError("COUNT must be a whole number >= 1")
    if "INTERVAL" in parts and (not parts["INTERVAL"].isdigit() or int(parts["INTERVAL"]) < 1):
        raise ValueError("INTERVAL must be a whole number >= 1")
    for key, low, high in (("BYMONTHDAY", 1, 31), ("BYMONTH", 1, 12)):
        for value in parts.get(key, "").split(",") if key in parts else ():
            number = value.lstrip("+-")
            if not number.isdigit() or not low <= int(number) <= high or (key == "BYMONTH" and value[0] == "-"):
                raise ValueError(f"{key} values must be {'-31..-1 or ' if key == 'BYMONTHDAY' else ''}{low}..{high}")
    if "BYMONTHDAY" in parts:
        # dateutil searches to the year 9999 for a rule no month can meet: refuse those here.
        months = [int(m) for m in parts["BYMONTH"].split(",")] if "BYMONTH" in parts else range(1, 13)
        days = [abs(int(d)) for d in parts["BYMONTHDAY"].split(",")]
        if not any(day <= LONGEST_MONTHS[month - 1] for month in months for day in days):
            raise ValueError("never occurs: no listed month has such a day")
    if "BYDAY" in parts:
        _check_weekdays(parts)
    return parts


def _weekdays(parts):
    """[(ordinal or None, weekday 0..6)] of BYDAY."""
    return [(int(m[1]) if m[1] else None, WEEKDAYS.index(m[2])) for m in map(_BYDAY.match, parts["BYDAY"].split(","))]


def _check_weekdays(parts):
    """BYDAY's shape, and the ordinals a month (or year) can hold: dateutil searches to the year
    9999 for an ordinal weekday that never comes (6MO, or 1MO on the 15th), about a second."""
    if not all(map(_BYDAY.match, parts["BYDAY"].split(","))):
        raise ValueError("BYDAY values must be MO, TU, WE, TH, FR, SA or SU, with an ordinal (1MO, -1FR) "
                         "in a MONTHLY or YEARLY rule")
    if parts["FREQ"] not in ("MONTHLY", "YEARLY"):
        return
    in_month = parts["FREQ"] == "MONTHLY" or "BYMONTH" in parts  # ordinals count within the month
    days = _weekdays(parts)
    limit = 5 if in_month else 53
    if any(n is not None and not 1 <= abs(n) <= limit for n, _ in days):
        raise ValueError(f"BYDAY ordinals must be 1..{limit} or -{limit}..-1 (never occurs otherwise)")
    if "BYMONTHDAY" in parts and all(n is not None for n, _ in days):
        positions = list(_positions(parts, in_month))
        if not any(_ordinal_on(n, position, length) for n, _ in days for position, length in positions):
            raise ValueError("never occurs: no listed ordinal weekday falls on a listed BYMONTHDAY")


def _positions(parts, in_month):
    """(position, length) of each listed month-day that exists, within its month (or its year),
    in common and leap years."""
    months = [int(m) for m in parts["BYMONTH"].split(",")] if "BYMONTH" in parts else range(1, 13)
    for leap in (0, 1):
        lengths = (31, 28 + leap, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
        for month in months:
            length = lengths[month - 1]
            for day in (int(d) if int(d) > 0 else length + int(d) + 1 for d in parts["BYMONTHDAY"].split(",")):
                if 1 <= day <= length:
                    yield (day, length) if in_month else (sum(lengths[:month - 1]) + day, 365 + leap)


def _ordinal_on(n, position, length):
    """Whether the n-th weekday of a period of `length` days (counted from its end when n < 0)
    can fall on day `position` of it."""
    first = 7 * n - 6 if n > 0 else length + 7 * n + 1
    return first <= position <= first + 6


def _meets(parts, start):
    """Whether the rule's cycle from `start` can reach what it filters on: every INTERVAL=7k days
    fall on the start's weekday, every INTERVAL=k months on some months only, every few years on
    some years only (dateutil would search to the year 9999 for a BYDAY, a BYMONTH or a 29
    February outside them)."""
    interval = int(parts.get("INTERVAL", "1"))
    if parts["FREQ"] == "DAILY" and interval % 7 == 0 and "BYDAY" in parts:
        return start.weekday() in {day for _, day in _weekdays(parts)}
    if parts["FREQ"] == "MONTHLY" and "BYMONTH" in parts and math.gcd(interval, 12) > 1:
        reached = {(start.month - 1 + step * interval) % 12 + 1 for step in range(12)}
        if not reached & {int(month) for month in parts["BYMONTH"].split(",")}:
            return False
    if parts.get("BYMONTH") == "2" and set(parts.get("BYMONTHDAY", "").split(",")) == {"29"}:
        monthly_in_years = parts["FREQ"] == "MONTHLY" and interval % 12 == 0
        years = interval if parts["FREQ"] == "YEARLY" else interval // 12 if monthly_in_years else 0
        if years:  # 29 February: a leap year must be on the cycle
            return start.year % math.gcd(years, 4) == 0
    return True


def _expander(parts, start):
    """dateutil's rrule for `parts` from the aware local `start`, looking HORIZON_YEARS ahead at
    most: a rule that can never match (FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30) would otherwise be
    searched until the year 9999. COUNT is left out: the store counts occurrences itself."""
    parts = {key: value for key, value in parts.items() if key != "COUNT"}
    utc = start.astimezone(UTC)
    year = min(utc.year + HORIZON_YEARS, 9999)
    leap_day_gone = (utc.month, utc.day) == (2, 29) and not calendar.isleap(year)  # 29 Feb + 10 years
    horizon = utc.replace(year=year, day=28 if leap_day_gone else utc.day)
    until = parts.get("UNTIL")
    local = _UNTIL_LOCAL.match(until or "")
    if local:  # a local date or date-time: in the start's zone, then UTC as dateutil requires
        until = datetime.strptime(local[1] + (local[3] or "235959"), "%Y%m%d%H%M%S").replace(tzinfo=start.tzinfo)
    elif until:
        until = datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    parts.pop("UNTIL", None)
    bound = min(until, horizon).astimezone(UTC) if until else horizon
    return _parsed(";".join(f"{key}={value}" for key, value in parts.items())).replace(dtstart=start, until=bound)


@functools.lru_cache(maxsize=1024)
def _parsed(text):
    """The rule `text` (no UNTIL) as dateutil parses it, once; each use replaces its DTSTART and
    UNTIL (rrule.replace rebuilds it from the parts as given, so defaults taken from DTSTART,
    like a weekly rule's weekday, follow the new one)."""
    return rrulestr(text, dtstart=_SAMPLE_START)


def validate(rule, due=None, zone="UTC"):
    """`rule` when dateutil can expand it (from `due`, or a sample start), else ValueError saying why."""
    if not isinstance(rule, str) or not rule.strip():
        raise ValueError("must be an RRULE such as FREQ=WEEKLY;BYDAY=MO,WE")
    if len(rule) > MAX_LENGTH or "\x00" in rule:
        raise ValueError(f"must be at most {MAX_LENGTH} characters")
    parts = _parts(rule)
    start = (due or _sample_start(parts)).astimezone(zoneinfo.ZoneInfo(zone))
    try:
        expander = _expander(parts, start)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"is not a valid RRULE: {error}") from None
    if due is None and expander.after(start, inc=True) is None:
        raise ValueError(f"has no occurrence within {HORIZON_YEARS} years")
    return rule


def _sample_start(parts):
    """A start for checking a rule before it has a due date: the first day from _SAMPLE_START its
    cycle can meet (a rule whose cycle fixes the weekday or the months holds for some due dates)."""
    days = (_SAMPLE_START + timedelta(days=n) for n in range(4 * 366))  # a leap year included
    return next((start for start in days if _meets(parts, start)), _SAMPLE_START)


def next_occurrence(rule, due, zone):
    """(the next due date in UTC, the rule for it) after the occurrence due at `due`, or None when
    the rule has ended."""
    parts = _parts(rule)
    if "COUNT" in parts and int(parts["COUNT"]) <= 1:
        return None
    start = due.astimezone(zoneinfo.ZoneInfo(zone))
    if not _meets(parts, start):
        return None
    following = _expander(parts, start).after(start, inc=False)
    if following is None:
        return None
    return following.astimezone(UTC), _with_count_less(rule)


def _with_count_less(rule):
    """`rule` as given, with its COUNT one less."""
    return re.sub(r"(?i)(^|;|:)(COUNT=)(\d+)", lambda m: f"{m[1]}{m[2]}{int(m[3]) - 1}", rule, count=1)
