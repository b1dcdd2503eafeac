"""[core] Gmail Postmaster Tools' TrafficStats → our records: which days to ask for, what one
day's answer says of our domains and addresses, what an error answer means, and the text and
JSON of one poll. No I/O: `sources/gmail.py` fetches.

The JSON shape is the published `TrafficStats` resource of the Postmaster Tools API v1
(tests/data/gmail/README.md cites it): `domainReputation` and `ipReputations[].reputation` are
a ReputationCategory (HIGH, MEDIUM, LOW, BAD, REPUTATION_CATEGORY_UNSPECIFIED), the ratios are
numbers from 0 to 1, `deliveryErrors[]` holds {errorClass, errorType, errorRatio}.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from blmonitor.models import Verdict
from blmonitor.sources.models import (
    Rating,
    ReputationRecord,
    SourceListing,
    SourceResult,
)

SOURCE = "gmail"
PROVIDER = "Gmail"
NAME = "Gmail Postmaster"  # how messages name the source
POSTMASTER_URL = "https://postmaster.google.com/"
UNKNOWN_HINT = "add and verify it in Postmaster Tools (" + POSTMASTER_URL + ")"
LOGIN_HINT = "run `blmonitor gmail-postmaster login` again"

RATINGS = {
    "HIGH": Rating.GOOD,
    "MEDIUM": Rating.FAIR,
    "LOW": Rating.POOR,
    "BAD": Rating.BAD,
    "REPUTATION_CATEGORY_UNSPECIFIED": Rating.UNKNOWN,
}
_WORST_FIRST = (Rating.BAD, Rating.POOR, Rating.FAIR, Rating.GOOD, Rating.UNKNOWN)

# The delivery errors that say a public blocklist holds us: Gmail's own words for a listing.
RBL_ERRORS = {
    "IP_IN_RBL": ("gmail-ip-in-rbl", "a sending IP is on a public blocklist"),
    "DOMAIN_IN_RBL": ("gmail-domain-in-rbl", "the domain is on a public blocklist"),
}
NO_DATA = "no data for the last two days: Gmail shows a day only when enough mail reached Gmail"
RBL_ROUTE = "`blmonitor check` names the lists; ask each of them to delist you"

FIGURES = ("userReportedSpamRatio", "userReportedSpamRatioLowerBound",
           "userReportedSpamRatioUpperBound", "spfSuccessRatio", "dkimSuccessRatio",
           "dmarcSuccessRatio", "outboundEncryptionRatio", "inboundEncryptionRatio")  # fmt: skip

# An API-wide refusal (not about one domain) in a google.rpc.ErrorInfo `reason`.
_PROJECT_REASONS = {
    "SERVICE_DISABLED": "the Gmail Postmaster Tools API is not enabled in the Google Cloud "
    "project of the OAuth client: enable it in the console's API Library",
    "ACCESS_TOKEN_SCOPE_INSUFFICIENT": "the login did not grant the postmaster.readonly scope: "
    + LOGIN_HINT,
}
_WORD = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class MalformedStats(ValueError):
    """An answer that is not the published TrafficStats shape; the message says where."""


# --- which days ------------------------------------------------------------------------------


def days_to_ask(now: datetime) -> tuple[date, date]:
    """Yesterday, then the day before (UTC dates).

    Postmaster Tools publishes a day one to two days late: yesterday is asked first, and when it
    is not there yet (404), the day before. Older days are not looked at: the monitor polls
    every 12 hours by default, so each published day is seen.
    """
    today = now.date() if now.tzinfo is None else now.astimezone(UTC).date()
    return today - timedelta(days=1), today - timedelta(days=2)


def stats_path(domain: str, day: date) -> str:
    """The TrafficStats resource of one domain and day, relative to the API's base URL."""
    return f"v1/domains/{domain}/trafficStats/{day:%Y%m%d}"


def domain_path(domain: str) -> str:
    return f"v1/domains/{domain}"


# --- one day's answer ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainDay:
    """What one domain's TrafficStats of one day says."""

    domain: str
    day: date
    domain_record: ReputationRecord
    ip_records: tuple[ReputationRecord, ...]
    listings: tuple[SourceListing, ...]


def parse_stats(data: object, *, domain: str, day: date, targets: Sequence[str]) -> DomainDay:
    """One TrafficStats answer → the domain's record, our addresses' records (those of
    `targets`, IPs or CIDR blocks, found in `ipReputations[].sampleIps`) and the blocklist
    listings its delivery errors name. MalformedStats when the shape is not the published one.
    """
    if not isinstance(data, Mapping):
        raise MalformedStats("not a JSON object")
    figures = [(name, _ratio(data, name)) for name in FIGURES if name in data]
    errors = _delivery_errors(data.get("deliveryErrors", []))
    figures += [(f"deliveryErrors.{cls}.{kind}", f"{ratio:g}") for cls, kind, ratio in errors]
    raw = _category(data.get("domainReputation", "REPUTATION_CATEGORY_UNSPECIFIED"),
                    "domainReputation")  # fmt: skip
    rating = RATINGS.get(raw, Rating.UNKNOWN)
    record = ReputationRecord(source=SOURCE, subject=domain, day=day, rating=rating, raw=raw,
                              figures=tuple(figures), note=_domain_note(rating, raw))  # fmt: skip
    return DomainDay(domain, day, record, _ip_records(data, domain, day, targets),
                     _listings(errors, domain, day))  # fmt: skip


def _ratio(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedStats(f"{name} is not a number")
    return f"{value:g}"


def _category(value: object, where: str) -> str:
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        raise MalformedStats(f"{where} is not a reputation category")
    return value


def _delivery_errors(value: object) -> list[tuple[str, str, float]]:
    if not isinstance(value, list):
        raise MalformedStats("deliveryErrors is not a list")
    out = []
    for number, item in enumerate(value, 1):
        if not isinstance(item, Mapping):
            raise MalformedStats(f"deliveryErrors item {number} is not an object")
        cls, kind = item.get("errorClass", "UNSPECIFIED"), item.get("errorType", "UNSPECIFIED")
        ratio = item.get("errorRatio", 0)
        if not (isinstance(cls, str) and _WORD.fullmatch(cls)
                and isinstance(kind, str) and _WORD.fullmatch(kind)):  # fmt: skip
            raise MalformedStats(f"deliveryErrors item {number} has no errorClass/errorType")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            raise MalformedStats(f"deliveryErrors item {number}: errorRatio is not a number")
        out.append((cls, kind, float(ratio)))
    return out


def _domain_note(rating: Rating, raw: str) -> str:
    if rating is Rating.UNKNOWN:
        return f"Gmail gives no domain reputation for the day ({raw})"
    return f"Gmail rates the domain's reputation {raw}"


def _ip_records(
    data: Mapping[str, Any], domain: str, day: date, targets: Sequence[str]
) -> tuple[ReputationRecord, ...]:
    groups = data.get("ipReputations", [])
    if not isinstance(groups, list):
        raise MalformedStats("ipReputations is not a list")
    ours = _networks(targets)
    records = []
    for number, group in enumerate(groups, 1):
        if not isinstance(group, Mapping):
            raise MalformedStats(f"ipReputations item {number} is not an object")
        raw = _category(group.get("reputation", "REPUTATION_CATEGORY_UNSPECIFIED"),
                        f"ipReputations item {number} reputation")  # fmt: skip
        samples = group.get("sampleIps", [])
        if not isinstance(samples, list) or not all(isinstance(s, str) for s in samples):
            raise MalformedStats(f"ipReputations item {number}: sampleIps is not a list of IPs")
        count = group.get("ipCount", "")
        rating = RATINGS.get(raw, Rating.UNKNOWN)
        for ip in samples:
            if _is_ours(ip, ours):
                note = f"Gmail puts this IP among the {raw} IPs of {domain}'s mail"
                records.append(ReputationRecord(
                    source=SOURCE, subject=ip, day=day, rating=rating, raw=raw,
                    figures=(("domain", domain), ("ipCount", str(count))), note=note,
                ))  # fmt: skip
    return tuple(records)


def _networks(targets: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for target in targets:
        try:
            out.append(ipaddress.ip_network(target.strip(), strict=False))
        except ValueError:
            continue  # a domain target: Gmail rates addresses, not names, in ipReputations
    return out


def _addresses(targets: Sequence[str]) -> tuple[str, ...]:
    """The IP and CIDR targets, as given (a domain target is not what ipReputations rates)."""
    return tuple(t for t in targets if _networks([t]))


def _is_ours(ip: str, ours: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in ours)


_ANY = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def _listings(
    errors: Iterable[tuple[str, str, float]], domain: str, day: date
) -> tuple[SourceListing, ...]:
    found: dict[str, list[tuple[str, float]]] = {}
    for cls, kind, ratio in errors:
        if kind in RBL_ERRORS and ratio > 0:
            found.setdefault(kind, []).append((cls, ratio))
    listings = []
    for kind, seen in found.items():
        list_id, words = RBL_ERRORS[kind]
        share = sum(ratio for _, ratio in seen)
        classes = ", ".join(f"{cls} {ratio:.2%}" for cls, ratio in seen)
        listings.append(SourceListing(
            target=domain, list=list_id, provider=PROVIDER,
            reason=f"Gmail refused {share:.2%} of {domain}'s mail on {day}: {words} ({kind})",
            detail=f"{kind} on {day:%Y-%m-%d}: {classes}; {RBL_ROUTE}",
        ))  # fmt: skip
    return tuple(listings)


# --- one poll --------------------------------------------------------------------------------


def merge(
    days: Sequence[DomainDay], *, fetched: datetime, unknown: Sequence[str],
    no_data: Sequence[tuple[str, date]] = (), targets: Sequence[str] = (),
) -> SourceResult:  # fmt: skip
    """The poll's result: every domain's record, one record per address (the worst rating when
    several domains' mail saw it), the listings. `no_data` (a known domain with no day
    published, too little mail to Gmail) gives an UNKNOWN record; `unknown` the domains the
    API does not know.

    Checked are the domains read and, when one was, our IP `targets` (looked for in its
    sampled IPs): a domain without a day, or unknown, says nothing — it never ends a listing.
    """
    records = [d.domain_record for d in days]
    records += [ReputationRecord(source=SOURCE, subject=domain, day=day, rating=Rating.UNKNOWN,
                                 note=NO_DATA) for domain, day in no_data]  # fmt: skip
    by_ip: dict[str, list[ReputationRecord]] = {}
    for each in days:
        for record in each.ip_records:
            by_ip.setdefault(record.subject, []).append(record)
    for ip, seen in by_ip.items():
        worst = min(seen, key=lambda r: _WORST_FIRST.index(r.rating))
        domains = ", ".join(sorted({dict(r.figures)["domain"] for r in seen}))
        records.append(ReputationRecord(
            source=SOURCE, subject=ip, day=max(r.day for r in seen), rating=worst.rating,
            raw=worst.raw, figures=(("domains", domains),),
            note=f"Gmail puts this IP among the {worst.raw} IPs of {domains}'s mail",
        ))  # fmt: skip
    return SourceResult(
        source=SOURCE, fetched=fetched,
        listings=tuple(listing for d in days for listing in d.listings),
        reputation=tuple(records), unknown=tuple(unknown), unknown_hint=UNKNOWN_HINT,
        checked=(*(d.domain for d in days), *(_addresses(targets) if days else ())),
    )  # fmt: skip


def failed(fetched: datetime, message: str) -> SourceResult:
    """A poll that could not read the source: nothing in it says anything."""
    return SourceResult(source=SOURCE, fetched=fetched, error=f"{NAME}: {message}")


# --- error answers ---------------------------------------------------------------------------


def api_reason(body: object) -> str:
    """The google.rpc.ErrorInfo `reason` of an API error body ("" when none)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    for item in details if isinstance(details, list) else []:
        reason = item.get("reason") if isinstance(item, Mapping) else None
        if isinstance(reason, str) and _WORD.fullmatch(reason):
            return reason
    return ""


def project_problem(status: int, body: object) -> str:
    """Why a 403 is the project's or the login's, not one domain's ("" when it is the domain's)."""
    return _PROJECT_REASONS.get(api_reason(body), "") if status == 403 else ""


def api_problem(domain: str, status: int) -> str:
    """One line for an API answer that stops the poll (any status but 200, 403, 404)."""
    if status == 401:
        return f"the API refused the access token (HTTP 401) for {domain}: {LOGIN_HINT}"
    if status == 429:
        return (f"the API is rate limiting us (HTTP 429) for {domain}: try later, or raise "
                "[gmail_postmaster] interval")  # fmt: skip
    if status >= 500:
        return f"the API failed (HTTP {status}) for {domain}: Google's side, try later"
    return f"the API answered HTTP {status} for {domain}"


def token_problem(error: str, status: int | None) -> str:
    """One line for a refresh the token endpoint refused. `error` is its OAuth error code
    (RFC 6749 §5.2), never its description: that could echo what was sent."""
    code = error if _WORD.fullmatch(error) else ""
    if code == "invalid_grant":
        return f"the refresh token was refused (invalid_grant): {LOGIN_HINT}"
    if code in ("invalid_client", "unauthorized_client"):
        return (f"the token endpoint refused the OAuth client ({code}): the client was deleted "
                f"or its secret reset; {LOGIN_HINT} with the current client secrets")  # fmt: skip
    if status == 200:
        return f"the token endpoint's answer holds no access token: {LOGIN_HINT}"
    if status is not None and (status >= 500 or status == 429):  # retried by google-auth first
        return f"the token endpoint failed (HTTP {status}): Google's side, try later"
    shown = code or (f"HTTP {status}" if status else "no reason given")
    return f"the token endpoint refused to refresh the access token ({shown}): {LOGIN_HINT}"


# --- rendering -------------------------------------------------------------------------------


def render_result(result: SourceResult) -> str:
    """A poll as text, for `gmail-postmaster show`."""
    if result.error:
        return result.error + "\n"
    lines = []
    for record in sorted(result.reputation, key=lambda r: (_is_ours(r.subject, _ANY), r.subject)):
        lines.append(f"{record.subject}  {record.day}  {record.rating}"
                     + (f" ({record.raw})" if record.raw else "") + f": {record.note}")  # fmt: skip
        lines += [f"    {name} = {value}" for name, value in record.figures]
    for listing in result.listings:
        lines.append(f"{listing.target}  LISTED {listing.list}: {listing.reason}")
        lines.append(f"    {listing.detail}")
    lines += [f"{domain}  unknown to Gmail Postmaster Tools: {UNKNOWN_HINT}"
              for domain in result.unknown]  # fmt: skip
    if not lines:
        lines.append(f"{NAME}: no domain to read: set [gmail_postmaster] domains")
    return "\n".join(lines) + "\n"


def result_json(result: SourceResult) -> dict[str, Any]:
    return {
        "source": result.source,
        "fetched": result.fetched.isoformat(),
        "error": result.error,
        "checked": list(result.checked),
        "unknown": list(result.unknown),
        "listings": [
            {"target": x.target, "list": x.list, "provider": x.provider, "reason": x.reason,
             "detail": x.detail, "delist_url": x.delist_url}
            for x in result.listings
        ],
        "reputation": [
            {"subject": r.subject, "day": r.day.isoformat(), "rating": str(r.rating),
             "raw": r.raw, "figures": dict(r.figures), "note": r.note}
            for r in result.reputation
        ],
    }  # fmt: skip


def verdict(result: SourceResult) -> Verdict:
    """LISTED for a listing or a LOW/BAD rating; UNKNOWN when the source or a domain was not
    read; else CLEAN."""
    if result.error:
        return Verdict.UNKNOWN
    if result.listings or any(r.rating in (Rating.POOR, Rating.BAD) for r in result.reputation):
        return Verdict.LISTED
    return Verdict.UNKNOWN if result.unknown else Verdict.CLEAN
