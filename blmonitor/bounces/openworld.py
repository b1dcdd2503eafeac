"""The open-world layers of attribution, tried when no specific rule of lists/bounces.toml knows
the wording: a list NAMED near block wording (the lexicon of lists/names.toml and the catalog's
zones; confidence medium), else block wording with no name (the generic grammar of
lists/names.toml in several languages; confidence low), else, last, a text worded like the block
texts the word score learned from (lists/wordscore.json; generic, confidence low). Also the
listed IP and the delist URL read from any IP literal and URL of a text. [core] Pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING

from blmonitor.bounces.lexicon import MAX_WORDS, Lexicon, Name, name_key
from blmonitor.bounces.models import Attribution, BounceVerdict, Confidence, Layer, ListKind
from blmonitor.dnsbl.catalog import DQS_SUFFIX, Catalog
from blmonitor.models import TargetKind, Zone, ZoneKind

if TYPE_CHECKING:
    from blmonitor.bounces.wordscore import WordScore

__all__ = ["attribute_open", "attribute_scored", "find_urls", "named_provider", "sender_ip"]

# RFC 3463 status subjects the word score is never asked about: X.1 addressing, X.2 mailbox,
# X.6 content (of the ~1,100 block texts of the tuned sets, 7 carry one — Comcast's "5.1.0 …
# block for spam", "5.2.1 … blacklisted using SPAMHAUS" — and the layers before read each).
_NOT_ABOUT_US = frozenset({"1", "2", "6"})
# The most matches of one kind looked at in a text: a hostile text of many does not cost more.
_MOST = 24
# How far (characters) an object may stand from weak block wording ("blocked" … "your IP").
_OBJECT_REACH = 60
# How far (characters) after weak wording a list or provider may be named as the blocker
# ("blocked by Verizon Online's …", "Blocked by SpamCop").
_AGENT_REACH = 40
_WORD_RE = re.compile(r"[^\W_]+")
# Host-like runs; checked after the match (a dot, a final label of letters). Linear.
_HOSTISH_RE = re.compile(r"(?<![a-z0-9.-])[a-z0-9][a-z0-9.-]{2,252}", re.IGNORECASE)
# (a host may hold underscores: placeholders such as "recipient_domain" stand for one)
_URL_RE = re.compile(
    r"\b(?:https?:// ?|www\.)[a-z0-9_.-]{1,253}(?::\d{1,5})?(?:[/?#][^\s<>\"'()\[\]{}|]{0,500})?",
    re.IGNORECASE,
)
_LOOKUP_WORDS_RE = re.compile(
    r"ip=|query|lookup|remov|delist|reset|check|black|block|rbl|reput|listed|/bl\b|\bbl\.|"
    r"ipcheck|rbl|search|verify",
    re.IGNORECASE,
)
# A URL that is itself a lookup of an address on a block list no lexicon knows: a page named
# for denied or listed IPs ("/denyip.php?IP=", "/blacklist/check?ip=") or a list's script
# ("/sbl.phtml?IP=", "/rbl.cgi?ip="), queried with an address.
_LISTING_URL_RE = re.compile(
    r"(?:(?:deny|black|block|ban)[-_]?(?:ip|list|host)s?\b|/(?:[a-z]{0,3}bl|rbl|dnsbl)\.[a-z]{2,6}(?=\?))"
    r"[^\s]{0,200}?[?&](?:ip|ip_?address|addr|address|host|query)=",
    re.IGNORECASE,
)
_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\w)")
# (also after RFC 5321's "IPv6:" tag of an address literal: "[IPv6:2001:db8::5]")
_IPV6_RE = re.compile(
    r"(?:(?<=ipv6:)|(?<![\w:.]))[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])", re.IGNORECASE
)
# Before a status code such as Yahoo's "421 4.16.55.1" (an IPv4 literal in shape), or a version.
_CODE_BEFORE_RE = re.compile(r"(?:#|\b(?:status|code|version|release|ver\.?|v)\s?)$", re.IGNORECASE)
# A reply code (or the text's start) before a literal: a status code when the literal starts
# with a status class ("421 4.16.55.1"), else an address ("554 192.0.2.15 has been blocked").
_REPLY_BEFORE_RE = re.compile(r"(?:^|\b[245]\d\d[ -])$")
# The sending MTA's framing of the receiver: "host mx.example.net[198.51.100.1] said:",
# "host mx.example.net [198.51.100.1]: 550 …", "Remote host 198.51.100.1 said:" — that IP is
# the receiving MTA's, never ours ("Client host [192.0.2.1] blocked" is not such a frame).
_FRAME_BEFORE_RE = re.compile(
    r"(?<!client )(?<!sending )(?<!your )(?<!source )(?<!sender )(?<!connecting )"
    r"\bhost\s(?:'?[a-z0-9][a-z0-9.-]{0,252}'?\s?)?\[?$",
    re.IGNORECASE,
)
# What closes the frame after the receiver's address: "said", or Postfix's greeting refusal
# ("host mx.example.net[198.51.100.1] refused to talk to me:"); one for both frame patterns.
_FRAME_VERB = r"said\b|refused to talk to me\b"
# (a port after the address, a quoted-printable "=" left before "said")
_FRAME_AFTER_RE = re.compile(rf"\]?(?::\d{{1,5}})?\s?=?(?::\s|{_FRAME_VERB})", re.IGNORECASE)
_CLIENT_PORT_RE = re.compile(r"\]:\d{1,5}\b")
# An address a lookup URL asks about: "?ip=192.0.2.1", "search?q=…", "/query/ip/…": listed.
_URL_IP_BEFORE_RE = re.compile(
    r"(?:[?&](?:ip|ipaddr|ip_?address|addr|address|host|q|query|search|searchterm|v)=\[?|"
    r"/(?:ip|bl|query|lookup|check)/)$",
    re.IGNORECASE,
)
_SENDER_CUE_RE = re.compile(
    r"(?:client|from|your|sender|sending|source|connecting|\bip|host|address|remote|mta|"
    r"listed|blocked|\[)[^\w]{0,4}(?:\w+[^\w]{1,3}){0,3}$",
    re.IGNORECASE,
)
# Weak verbs that say why on their own: "The sender 192.0.2.1 is banned".
_LISTED_VERB_RE = re.compile(r"(?:banned|black-?listed|block-?listed|barred)$", re.IGNORECASE)
# List wording that is a bare participle closing the text after a word ("… bot blacklisted"):
# about whatever that word names, so block wording only with an object or "you" near it.
# After a colon it is the reason given ("Recipient address rejected: Blacklisted"): kept.
_BARE_LISTED_RE = re.compile(r"(?:black|block)[ -]?listed\b", re.IGNORECASE)
# Our address named just before the block word, its literal masked or missing: "Client host
# [] blocked", "This IP [192.0.2.X] is blocked".
_OWN_BEFORE_RE = re.compile(
    r"\b(?:client host|client|your ip(?: address)?|this ip(?: address)?|ip address|sender ip|"
    r"sending ip|(?:this|your) (?:computer|mail ?server|server|host|network)|"
    # "476 connections from your host are denied"
    r"connections? from (?:this|your) (?:ip(?: address)?|mail ?server|server|host|network))"
    r"\s?(?:\[[^\]\s]{0,40}\]|\([^)\s]{0,40}\)|'[^'\s]{0,40}'|[\dx]{1,3}(?:\.[\dx*]{1,3}){3})?"
    r",?\s(?:is |are |was |were |has been |have been )?$",
    re.IGNORECASE,
)
# What may follow a bare block of our address when the receiver gives no reason of its own:
# the end, or a pointer ("… blocked. Visit http://…", "blocked, see …", "blocked (123)").
_NO_REASON_RE = re.compile(
    r"[\s.,;!)\]]*(?:$|\(?[\w=:.-]{0,20}\)?\s*$|(?:see|visit|please|refer|contact|more info|"
    r"for (?:details|more|information|assistance)|https?://|www\.|"
    r"(?:this|the|your) (?:attempt|connection|incident) (?:has been |was |is )?"
    r"(?:logged|recorded)))",
    re.IGNORECASE,
)
# Our address named right after refusal wording: "denied for IP 192.0.2.1", "no access for
# this ip", "not accept mail from network 192.0.2.1", "rejected for <IP address>".
_OWN_AFTER_RE = re.compile(
    r" ?(?:for|from) (?:(?:(?:the|your|this|that) )?(?:(?:sending|sender|client|remote|source|"
    r"connecting) )?(?:ip|ipv4|ipv6|host|network|server|address|client|netblock)(?: address)?:? ?)?"
    r"(?:\[?(?:\d{1,3}\.){3}\d{1,3}\]?(?![\w.])|\[?(?:x{1,3}|\d{1,3})(?:\.(?:x{1,3}|\d{1,3}|\*)){3}\]?"
    r"|<[^<>]{0,24}\bip\b[^<>]{0,12}>)|"
    r" ?(?:for|from) (?:this|your) (?:ip(?: address)?|host|server|mail ?server|network|domain)\b|"
    # "Server access forbidden by your IP"
    r" ?by (?:this|your) ip(?: address)?\b",
    re.IGNORECASE,
)
# A masked or placeholder address of ours just before refusal wording: "Mail from x.x.x.x not
# allowed", "message from <some IP address> rejected".
_MASKED_BEFORE_RE = re.compile(
    r"(?:\b(?:x{1,3}|\d{1,3})(?:\.(?:x{1,3}|\d{1,3}|\*)){3}|<[^<>]{0,24}\bip\b[^<>]{0,12}>)"
    r"\]?\)?,? (?:is |was |has been |are )?$",
    re.IGNORECASE,
)
# What is not a reason of the receiver's after a refusal: pointers, courtesy, the SMTP
# session's boilerplate, codes ("- VS98-IP0 deferred", "closing transmission channel").
_BOILERPLATE = frozenset((
    "see", "visit", "please", "refer", "contact", "for", "more", "details", "information", "info",
    "assistance", "closing", "close", "transmission", "channel", "connection", "session",
    "deferred", "try", "again", "later", "the", "a", "to", "at", "http", "https", "www", "sorry",
    "postmaster", "administrator", "and", "or", "this", "our", "help", "go", "check", "bye",
    "goodbye", "service", "mail", "email", "e-mail", "message", "is", "was", "has", "been",
    "smtp", "server", "from", "sending", "receiving", "delivering", "delivery", "here",
))  # fmt: skip
_SENTENCE_END_RE = re.compile(r"[.;!?](?:\s|$)|\s-\s(?=[A-Z])")
# Pointers and codes in a tail, not reasons: URLs, hosts, file names, "VS98-IP0", "#5.7.1".
_POINTER_RE = re.compile(r"\S*[./#]\S*|\S*\d\S*")
_LITERAL_RE = re.compile(r"[0-9a-f.:]+", re.IGNORECASE)
# Between our address and a refusal: a sentence, a colon or the frame's "said" parts them.
_GAP_BREAK_RE = re.compile(r"[.;:!?,]|\bsaid\b", re.IGNORECASE)
_PUNCT_TAIL_RE = re.compile(r"[ .!;:)\]]*$")
_YOU_RE = re.compile(r"\byou\b", re.IGNORECASE)
# A reason weak wording may give for itself: spam, abuse, a block list, reputation, complaints
# (not any "list": a distribution list, "the list of allowed IPs").
# In a URL only list, lookup or removal words count: "…/blacklist/remove?ip=…".
_URL_WHY_RE = re.compile(
    r"(?:black|block|deny|ban)[-_]?list|rbl|dnsbl|remov|delist|unblock|reputation|abus",
    re.IGNORECASE,
)
_WHY_RE = re.compile(
    r"spam|abus|phish|\bbot|infect|compromis|zombie|harvest|enumeration|dictionary attack|"
    r"brute[ -]?force|"
    # (mailing many invalid recipients: a dictionary attack's behaviour)
    r"too many (?:invalid|unknown|non-?existent|bad) (?:recipients|addresses|users)|"
    r"(?:black|block|deny|ban)[ -]?list|\blist(?:ed|ing)\b|"
    r"\brbl|\bdnsbl|reputa|r[ée]putation|complain|"
    r"unsolicited|\buce\b|junk|pourriel|remov|delist|blocked using|"
    r"спам|список|垃圾|黑名|スパム|リスト|스팸|목록",
    re.IGNORECASE,
)
# "IP in SCBL", "host on <list>": the sender put in a list; block wording beside a list named in
# words (the `deferral` wording holds it too), so such a text counts as worded.
_OBJECT_IN_RE = re.compile(
    r"\b(?:ip|ip address|host|client|sender|address)(?: \[?(?:\d{1,3}\.){3}\d{1,3}\]?)? "
    r"(?:is )?(?:in|on)\b"
)
# "<Name> RBL": a list name no lexicon knows, written before the word for a list.
_LABELLED_RE = re.compile(
    r"\b([a-z0-9][a-z0-9.-]{2,30}) (?:rbl|dnsbl|dns-?bl|black ?list|block ?list)\b", re.IGNORECASE
)
_NOT_NAMES = frozenset((
    "our", "the", "a", "an", "local", "your", "their", "this", "that", "public", "internal",
    "private", "spam", "dns", "ip", "my", "any", "in", "on", "at", "of", "by", "to", "from",
    "its", "own", "realtime", "real-time", "known", "external", "some", "one", "several",
    "multiple", "domain", "sender", "url", "uri", "is", "are", "listed", "via", "using", "custom",
    "global", "company", "corporate", "server", "mail", "email", "e-mail", "and", "or", "no",
    "level", "policy", "site", "network", "provider", "isp", "third-party", "3rd-party",
    "not", "be", "been", "being", "was", "were", "per", "for", "against", "with",
    # the receiver's own lists of senders or content, named for whom or what they hold
    "tenant", "tenants", "recipient", "recipients", "user", "users", "customer", "personal",
    "organization", "organisation", "account", "admin", "administrator", "manual", "content",
    "url", "urls", "subject", "keyword", "word", "attachment", "file", "address",
    # articles, pronouns and prepositions of other languages ("auf einer Blacklist")
    "ein", "eine", "einer", "einem", "einen", "der", "die", "das", "den", "dem", "unsere",
    "unserer", "unserem", "ihre", "ihrer", "auf", "im", "le", "la", "les", "une", "un", "notre",
    "nos", "sur", "dans", "du", "des", "una", "uno", "el", "los", "las", "nuestra", "en", "em",
    "na", "nella", "nel", "della", "nostra", "nossa", "uma", "een", "het", "op", "onze", "de",
    "w", "naszej", "czarnej",
    # what kind of list the receiver keeps, not whose: "the audit blacklist"
    "audit", "temporary", "permanent", "dynamic", "static", "main", "default", "system",
    "automatic", "auto", "internal-use",
))  # fmt: skip
# A proper name no lexicon knows right after "listed by", "blacklisted by"…: the list ("Listed by
# Spamikaze, see …"); capitalised as written (case matters here).
_AGENT_NAME_RE = re.compile(
    r"(?<![Nn]ot )(?<!NOT )\b(?:[Ll]isted|LISTED|[Bb]lack-?listed|BLACKLISTED|[Bb]lock-?listed) "
    r"(?:by|in|on|at) (?!(?:RBL|DNSBL|DNSRBL|RHSBL|URIBL|SURBL|BL|DNS)s?\b)"
    r"([A-Z][A-Za-z0-9]{2,30})\b(?![.-][A-Za-z0-9]| [A-Z&])"
)  # (not a name of several capitalised words: "not listed in Domino Directory"; nor the kind
# of list itself: "blacklisted by RBL")
# A subdomain label that says "block list": bl., sbl., dnsbl-1., rbl., blacklist., spam.…
# (not any label holding "bl": public., mobile., bluewin.).
_LISTISH_LABEL_RE = re.compile(
    r"^(?:[a-z0-9]{1,20}-)?(?:[a-z]{0,4}bl|dnsrbl|rbldns|black-?list|block-?list|blackholes?|"
    r"spam|spamlist)(?:-?\d{1,2})?$"
)
# Wording right before a host that makes it a list's zone, whatever its labels: "rbl: x.org",
# "blocked using x.net", "refused by blackhole site x.co.uk", "listed in x.net".
_ZONE_CUE_RE = re.compile(
    r"(?:\b(?:dns)?rbl|\bdnsbl|\bblackhole(?: site| list| zone)?|\bblocked using|"
    r"\blisted (?:in|on|at|by)|\bzone)\s?:?\s?$",
    re.IGNORECASE,
)
# Wording that says a list named right after it lists the sender; group 1: the weaker verbs
# that say so only before a zone or "<Name> DNSBL" ("Connection rejected by Barracuda" is a
# gateway's refusal for any reason).
_LISTING_CUE_RE = re.compile(
    r"\b(?:listed (?:on|in|at|by)|blocked using|found (?:in|on)|(?:is|are) (?:in|on)|"
    r"(blocked by|rejected by|refused by))(?: the)?:?\s",
    re.IGNORECASE,
)
# A hedge, the receiver's own lookup failing, a denial, the recipient's own list: never made
# a listing by a list named.
_HEDGE_OR_ERROR_RE = re.compile(
    r"\b(?:may|might|could) (?:be|have been)\b|\bquery refused\b|\bopen resolver\b|"
    r"\b(?:lookup|query|check) (?:failed|error|timed? ?out)\b|\bnot listed\b|"
    r"\b(?:is|are|was|were)(?: not|n.t) (?:listed|(?:black|block)[ -]?listed)\b|"
    r"\b(?:recipient|tenant|user|organi[sz]ation)(?:.s)? |\bgr[ea]y[ -]?list",
    re.IGNORECASE,
)
# Authentication abused, named as the reason our host is blocked ("locally blacklisted for a
# bruteforce auth (username+password) cracking attempt"): the auth words are then no
# authentication context.
_AUTH_ABUSE_RE = re.compile(
    r"\bbrute[ -]?forc|\bdictionary attack|\bcracking attempt|\bpassword guessing|"
    r"\b(?:too many|excessive|repeated) (?:failed |invalid )?(?:auth|login|logon|password)",
    re.IGNORECASE,
)
_FRAME_RE = re.compile(
    r"\bhost [a-z0-9][a-z0-9.-]{0,252} ?\[[0-9a-f.:]{3,45}\](?::\d{1,5})? ?"
    rf"(?:(?:{_FRAME_VERB}):?|:)",
    re.IGNORECASE,
)
# A name denied just before it: "(NOT JUNKEMAILFILTER)", "not Spamhaus", "non-Barracuda".
_NEGATED_RE = re.compile(r"\b(?:not|non|no)[ -]$", re.IGNORECASE)
_SECOND_LEVEL = {"co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go", "gen"}


@dataclass(frozen=True, slots=True)
class _Found:
    """A list the text names: a lexicon entry, a catalog zone, or an unknown zone."""

    at: int
    tier: int  # 0 a zone, 1 a list or vendor, 2 a receiver's own list; lower is preferred
    name: Name | None = None
    zone: Zone | None = None
    zone_name: str = ""
    by_host: bool = False
    label: str = ""  # a list name no lexicon knows, as written before "RBL": "DNN4Less"


# ─── the layers ──────────────────────────────────────────────────────────────────────────


def attribute_open(
    subject: str,
    *,
    remote_mta: str,
    temporary: bool,
    lexicon: Lexicon,
    catalog: Catalog,
    low: str | None,
) -> Attribution | None:
    """The lexicon layer, else the generic layer; None when the text is not a block text."""
    wording = lexicon.wording
    urls = find_urls(subject)
    worded = (
        low is None
        or not low.isascii()  # (block words outside ASCII have no needles)
        or wording.needles is None
        or any(n in low for n in wording.needles)
        or _OBJECT_IN_RE.search(low) is not None
    )
    refused: list[int] | None = None
    if not worded and wording.refusal.live(low):
        # Refusal words are block wording only when they refuse our own address.
        refused = _refusals(subject, lexicon, _LazyIPs(subject, remote_mta), low)
        worded = bool(refused)
    listing = [u for u in urls if _LISTING_URL_RE.search(u)]
    looked_up = bool(listing) or any(_lookup_host(u, lexicon) for u in urls)
    if not worded and not looked_up and not wording.deferral.found(subject, low):
        # No block wording, no lookup page, no wording that is block wording beside a list
        # named ("Rejected: 192.0.2.1 is in bl.example.org"): the usual case, decided cheaply.
        return None
    # With no block wording at all, only a DNS zone written out names a list: "Connection
    # rejected by Barracuda" names a gateway that rejects for any reason.
    zones_only = not worded
    if (zones_only and not looked_up) and not any(
        f.zone is not None or f.zone_name for f in _host_names(subject, lexicon, catalog)
    ):
        return None  # (decided before the word names are looked up: the usual case again)
    ips = _sender_ips(subject, remote_mta)
    block, vague = _block_spans(subject, lexicon, ips, low, refused) if worded else ([], [])
    reputation = wording.reputation.starts(subject, low) if worded else []
    deferral = (
        not block and not reputation and (bool(vague) or wording.deferral.found(subject, low))
    )
    if not block and not reputation and not deferral and not urls:
        return None
    if (
        wording.negative.found(subject, low)
        and not _named_as_listing(subject, lexicon, catalog)
        and not (block and _AUTH_ABUSE_RE.search(subject))
    ):
        return None
    if not reputation and wording.ratelimit.found(subject, low):
        return None
    names = list(islice(_names(subject, lexicon, catalog), _MOST))
    blockers = [f.at for f in names if _is_list(f) or (f.name is not None and not f.by_host)]
    if by := [v for v in vague if any(0 < at - v <= _AGENT_REACH for at in blockers)]:
        block = by  # "IP … is blocked by EarthLink": a list or provider named as the blocker
    elif deferral and any(
        _is_list(f) and (not zones_only or f.zone is not None or bool(f.zone_name)) for f in names
    ):
        # "Deferred", "rejected", "listed" are block wording only beside a list named in words.
        block = wording.deferral.starts(subject, low)
    lookup = [f for f in names if f.name is not None and f.name.lookup and f.by_host]
    lookup = [f for f in lookup if any(_is_lookup_url(u, f.name) for u in urls if f.name)]
    if not block and not reputation and not lookup:
        if not listing:
            return None
        # An unknown list's lookup of an address, quoted with no block verb ("Please visit
        # http://antispam.example/denyip.php?IP=…"): a listing, the list unnamed.
        block = [max(0, subject.find(listing[0].split("://", 1)[-1][:24]))]
    # Weak wording whose reason is reputation ("blocked due to poor reputation") is a
    # reputation block; list wording ("listed", "blacklist") makes it a listing. Without
    # reputation wording, block wording or a lookup page is a listing.
    listed = not reputation or (bool(block) and wording.listed.found(subject, low))
    verdict = BounceVerdict.LISTED if listed else BounceVerdict.REPUTATION
    if lookup and not block and not reputation:
        block = [lookup[0].at]
    anchors = (block + reputation)[:_MOST]
    ip = _best_ip(ips)
    if names:
        # A zone, then a list or vendor (a known name before "Foo RBL"), then a receiver's own;
        # named in words before by a host; then the nearest to the block wording.
        best = min(
            names,
            key=lambda f: (f.tier, bool(f.label), f.by_host, min(abs(f.at - a) for a in anchors)),
        )
        return _named(best, verdict, temporary, ip, urls, _zone_index(catalog))
    return _unnamed(subject, verdict, temporary, ip, urls, remote_mta, lexicon)


def attribute_scored(
    subject: str,
    *,
    remote_mta: str,
    temporary: bool,
    lexicon: Lexicon,
    catalog: Catalog,
    low: str | None,
    wordscore: WordScore,
    status: str = "",
) -> Attribution | None:
    """The generic layer's last resort, for a text the layers above did not take for a block
    and whose block wording the grammar does not know: worded like the block texts the word
    score was trained on (lists/wordscore.json), and outside the negative contexts and plain
    rate limits. None when it is not."""
    parts = status.split(".")
    if len(parts) == 3 and parts[1] in _NOT_ABOUT_US:
        return None  # (the status blames the address, the mailbox or the content)
    if not wordscore.gated(low or subject.lower()):
        return None  # (no block word stem at all: the usual case, decided cheaply)
    wording = lexicon.wording
    if wording.listed.found(subject, low) or wording.weak.found(subject, low):
        # Block wording the grammar knows and judged itself ("blocked by the firewall",
        # "From: header address is black listed"): its call stands.
        return None
    score = wordscore.score(subject)  # (before the negative contexts: it is seldom high)
    if score < wordscore.threshold:
        return None
    reputation = wording.reputation.starts(subject, low)
    if (
        wording.negative.found(subject, low) and not _named_as_listing(subject, lexicon, catalog)
    ) or (not reputation and wording.ratelimit.found(subject, low)):
        return None
    # (no list wording here: the grammar would have judged it)
    verdict = BounceVerdict.REPUTATION if reputation else BounceVerdict.LISTED
    words = ", ".join(f"'{w}'" for w in wordscore.weighed(subject))
    how = f"worded like the block texts it learned from: {score:.2f}" + (
        f", most by {words}" if words else ""
    )
    urls = find_urls(subject)
    ip = _best_ip(_sender_ips(subject, remote_mta))
    found: Attribution
    if names := list(islice(_names(subject, lexicon, catalog), _MOST)):
        best = min(names, key=lambda f: (f.tier, bool(f.label), f.by_host, f.at))
        found = _named(best, verdict, temporary, ip, urls, _zone_index(catalog), how)
    else:
        found = _unnamed(subject, verdict, temporary, ip, urls, remote_mta, lexicon, how)
    return replace(
        found, rule=f"wordscore:{found.list}", layer=Layer.GENERIC, confidence=Confidence.LOW
    )


def _named_as_listing(subject: str, lexicon: Lexicon, catalog: Catalog) -> bool:
    """The text says outright that a list it names lists the sender ("listed on SpamCop",
    "blocked using bl.example.org", "blocked by ROTA DNSBL"), and neither hedges nor reports
    the receiver's own lookup error: then no other context of the text ("and bad rdns", "the
    blocked sender e-mail name") makes it something else."""
    if _HEDGE_OR_ERROR_RE.search(subject):
        return False
    cues = list(islice(_LISTING_CUE_RE.finditer(subject), _MOST))
    if not cues:
        return False
    for found in islice(_names(subject, lexicon, catalog), _MOST):
        if not _is_list(found):
            continue
        for cue in cues:
            # "blocked by" / "rejected by" only before a zone or "<Name> DNSBL", not a vendor
            if 0 <= found.at - cue.end() <= 3 and (
                cue.group(1) is None
                or found.zone is not None
                or bool(found.zone_name or found.label)
            ):
                return True
    return False


def _block_spans(
    subject: str,
    lexicon: Lexicon,
    ips: list[tuple[int, str, int]],
    low: str | None,
    refused: list[int] | None = None,
) -> tuple[list[int], list[int]]:
    """Where block wording stands: list wording, or weak wording ("blocked") with an object
    near it and something after it; and apart, weak wording with no object or in a text that
    gives no reason of spam, abuse, a list or reputation ("IP blocked by the firewall",
    "blocked: country not allowed"): block wording only beside a list or provider the text
    names in words ("Blocked by SpamCop")."""
    wording = lexicon.wording
    objects = wording.object.live(low)
    # The sending MTA's frame of the receiver ("host mx.example.net[198.51.100.1] said:") names
    # the receiver's host, not ours: an object word inside it is none.
    frames = [m.span() for m in islice(_FRAME_RE.finditer(subject), _MOST)]

    def near_object(start: int, end: int) -> bool:
        if any(start <= at < end for at, _, _ in ips):
            return True
        for p in objects:
            at = start
            while (found := p.compiled.search(subject, at, end)) is not None:
                if not any(a <= found.start() < b for a, b in frames):
                    return True
                at = found.end() if found.end() > at else at + 1
        return False

    def about_another(at: int) -> bool:
        bare = _BARE_LISTED_RE.match(subject, at)
        if bare is None or not _PUNCT_TAIL_RE.match(subject, bare.end()):
            return False
        start = max(0, at - _OBJECT_REACH)
        return (
            # (the text's spaces are single: the character before a space at most)
            subject[max(0, at - 2) : at].rstrip()[-1:].isalnum()
            and not near_object(start, bare.end())
            and not _YOU_RE.search(subject, start, at)
        )

    spans = [at for at in wording.listed.starts(subject, low) if not about_another(at)]
    vague: list[int] = []
    weak = (m for p in wording.weak.live(low) for m in islice(p.finditer(subject), _MOST))
    gives_why: bool | None = None  # the text's reason, read once (a text holds many "blocked")
    for m in weak:
        word = m.group()
        # (a word outside ASCII: its language's reasons are not in _WHY_RE; taken as is)
        why = not word.isascii() or bool(_LISTED_VERB_RE.match(word))
        if not why:
            if gives_why is None:
                gives_why = _gives_why(subject)
            why = gives_why
        near = near_object(max(0, m.start() - _OBJECT_REACH), m.end() + _OBJECT_REACH)
        # Our address itself blocked, no why given ("Client host [192.0.2.1] blocked.",
        # "Access from ip address 192.0.2.1 blocked"): the receiver's own list names it.
        # (not when a reason follows: "blocked by policy", "blocked: not in allowed ranges")
        own = (
            any(m.start() - _OBJECT_REACH <= at < m.start() for at, _, _ in ips)
            or bool(_OWN_BEFORE_RE.search(subject, max(0, m.start() - 40), m.start()))
        ) and bool(_NO_REASON_RE.match(subject, m.end()))
        # (Postfix's "Client host rejected" prefixes every client restriction: a reason of
        # spam or abuse still needed when it gives none — "unknown[192.0.2.1]: Client host
        # rejected")
        prefix = word[:6].lower() == "client"
        own = own and not prefix
        if not own and not why and not prefix:
            # "blocked for IP 192.0.2.1", or a pointer to a lookup of our address as the only
            # word after it: "Blocked - see https://…?ip=192.0.2.1"
            end = _refused_own(subject, m, lambda: ips)
            own = (end is not None and not _reason_after(subject, end)) or (
                any(cue == 2 and m.end() < at <= m.end() + 200 for at, _, cue in ips)
                and not _reason_after(subject, m.end())
            )
            near = near or own
        (spans if near and (why or own) else vague).append(m.start())
    # (the refusals of our address, unless the caller has already found them)
    spans += _refusals(subject, lexicon, ips, low) if refused is None else refused
    return sorted(spans), sorted(vague)


def _refusals(
    subject: str,
    lexicon: Lexicon,
    ips: list[tuple[int, str, int]] | Callable[[], list[tuple[int, str, int]]],
    low: str | None,
) -> list[int]:
    """Where refusal wording refuses our own address, the only reason given none or one of
    spam and abuse ("Mail from 192.0.2.1 not allowed", "Service denied for IP 192.0.2.1
    (harvester)"; not "Client host rejected: Access denied", nor the sending MTA's own words
    in its frame of the receiver: "host mx.example.net[198.51.100.1] refused to talk to me:")."""
    spans = []
    gives_why: bool | None = None
    frames: list[tuple[int, int]] | None = None  # (read when a refusal of ours is first found)
    found = ips if callable(ips) else lambda: ips
    for p in lexicon.wording.refusal.live(low):
        for m in islice(p.finditer(subject), _MOST):
            end = _refused_own(subject, m, found)
            if end is None:
                continue
            if frames is None:
                frames = [f.span() for f in islice(_FRAME_RE.finditer(subject), _MOST)]
            if any(a <= m.start() < b for a, b in frames):
                continue
            if _reason_after(subject, end):
                if gives_why is None:
                    gives_why = _gives_why(subject)
                if not gives_why:
                    continue
            spans.append(m.start())
    return spans


def _refused_own(
    subject: str, m: re.Match[str], ips: Callable[[], list[tuple[int, str, int]]]
) -> int | None:
    """Where the refusal `m` of our own address ends (with that address when it follows), or
    None when no address of ours stands right before or after it. `ips`: the text's sender
    IPs, asked for only when an IP literal stands in the 40 characters before `m`."""
    if after := _OWN_AFTER_RE.match(subject, m.end()):
        return after.end()
    start = max(0, m.start() - 40)
    literal_before = _IPV4_RE.search(subject, start, m.start()) or (
        ":" in subject[start : m.start()] and _IPV6_RE.search(subject, start, m.start())
    )
    for at, _, _ in ips() if literal_before else ():
        if at >= m.start() or at < m.start() - 40:
            continue
        literal = _LITERAL_RE.match(subject, at)
        gap = subject[literal.end() if literal else at : m.start()]
        # "Mail from 192.0.2.1 not allowed", "Client host [192.0.2.1] rejected" (not across a
        # sentence or a colon: "192.0.2.1: Recipient address rejected")
        if len(gap) <= 16 and not _GAP_BREAK_RE.search(gap.replace("]", "")):
            return m.end()
    own = _OWN_BEFORE_RE.search(subject, start, m.start())
    # (not Postfix's "Client host rejected", the prefix of every client restriction: its
    # reason follows, or it says none — "unknown[…]: Client host rejected")
    if (own and not own.group().lower().startswith("client")) or _MASKED_BEFORE_RE.search(
        subject, start, m.start()
    ):
        return m.end()
    return None


class _LazyIPs:
    """The text's sender IPs (_sender_ips), read when first asked for."""

    __slots__ = ("_found", "remote_mta", "subject")

    def __init__(self, subject: str, remote_mta: str) -> None:
        self.subject, self.remote_mta = subject, remote_mta
        self._found: list[tuple[int, str, int]] | None = None

    def __call__(self) -> list[tuple[int, str, int]]:
        if self._found is None:
            self._found = _sender_ips(self.subject, self.remote_mta)
        return self._found


def _reason_after(subject: str, end: int) -> bool:
    """The receiver gives a reason of its own after a refusal (up to the sentence's end):
    a word that is not a pointer, courtesy, the session's boilerplate or a code."""
    stop = _SENTENCE_END_RE.search(subject, end, end + 120)
    tail = _POINTER_RE.sub(" ", subject[end : stop.start() if stop else end + 120])
    return any(
        len(w) > 2 and w.lower() not in _BOILERPLATE for w in islice(_WORD_RE.findall(tail), 40)
    )


def _gives_why(subject: str) -> bool:
    """The text gives a reason for a block: in its words, or in a URL's list or removal words
    (an "antispam-policy" page says nothing about us; a "blacklist/remove?ip=" page does)."""
    urls = find_urls(subject)
    if not urls:
        return bool(_WHY_RE.search(subject))
    plain = _URL_RE.sub(" ", subject)
    return bool(_WHY_RE.search(plain) or any(_URL_WHY_RE.search(u) for u in urls))


def _named(
    found: _Found,
    verdict: BounceVerdict,
    temporary: bool,
    ip: str,
    urls: list[str],
    zones: dict[str, Zone],
    how: str = "named near block wording no rule knows",
) -> Attribution:
    name, zone = found.name, found.zone
    if zone is None and name is not None and name.zone:
        zone = zones.get(name.zone)
    # The list reported: the zone (the catalog's, or one the text names that looks like a
    # list), else the lexicon's id; `zone` only ever a catalog zone.
    zone_name = zone.name if zone is not None else found.zone_name
    if name is not None:
        provider = name.provider
        kind = name.kind
        list_id = name.list_id
    elif found.label:
        provider, kind, list_id, zone_name = (
            found.label,
            ListKind.PUBLIC_DNSBL,
            found.label.lower(),
            "",
        )
    else:
        provider = zone.operator if zone is not None else _registrable(zone_name)
        kind = ListKind.PUBLIC_DNSBL
        list_id = zone_name
    # (a zone of domains lists no address; a name of a list of domains whose text ties an
    # address to the sender keeps it: "The sending IP (192.0.2.1) is listed on spamrl.com")
    domains_only = zone is not None and not (
        TargetKind.IPV4 in zone.takes or TargetKind.IPV6 in zone.takes
    )
    if domains_only:
        kind = ListKind.DOMAIN_LIST
    delist = _pick_url(urls, name) or _template(name, zone, ip)
    if verdict is BounceVerdict.REPUTATION:
        what = f"{provider} blocks or defers the sender for its reputation ({list_id} named)"
    else:
        what = f"{provider}'s list {list_id} lists the sender"
    reason = _reason(what, verdict, ip, delist, list_id, how)
    return Attribution(
        verdict=verdict,
        list=list_id,
        zone=zone.name if zone is not None else "",
        provider=provider,
        kind=kind,
        temporary=temporary,
        listed_ip="" if domains_only else ip,
        delist_url=delist,
        reason=reason,
        rule=f"lexicon:{name.id if name is not None else list_id}",
        layer=Layer.LEXICON,
        confidence=Confidence.MEDIUM,
    )


def _unnamed(
    subject: str,
    verdict: BounceVerdict,
    temporary: bool,
    ip: str,
    urls: list[str],
    remote_mta: str,
    lexicon: Lexicon,
    how: str = "block wording, no list named",
) -> Attribution:
    provider = _provider_of(remote_mta, lexicon) or _provider_of(subject, lexicon)
    delist = urls[0] if urls else ""
    who = f"the receiver ({provider})" if provider else "the receiver"
    if verdict is BounceVerdict.REPUTATION:
        what = f"{_capital(who)} blocks or defers the sender for its reputation"
        kind = ListKind.PROVIDER_REPUTATION
    else:
        what = f"A block list {who} does not name lists the sender"
        kind = ListKind.PROVIDER_PRIVATE
    reason = _reason(what, verdict, ip, delist, "unnamed", how)
    return Attribution(
        verdict=verdict,
        list="unnamed",
        provider=provider,
        kind=kind,
        temporary=temporary,
        listed_ip=ip,
        delist_url=delist,
        reason=reason,
        rule="generic",
        layer=Layer.GENERIC,
        confidence=Confidence.LOW,
    )


def _reason(what: str, verdict: BounceVerdict, ip: str, delist: str, list_id: str, how: str) -> str:
    parts = [f"Probably: {what} ({how})"]
    if ip:
        parts.append(f"listed: {ip}")
    if verdict is BounceVerdict.REPUTATION:
        parts.append("a reputation block, not a list: slow down and check complaints")
    if delist:
        parts.append(
            f"ask for delisting at {delist}" if verdict is BounceVerdict.LISTED else f"see {delist}"
        )
    return "; ".join(parts) + f" [{list_id}]"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# ─── names ───────────────────────────────────────────────────────────────────────────────


def _names(subject: str, lexicon: Lexicon, catalog: Catalog) -> Iterator[_Found]:
    """Every list the text names: lexicon names (whole words), hosts and zones (any host-like
    run of the text, or a name under it), unknown zones that look like block lists."""
    words = list(_WORD_RE.finditer(subject))
    keys = [w.group().lower() for w in words]
    catalog_names = _catalog_names(catalog, lexicon)
    operators, operator_starts = catalog_names.words, catalog_names.word_starts
    # host names of the text ("dnsbl-1.uceprotect.net"): a word inside one is no name ("sbl")
    hosts = [
        (m.start(), m.start() + len(host))
        for m in _HOSTISH_RE.finditer(subject)
        if "." in (host := m.group().rstrip(".-"))
    ]
    starts = lexicon.key_starts
    i = 0
    while i < len(words):
        if keys[i] not in starts and keys[i] not in operator_starts:
            i += 1  # (no name begins with this word: the usual case, decided cheaply)
            continue
        for k in range(min(MAX_WORDS, len(words) - i), 0, -1):
            key = "".join(keys[i : i + k])
            name = lexicon.by_key.get(key)
            zone = operators.get(key) if name is None else None
            if (
                (name is not None or zone is not None)
                and _adjacent(subject, words, i, k)
                and not _in_host(subject, words[i].start(), words[i + k - 1].end(), hosts)
                and not _NEGATED_RE.search(subject, max(0, words[i].start() - 8), words[i].start())
            ):
                at = words[i].start()
                yield _Found(at, _tier(name), name=name) if name else _Found(at, 0, zone=zone)
                i += k - 1
                break
        i += 1
    if not subject.isascii():
        low = subject.lower()
        for alias, name in lexicon.unspaced:
            if (at := low.find(alias)) >= 0:
                yield _Found(at=at, tier=_tier(name), name=name)
    for m in (*_LABELLED_RE.finditer(subject), *islice(_AGENT_NAME_RE.finditer(subject), _MOST)):
        word = m.group(1)
        if word.lower() not in _NOT_NAMES and not _valid(word) and lexicon.resolve(word) is None:
            # "Listed by XBL": the one catalog zone whose first label it is (xbl.spamhaus.org)
            zone = _catalog_names(catalog, lexicon).firsts.get(word.lower())
            yield _Found(m.start(1), 0, zone=zone) if zone else _Found(m.start(1), 1, label=word)
    yield from _host_names(subject, lexicon, catalog)


def _host_names(subject: str, lexicon: Lexicon, catalog: Catalog) -> Iterator[_Found]:
    """The hosts and zones a text names: catalog zones, lexicon hosts, unknown list zones."""
    zones = _zone_index(catalog)
    sites = _catalog_names(catalog, lexicon).sites
    for m in _HOSTISH_RE.finditer(subject):
        host = m.group().lower().rstrip(".-")
        labels = host.split(".")
        if len(labels) < 2 or not labels[-1].isalpha() or len(labels[-1]) < 2:
            continue
        for j in range(len(labels) - 1):
            suffix = ".".join(labels[j:])
            if (zone := zones.get(suffix)) is not None:
                yield _Found(at=m.start(), tier=0, zone=zone)
                break
            if (name := lexicon.by_host.get(suffix)) is not None:
                yield _Found(at=m.start(), tier=_tier(name), name=name, by_host=True)
                break
            if (zone := sites.get(suffix)) is not None and _in_url(subject, m.start()):
                yield _Found(at=m.start(), tier=0, zone=zone, by_host=True)
                break
        else:
            zone_name = _unknown_zone(labels) or (
                host if _ZONE_CUE_RE.search(subject, max(0, m.start() - 24), m.start()) else ""
            )
            if zone_name and not _in_url(subject, m.start()):
                yield _Found(at=m.start(), tier=0, zone_name=zone_name)


def _in_host(subject: str, start: int, end: int, hosts: Sequence[tuple[int, int]] = ()) -> bool:
    """The words at start..end are labels of a host name ("ess.barracudanetworks.com", one of
    `hosts` but not all of it): a host says who runs the server, not that a list is named
    (hosts are matched as hosts)."""
    if any(a <= start and end <= b and (a, b) != (start, end) for a, b in hosts):
        return True
    before = subject[max(0, start - 2) : start]
    after = subject[end : end + 2]
    return (len(before) == 2 and before[1] == "." and before[0].isalnum()) or (
        len(after) == 2 and after[0] == "." and after[1].isalnum()
    )


def _is_list(found: _Found) -> bool:
    """A block list or a list operator named in words or as a zone (not a receiver's host)."""
    if found.zone is not None or found.zone_name or found.label:
        return True
    name = found.name
    return name is not None and not found.by_host and bool(name.zone or name.lookup)


def named_provider(subject: str, lexicon: Lexicon) -> str:
    """The provider of the first lexicon name or host the text gives; '' when none."""
    words = list(_WORD_RE.finditer(subject[:2048]))
    keys = [w.group().lower() for w in words]
    for i in range(len(words)):
        for k in range(min(MAX_WORDS, len(words) - i), 0, -1):
            name = lexicon.by_key.get("".join(keys[i : i + k]))
            if name is not None and _adjacent(subject, words, i, k):
                return name.provider
    return _provider_of(subject, lexicon, registrable=False)


def _adjacent(subject: str, words: list[re.Match[str]], i: int, k: int) -> bool:
    """The words i..i+k-1 are one name: only spaces, dashes, dots, '&' between them."""
    for a, b in zip(words[i : i + k - 1], words[i + 1 : i + k], strict=True):
        gap = subject[a.end() : b.start()]
        if len(gap) > 2 or gap.strip(" -._&+"):
            return False
    return True


def _tier(name: Name) -> int:
    return 2 if name.kind is ListKind.PROVIDER_PRIVATE else 1


def _unknown_zone(labels: list[str]) -> str:
    """The zone of a host name that looks like a block list no catalog knows ('rbl.foo.net'),
    from its listish label on; '' for any other host."""
    for j, label in enumerate(labels[:-2]):
        if _LISTISH_LABEL_RE.match(label) and not label.isdigit():
            return ".".join(labels[j:])
    return ""


def _in_url(subject: str, at: int) -> bool:
    start = subject.rfind(" ", 0, at) + 1
    return "://" in subject[start:at]


# The last catalog indexed and its zones by name (one tuple: rebinding it is atomic).
_ZONES: tuple[Catalog | None, dict[str, Zone]] = (None, {})


def _zone_index(catalog: Catalog) -> dict[str, Zone]:
    global _ZONES
    last = _ZONES
    if last[0] is not catalog:
        index = {z.name: z for z in catalog.zones}
        # a Spamhaus DQS twin names the public zone (the receiver's key before it is skipped)
        index.update({f"{z.dqs}.{DQS_SUFFIX}": z for z in catalog.zones if z.dqs})
        last = _ZONES = (catalog, index)
    return last[1]


# A zone's first label that names the list by itself ("XBL", "PSBL", "UCEPROTECT dnsbl-1").
_LIST_LABEL_RE = re.compile(r"[a-z]{0,6}bl(?:-\d|-plus)?")


@dataclass(frozen=True, slots=True)
class _CatalogNames:
    """Names of the catalog's block lists that the lexicon lacks: the operator's name and the
    alias in its brackets as words ("Suomispam", "MegaRBL", "NiX Spam"), and the operator's
    site (the zone's registrable domain) as a URL's host ("http://www.suomispam.net/…")."""

    words: dict[str, Zone]
    sites: dict[str, Zone]
    firsts: dict[str, Zone]  # a zone's first label, when no other block list's is the same
    word_starts: frozenset[str] = frozenset()  # every beginning of a key of `words`


# The last catalog and lexicon read and their names (one tuple: rebinding it is atomic).
_CATALOG_NAMES: tuple[Catalog | None, Lexicon | None, _CatalogNames] = (
    None,
    None,
    _CatalogNames({}, {}, {}),
)


def _catalog_names(catalog: Catalog, lexicon: Lexicon) -> _CatalogNames:
    global _CATALOG_NAMES
    last = _CATALOG_NAMES
    if last[0] is catalog and last[1] is lexicon:
        return last[2]
    words: dict[str, Zone] = {}
    sites: dict[str, Zone] = {}
    zones = _zone_index(catalog)
    for zone in catalog.zones:
        if zone.kind is ZoneKind.ALLOW:
            continue
        head, _, rest = zone.operator.partition("(")
        aliases: tuple[str, ...] = (head, rest.rstrip(") "))
        if any(lexicon.resolve(a) is not None for a in aliases if a.strip()):
            aliases = ()  # the lexicon knows the operator by a name of its own ("SenderScore")
        for alias in aliases:
            key = name_key(alias)
            # (not words of three letters: "ORDB", "DSBL", but not "BIT"; "MAPS" and "Validity"
            # are left to the lexicon, which knows them as Trend Micro and SenderScore)
            if len(key) >= 4 and key not in lexicon.by_key:
                words.setdefault(key, zone)
        site = _registrable(zone.name)
        if site not in lexicon.by_host and site not in zones:
            sites.setdefault(site, zone)
    firsts: dict[str, Zone] = {}
    seen: set[str] = set()
    for zone in catalog.zones:
        if zone.kind is ZoneKind.ALLOW:
            continue
        first = zone.name.split(".", 1)[0]
        if first in seen:
            firsts.pop(first, None)
        elif _LIST_LABEL_RE.fullmatch(first):
            firsts[first] = zone
        seen.add(first)
    starts = frozenset(key[:n] for key in words for n in range(1, len(key) + 1))
    found = _CatalogNames(words, sites, firsts, starts)
    _CATALOG_NAMES = (catalog, lexicon, found)
    return found


def _provider_of(text: str, lexicon: Lexicon, *, registrable: bool = True) -> str:
    """Who runs the hosts of `text` (a remote MTA, or the rejection): the lexicon's provider,
    else (`registrable`) the registrable part of the first host name."""
    first = ""
    for m in _HOSTISH_RE.finditer(text[:2048]):
        labels = m.group().lower().rstrip(".-").split(".")
        if len(labels) < 2 or not labels[-1].isalpha() or len(labels[-1]) < 2:
            continue
        for j in range(len(labels) - 1):
            if (name := lexicon.by_host.get(".".join(labels[j:]))) is not None:
                return name.provider
        first = first or (_registrable(".".join(labels)) if registrable else "")
    return first


def _registrable(host: str) -> str:
    labels = host.split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


# ─── URLs and addresses ──────────────────────────────────────────────────────────────────


def find_urls(text: str) -> list[str]:
    """The http(s) and www. URLs of a text, in order, without trailing punctuation."""
    if "http" not in text and "www." not in text and "HTTP" not in text and "WWW." not in text:
        return []
    return [
        m.group().replace(":// ", "://").rstrip(".,;:!>")
        for m in islice(_URL_RE.finditer(text), _MOST)
    ]


def _lookup_host(url: str, lexicon: Lexicon) -> bool:
    """The URL's host (or a name above it) is a lookup page's host of the lexicon."""
    labels = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].lower().split(".")
    for j in range(len(labels) - 1):
        name = lexicon.by_host.get(".".join(labels[j:]))
        if name is not None:
            return name.lookup
    return False


def _is_lookup_url(url: str, name: Name) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].lower()
    if not any(host == h or host.endswith("." + h) for h in name.hosts):
        return False
    return bool(_LOOKUP_WORDS_RE.search(url[len(url.split("://", 1)[0]) :]))


def _pick_url(urls: list[str], name: Name | None) -> str:
    if name is not None:
        for url in urls:
            host = url.split("://", 1)[-1].split("/", 1)[0].lower()
            if any(host == h or host.endswith("." + h) for h in name.hosts):
                return url
    return urls[0] if urls else ""


def _template(name: Name | None, zone: Zone | None, ip: str) -> str:
    template = (name.delist_url if name is not None else "") or (
        (zone.delist_url or zone.lookup_url) if zone is not None else ""
    )
    if not template:
        return ""
    if not ip and any(k in template for k in ("{ip}", "{target}")):
        return template.split("?", 1)[0] if "?" in template else template.split("{", 1)[0]
    return template.replace("{ip}", ip).replace("{target}", ip).replace("{domain}", ip)


def sender_ip(text: str, remote_mta: str = "") -> str:
    """The sending IP a rejection names: an IP literal tied to the sender by a cue before it
    (client, from, your IP, [), else the first one; never the remote MTA's address, a loopback
    or unspecified address, a status code such as 4.16.55.1 or a version number."""
    return _best_ip(_sender_ips(text, remote_mta))


def _best_ip(ips: list[tuple[int, str, int]]) -> str:
    """The first of the best cue: the client with its port, the address a lookup URL asks
    about, one with a sender cue, any."""
    if not ips:
        return ""
    best = max(cue for _, _, cue in ips)
    return next(ip for _, ip, cue in ips if cue == best)


def _sender_ips(text: str, remote_mta: str) -> list[tuple[int, str, int]]:
    """(offset, address, cue) of every IP literal that may be ours; cue 3: the client with its
    port, 2: a lookup URL asks about it, 1: a sender cue before it (client, from, your IP, [),
    0: none."""
    mx = _literal_of(remote_mta)
    out = []
    for m in islice(_ip_matches(text), _MOST):
        ip = _valid(m.group())
        before = text[max(0, m.start() - 12) : m.start()]
        if not ip or ip == mx or _CODE_BEFORE_RE.search(before):
            continue
        if _FRAME_AFTER_RE.match(text, m.end()) and _FRAME_BEFORE_RE.search(
            text, max(0, m.start() - 270), m.start()
        ):
            continue  # the receiving MTA as the sender's MTA names it
        if m.group()[:2] in ("2.", "4.", "5.") and (
            before.endswith("- ") or _REPLY_BEFORE_RE.search(before)
        ):
            continue  # a status code: "421 4.16.55.1", Yahoo's "temporarily deferred - 4.16.55.1"
        parsed = ipaddress.ip_address(ip)
        if parsed.is_loopback or parsed.is_unspecified or parsed.is_multicast:
            continue
        if _CLIENT_PORT_RE.match(text, m.end()):
            cue = 3  # Exim's client "[192.0.2.1]:51234 is in an RBL", whatever a URL asks
        elif (
            _URL_IP_BEFORE_RE.search(text, max(0, m.start() - 16), m.start())
            and text[m.end() : m.end() + 1] != "-"  # a range: "?ip=192.0.2.0-192.0.2.9"
        ):
            cue = 2
        else:
            cue = int(bool(_SENDER_CUE_RE.search(text[max(0, m.start() - 40) : m.start()])))
        out.append((m.start(), ip, cue))
    return out


def _ip_matches(text: str) -> Iterator[re.Match[str]]:
    found = list(_IPV4_RE.finditer(text))
    if ":" in text:
        found.extend(m for m in _IPV6_RE.finditer(text) if m.group().count(":") >= 2)
    return iter(sorted(found, key=lambda m: m.start()))


def _valid(candidate: str) -> str:
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return ""


def _literal_of(remote_mta: str) -> str:
    for m in _ip_matches(remote_mta):
        if ip := _valid(m.group()):
            return ip
    return ""
