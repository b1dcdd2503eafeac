"""The records of bounce evidence: what a bounce says, and what it means for us."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """One failed (or delayed) recipient of one returned message or log line.

    Text fields are "" when the bounce does not say. `diagnostic` is the receiver's reply,
    unfolded to one line; `remote_mta` its host name or [address] as the bounce gives it.
    """

    recipient: str
    action: str = ""  # failed | delayed | relayed | expanded… (RFC 3464), lower case
    status: str = ""  # RFC 3463 enhanced status, e.g. "5.7.1"
    reply_code: str = ""  # SMTP reply code, e.g. "550"
    remote_mta: str = ""
    diagnostic: str = ""
    command: str = ""  # the SMTP command that failed: CONN, EHLO, MAIL, RCPT, DATA…
    date: datetime | None = None
    message_id: str = ""  # the original message's Message-ID, when the bounce carries it
    source: str = ""  # where it was read: a file path, "mbox:N", "maillog:LINE"
    format: str = ""  # the detector that read it: rfc3464, postfix-log, exim, qmail…


class BounceVerdict(enum.StrEnum):
    LISTED = "listed"  # our IP or domain is on a named list
    REPUTATION = "reputation"  # a reputation block or deferral without a named list
    RECEIVER_ERROR = "receiver-error"  # the receiver's own DNSBL query failed: not about us
    OTHER = "other"  # not about blocklists


class Layer(enum.StrEnum):
    """Which layer of attribution decided (blmonitor/bounces/attribution.py)."""

    RULE = "rule"  # a specific rule of lists/bounces.toml: the wording was seen before
    LEXICON = "lexicon"  # a list named (lists/names.toml, the catalog) near block wording
    GENERIC = "generic"  # block wording with no name: a list the receiver does not name


class Confidence(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ListKind(enum.StrEnum):
    PUBLIC_DNSBL = "public-dnsbl"  # a public DNS block list (Spamhaus, SpamCop, Barracuda…)
    PROVIDER_PRIVATE = "provider-private"  # a receiver's own list (Microsoft S3150, Yahoo BL…)
    PROVIDER_REPUTATION = "provider-reputation"  # a receiver's reputation system
    RECIPIENT_LIST = "recipient-list"  # the recipient's own block list (a tenant, a filter)
    DOMAIN_LIST = "domain-list"  # a list of domains rather than IPs


@dataclass(frozen=True, slots=True)
class Attribution:
    """What a rejection text means for us: which list, for which address, what to do."""

    verdict: BounceVerdict
    list: str = ""  # the zone when there is one, else a stable id such as "microsoft-s3150"
    zone: str = ""  # a DNS zone of the catalog, when the text names one
    provider: str = ""  # Microsoft, Gmail, Yahoo, Spamhaus…
    kind: ListKind | None = None
    temporary: bool = False  # a 4xx deferral rather than a 5xx rejection
    listed_ip: str = ""  # only from the slots that name it, never a remote MX or a code
    listed_domain: str = ""
    delist_url: str = ""
    reason: str = ""  # in plain words, for a person
    rule: str = ""  # the id of the pattern that decided, for debugging and tests
    layer: Layer | None = None  # which layer decided; None: none found anything
    confidence: Confidence | None = None  # high (rule), medium (lexicon), low (generic)
