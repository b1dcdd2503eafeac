"""Mail providers' own bounce notices: Gmail, Google Groups, Zoho, 1&1/GMX (mail.com), KDDI
(au one net), BIGLOBE, au/EZweb, and Amazon SES notifications sent by SNS. Pure.
"""

from __future__ import annotations

import itertools
import re

from blmonitor.bounces.detectors.detector import (
    ADDR,
    Detector,
    failed_hits,
    failed_matches,
    listed_failures,
)
from blmonitor.bounces.hit import Hit, one_line, strip_type
from blmonitor.bounces.needles import search_if
from blmonitor.bounces.smtp import command_of, status_of, unfold_reply

_GMAIL = re.compile(
    r"Delivery to the following recipients? (failed permanently|has been delayed|failed)",
    re.IGNORECASE,
)


def _gmail(text: str) -> list[Hit]:
    m = _GMAIL.search(text)
    if not m:
        return []
    delayed = "delayed" in m.group(1).lower()
    after = text[m.end() :]
    rcpts = re.findall(rf"^\s+({ADDR})\s*$", after.split("\n\n")[0], re.MULTILINE)
    if not rcpts:
        rcpts = re.findall(rf"^\s*({ADDR})\s*$", after[:2000], re.MULTILINE)[:1]
    details = ""
    if dm := re.search(r"Technical details of (?:permanent|temporary) failure:\s*", after):
        tail = after[dm.end() :]
        details = re.split(r"\n\s*\n(?=\S)|\n-{3,}", tail, maxsplit=1)[0]
        if em := re.search(r"returned\s*was:\s*(.*?)(?:\n\s*\n|\n-{3,}|$)", tail, re.S):
            details = em.group(1)
    diag = unfold_reply(details.split("\n"))
    remote = ""
    if hm := re.search(r"by (\S+?)\.? \[[\d.:a-fA-F]+\]", after):
        remote = hm.group(1)
    return [
        Hit(
            recipient=r,
            action="delayed" if delayed else "failed",
            diagnostic=diag,
            remote_mta=remote,
            command=command_of(diag),
        )
        for r in dict.fromkeys(rcpts)
    ]


_GROUPS_ORIGINAL = re.compile(r"^-{5} Original message -{5}$", re.MULTILINE)


def _googlegroups(text: str) -> list[Hit]:
    """Google Groups: a localised notice (the group may not exist or may refuse posts), the
    group's address only in the returned original's To: field."""
    m = search_if("groups.google.com/support", _GROUPS_ORIGINAL, text)
    if not m:
        return []
    head = text[m.end() :].lstrip("\n").split("\n\n", 1)[0]
    rcpt = re.search(rf"^To:[ \t]*(?:[^<\n]*<)?({ADDR})", head, re.MULTILINE)
    if not rcpt:
        return []
    paragraphs = [p.strip() for p in text[: m.start()].split("\n\n") if p.strip()]
    diag = paragraphs[1] if len(paragraphs) > 2 else ""
    return [Hit(recipient=rcpt.group(1), action="failed", diagnostic=diag)]


_ZOHO_LINE = re.compile(
    rf"^\s*({ADDR})\s+[^,\n]*,\s*ERROR_CODE\s*:\s*(\d{{3}})?\s*,\s*ERROR_CODE\s*:\s*,?\s*(.*)$",
    re.MULTILINE,
)
_ZOHO_WARNING = re.compile(
    rf"^\[Status: \w+, Address: <({ADDR})>, ResponseCode (\d{{3}})?\s*,[\s,]*(.*?)\]$",
    re.MULTILINE,
)


def _zoho(text: str) -> list[Hit]:
    """Zoho Mail: 'rcpt Invalid Address, ERROR_CODE :550, ERROR_CODE :reply' lines, or
    '[Status: Error, Address: <rcpt>, ResponseCode 421, , text]' in its warnings."""
    if "ERROR_CODE" not in text and "ResponseCode" not in text:
        return []
    permanent = "This is a permanent error" in text
    hits = []
    for m in itertools.chain(_ZOHO_LINE.finditer(text), _ZOHO_WARNING.finditer(text)):
        code, reply = m.group(2) or "", m.group(3).strip()
        diag = f"{code} {reply}".strip()
        action = "failed" if permanent else ""
        hits.append(Hit(recipient=m.group(1), action=action, reply_code=code, diagnostic=diag))
    return hits


_NEMESIS_START = re.compile(r"The following address(?:\(es\))?\s+failed:")
_NEMESIS_RCPT = re.compile(rf'^"?<?({ADDR})>?"?:?$')
_NEMESIS_SMTP = re.compile(
    r"SMTP error from remote server (?:after|for) (\S+) command:?,?\s*"
    r"(?:host:\s*(\S+)(?:\s+\([^)]*\))?)?\s*(?:reason:\s*)?(.*)"
)


def _nemesis(text: str) -> list[Hit]:
    """1&1 / GMX (mail.com): 'The following address failed:', each recipient on a line of
    its own (quoted, angled or bare), then the SMTP error or 'Reason:' and the text, up to
    '--- The header of the original message is following. ---'."""
    end = text.find("--- The header of the original message is following. ---")
    if end < 0:
        return []
    m = _NEMESIS_START.search(text, 0, end)
    if not m:
        return []
    blocks: list[tuple[str, list[str]]] = []
    for line in text[m.end() : end].split("\n"):
        line = line.strip()
        if not line:
            continue
        if rm := _NEMESIS_RCPT.match(line):
            blocks.append((rm.group(1), []))
        elif blocks and line.lower() not in ("reason:", "for the following reason:"):
            blocks[-1][1].append(line)
    hits = []
    for rcpt, lines in blocks:
        detail = " ".join(lines)
        hit = Hit(recipient=rcpt, diagnostic=detail)
        if sm := _NEMESIS_SMTP.search(detail):
            word = sm.group(1).upper()  # ('TEXT': the message text, after DATA)
            hit.command = "DATA" if word == "TEXT" else command_of("after " + word) or word
            hit.remote_mta = sm.group(2) or ""
            hit.diagnostic = sm.group(3)
        hits.append(hit)
    return hits


_KDDI = re.compile(rf"^\s*Could not be delivered to: <({ADDR})>\s*\n\s*(\S[^\n]*)", re.MULTILINE)


def _kddi(text: str) -> list[Hit]:
    """KDDI (au one net): 'Could not be delivered to: <rcpt>', the reason on the next line."""
    return failed_matches(_KDDI.finditer(text), recipient=1, diagnostic=2)


_BIGLOBE = re.compile(
    r"-{5} The following addresses had delivery problems -{5}\n(.*?)"
    r"-{5} Non-delivered information -{5}\n+(.*?)(?:\n\s*\n|\Z)",
    re.DOTALL,
)


def _biglobe(text: str) -> list[Hit]:
    """BIGLOBE: the recipients under '----- The following addresses had delivery problems
    -----', the reason under '----- Non-delivered information -----'."""
    m = search_if("----- Non-delivered information -----", _BIGLOBE, text)
    return listed_failures(m.group(1), one_line(m.group(2))) if m else []


# One recipient of an Amazon SES bounce notification (JSON, maybe inside an SNS envelope
# where every quote is escaped): its fields are strings, without nested objects.
_SES_RECIPIENT = re.compile(r'\{"emailAddress":"(?:[^"\\]|\\.)*"(?:,"\w+":"(?:[^"\\]|\\.)*")*\}')


def _amazonses_json(text: str) -> list[Hit]:
    """Amazon SES bounce notification as JSON (sent by SNS): 'bouncedRecipients', each with
    emailAddress, action, status and diagnosticCode."""
    if "bouncedRecipients" not in text:
        return []
    import json

    plain = text.replace('\\"', '"') if '\\"bouncedRecipients' in text else text
    if not re.search(r'"notificationType"\s*:\s*"Bounce"', plain):
        return []
    hits = []
    for m in _SES_RECIPIENT.finditer(plain):
        try:
            entry = json.loads(m.group())
        except ValueError:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("emailAddress"), str):
            continue
        fields = {k: v for k, v in entry.items() if isinstance(v, str)}
        action = fields.get("action", "").lower()
        hits.append(
            Hit(
                recipient=fields["emailAddress"],
                action=action if action in ("failed", "delayed") else "",
                status=status_of(fields.get("status", "")),
                diagnostic=strip_type(fields.get("diagnosticCode", "")),
            )
        )
    return hits


_EZWEB_RCPT = re.compile(rf"^<({ADDR})>\s*$", re.MULTILINE)


def _ezweb(text: str) -> list[Hit]:
    """au/EZweb notices without a transcript: the recipients as '<rcpt>' lines, the English
    sentences of the notice (before its '----' line) as the reason."""
    if "@ezweb.ne.jp>" not in text:
        return []
    body = re.split(r"^-{10,}\s*$", text, maxsplit=1, flags=re.MULTILINE)[0]
    rcpts = _EZWEB_RCPT.findall(body)
    if not rcpts:
        return []
    reason = [
        line.strip()
        for line in body.split("\n")
        if line.strip() and line.isascii() and not _EZWEB_RCPT.match(line)
    ]
    diag = " ".join(reason)
    return failed_hits(rcpts, diag)


# Detector(name, finder, order, needles): see `Detector`.
DETECTORS = (
    Detector("gmail", _gmail, 60, ("delivery to the following recipient",)),
    Detector("googlegroups", _googlegroups, 110, ("groups.google.com/support",)),
    Detector("zoho", _zoho, 120, ("error_code", "responsecode")),
    # 1&1, GMX, mail.com
    Detector(
        "nemesis", _nemesis, 150, ("--- the header of the original message is following. ---",)
    ),
)
# Notices of their own (see `detectors.NOTICES`).
NOTICES = (
    # au one net
    Detector("kddi", _kddi, 210, ("could not be delivered to: <",)),
    Detector("biglobe", _biglobe, 240, ("----- non-delivered information -----",)),
    # SES notifications sent by SNS
    Detector("amazonses", _amazonses_json, 260, ("bouncedrecipients",)),
    # au/EZweb notices without a transcript
    Detector("ezweb", _ezweb, 330, ("@ezweb.ne.jp>",)),
)
