"""Mail gateways' and filters' bounces: m-FILTER, MX Logic, Trend Micro InterScan,
Active!hunter, MailFoundry, Mimecast, MessageLabs (Symantec) and MailMarshal. Pure.
"""

from __future__ import annotations

import re

from blmonitor.bounces.detectors.detector import (
    ADDR,
    Detector,
    failed_hits,
    listed_failures,
    lone_addresses,
)
from blmonitor.bounces.hit import Hit
from blmonitor.bounces.needles import search_if
from blmonitor.bounces.smtp import COMMAND_NAMES, unfold_reply

_MFILTER = re.compile(r"\n-------server message\n(.*?)\n-------SMTP command\n([^\n]*)", re.DOTALL)


def _mfilter(text: str) -> list[Hit]:
    """m-FILTER (Japanese notice): the recipient lines, '-------server message' and the
    reply, '-------SMTP command' and the command."""
    m = search_if("-------server message", _MFILTER, text)
    if not m:
        return []
    rcpts = re.findall(rf"^\s*<?({ADDR})>?\s*$", text[: m.start()], re.MULTILINE)
    diag = unfold_reply(m.group(1).split("\n"))
    command = m.group(2).strip().upper()
    return [Hit(recipient=r, diagnostic=diag, command=command) for r in dict.fromkeys(rcpts)]


_MXLOGIC = re.compile(
    rf"The following address failed:\n\s+<({ADDR})>:\s*(.*?)\nIncluded is a copy", re.DOTALL
)


def _mxlogic(text: str) -> list[Hit]:
    """MX Logic (McAfee): 'The following address failed:', then '  <rcpt>: reply'."""
    m = search_if("Included is a copy of the message header", _MXLOGIC, text)
    if not m:
        return []
    return [Hit(recipient=m.group(1), diagnostic=unfold_reply(m.group(2).split("\n")))]


_TRENDMICRO_SENT = re.compile(
    rf"^\s*Sent <<< (RCPT TO|MAIL FROM|DATA)\b:?\s*<?({ADDR})?>?\s*\n\s*Received >>> ([^\n]*)",
    re.MULTILINE,
)
_TRENDMICRO_UNABLE = re.compile(rf"Unable to deliver message to <({ADDR})>[^\n]*")


def _trendmicro(text: str) -> list[Hit]:
    """Trend Micro InterScan: 'Sent <<< RCPT TO:<rcpt>' and 'Received >>> reply', or
    'Unable to deliver message to <rcpt> (and other recipients …).'"""
    if "Sent <<< " not in text and "Unable to deliver message to <" not in text:
        return []
    hits = []
    for m in _TRENDMICRO_SENT.finditer(text):
        if m.group(2):
            command = COMMAND_NAMES.get(m.group(1), m.group(1))
            hits.append(Hit(recipient=m.group(2), diagnostic=m.group(3), command=command))
    if not hits:
        for m in _TRENDMICRO_UNABLE.finditer(text):
            hits.append(Hit(recipient=m.group(1), action="failed", diagnostic=m.group(0)))
    return hits


_ACTIVEHUNTER_RCPT = re.compile(rf"^>>> ({ADDR}) <[^>\n]*>\s*$", re.MULTILINE)
_ACTIVEHUNTER_REPLY = re.compile(r"-{5} Transcript of session follows -{5}\n+([^\n]+)")


def _activehunter(text: str) -> list[Hit]:
    """Active!hunter: '>>> rcpt <rcpt>' under the sendmail-like heading, the reply after
    '----- Transcript of session follows -----'."""
    if "\n>>> " not in text:
        return []
    rcpts = _ACTIVEHUNTER_RCPT.findall(text)
    reply = _ACTIVEHUNTER_REPLY.search(text) if rcpts else None
    if not reply:
        return []
    diag = reply.group(1).strip()
    return failed_hits(rcpts, diag)


_MAILFOUNDRY = re.compile(
    rf"Unable to deliver message to: <({ADDR})>\s*\nDelivery failed for the following reason:"
    r"\s*\n(?:Server )?(?:(\S+?)\[[^\]]*\] (?:failed with|responded with failure):\s*)?([^\n]*)"
)


def _mailfoundry(text: str) -> list[Hit]:
    """MailFoundry: 'Unable to deliver message to: <rcpt>', 'Delivery failed for the following
    reason:', then 'Server host[IP] failed with: reply'."""
    if "Delivery failed for the following reason:" not in text:
        return []
    return [
        Hit(recipient=m.group(1), remote_mta=m.group(2) or "", diagnostic=m.group(3).strip())
        for m in _MAILFOUNDRY.finditer(text)
    ]


_MIMECAST_RCPT = re.compile(
    rf"(?:following address could not be delivered:|addressed to email address :)\s*\n"
    rf"\s*-- ({ADDR})\s*\n"
)
_MIMECAST_INFO = re.compile(
    r"(The problem appears to be|Additional information follows) :\s*\n\s*-- ([^\n]*)"
)


def _mimecast(text: str) -> list[Hit]:
    """Mimecast: '-- rcpt' after '… could not be delivered:' or '… email address :', the
    problem and 'Additional information follows :' '-- reply'."""
    m = search_if("Additional information follows :", _MIMECAST_RCPT, text)
    if not m:
        return []
    info = {k: v.strip() for k, v in _MIMECAST_INFO.findall(text)}
    diag = info.get("Additional information follows") or info.get("The problem appears to be", "")
    return [Hit(recipient=m.group(1), action="failed", diagnostic=diag)]


_MESSAGELABS = re.compile(
    rf"I was unable to deliver your message to the following addresses:\s*\n+"
    rf"((?:\s*<?{ADDR}>?\s*\n)+)\s*Reason: ((?:[^\n]+\n)*)"
)


def _messagelabs(text: str) -> list[Hit]:
    """Symantec Email Security.cloud (MessageLabs): the recipients under 'I was unable to
    deliver your message to the following addresses:', then 'Reason:' and the reply."""
    m = search_if("unable to deliver your message to the following addresses:", _MESSAGELABS, text)
    return listed_failures(m.group(1), unfold_reply(m.group(2).split("\n"))) if m else []


_MAILMARSHAL = re.compile(
    r"Could not be delivered because of\s*\n\s*\n?((?:[^\n]+\n)+)\s*"
    r"The following recipients were affected:[ \t]*\n((?:[ \t]+\S[^\n]*\n?)+)"
)


def _mailmarshal(text: str) -> list[Hit]:
    """MailMarshal: 'Could not be delivered because of', the reply, 'The following recipients
    were affected:' and the indented recipients; 'Remote-MTA: <IP>' below."""
    m = search_if("The following recipients were affected:", _MAILMARSHAL, text)
    if not m:
        return []
    rcpts = lone_addresses(m.group(2))
    diag = unfold_reply(m.group(1).split("\n"))
    rm = re.search(r"^Remote-MTA:\s*<([^>\s]+)>", text[m.end() :], re.MULTILINE)
    remote = rm.group(1) if rm else ""
    return failed_hits(rcpts, diag, remote)


# Detector(name, finder, order, needles): see `Detector`.
DETECTORS = (
    Detector("mfilter", _mfilter, 130, ("-------server message",)),
    Detector("mxlogic", _mxlogic, 180, ("included is a copy of the message header",)),
)
# Notices of their own (see `detectors.NOTICES`).
NOTICES = (
    # InterScan
    Detector("trendmicro", _trendmicro, 220, ("sent <<< ", "unable to deliver message to <")),
    Detector("activehunter", _activehunter, 230, ("\n>>> ",)),
    Detector("mailfoundry", _mailfoundry, 280, ("delivery failed for the following reason:",)),
    Detector("mimecast", _mimecast, 290, ("additional information follows :",)),
    Detector("messagelabs", _messagelabs, 300, ("your message to the following addresses:",)),
    Detector("mailmarshal", _mailmarshal, 310, ("the following recipients were affected:",)),
)
