"""MTAs' own plain-text bounces: Exim, Postfix and qmail ('<rcpt>: reason'), Sendmail's
transcript, OpenSMTPD, DragonFly, IMail, Lotus Notes and Domino, Apache James, and the unnamed
formats sisimai calls X1, X2, X3 and X6. Pure.
"""

from __future__ import annotations

import re

from blmonitor.bounces.detectors.detector import (
    ADDR,
    LONE_ADDR,
    Detector,
    failed_hits,
    failed_matches,
    listed_failures,
)
from blmonitor.bounces.hit import Hit, one_line
from blmonitor.bounces.needles import search_at, search_if
from blmonitor.bounces.smtp import command_of, unfold_reply

_EXIM_START = re.compile(
    r"(?:following address(?:\(es\))? failed:|following addresses? had (?:permanent|transient)"
    r" (?:fatal )?errors|has not yet been delivered to the following|could not be delivered to"
    r" one or more)",
    re.IGNORECASE,
)
_EXIM_SMTP = re.compile(
    r"SMTP error from remote mail(?:er| server) after (?P<cmd>[^\[]*?)\s*:?\s*"
    r"host\s+(?P<host>\S+)\s+\[(?P<ip>[^\]]+)\]:?\s*(?P<diag>.*)",
    re.IGNORECASE,
)
# Exim ≥ 4.8x names the host first: "host H [IP] SMTP error from remote mail server after X: …"
_EXIM_SMTP_NEW = re.compile(
    r"host\s+(?P<host>\S+)\s+\[(?P<ip>[^\]]+)\]:?\s*(?:Delay reason:\s*)?"
    r"SMTP error from remote mail(?:er| server)"
    r" after (?P<cmd>.+?):\s*(?P<diag>[245]\d\d\b.*)",
    re.IGNORECASE,
)


# Every match of _EXIM_START starts with one of these (lower-cased).
_EXIM_ANCHORS = ("following address", "has not yet been delivered", "could not be delivered")
# Exim's delay notice: "The address(es) to which the message has not yet been delivered is:"
# (tried, after a literal check, when _EXIM_START finds nothing).
_EXIM_DELAY = re.compile(r"(?:has not yet been delivered is|have not yet been delivered are):")
_EXIM_RCPT = re.compile(r"^ {1,3}<?([^\s<>]+?)>?:?\s*(?:\(.*\))?\s*$")


def _exim(text: str) -> list[Hit]:
    m = search_at(_EXIM_START, text, _EXIM_ANCHORS)
    if not m and "yet been delivered" in text:
        m = _EXIM_DELAY.search(text)
    if not m:
        return []
    delayed = "not yet been delivered" in m.group(0).lower()
    hits: list[Hit] = []
    lines = text[m.end() :].split("\n")[1:]
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("----") or line.startswith("******"):
            break
        am = _EXIM_RCPT.match(line) if line.startswith(" ") else None
        indented = i + 1 < len(lines) and lines[i + 1].startswith("    ")
        if am and ("@" in am.group(1) or indented):
            detail: list[str] = []
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                detail.append(lines[i].strip())
                i += 1
            text_detail = " ".join(detail)
            hit = Hit(recipient=am.group(1), action="delayed" if delayed else "failed")
            sm = _EXIM_SMTP.search(text_detail) or _EXIM_SMTP_NEW.search(text_detail)
            if sm:
                hit.remote_mta = sm.group("host")
                hit.diagnostic = sm.group("diag").strip()
                hit.command = command_of("after " + sm.group("cmd"))
                if not hit.command and "connection" in sm.group("cmd").lower():
                    hit.command = "CONN"
            else:
                hit.diagnostic = text_detail
                hm = re.search(r"host\s+(\S+)\s+\[[^\]]+\]", text_detail)
                if hm:
                    hit.remote_mta = hm.group(1)
            hits.append(hit)
            continue
        i += 1
    return hits


_ANGLE_START = re.compile(rf"^<({ADDR})>(?:\s*\(expanded from [^)]*\))?:\s*(.*)$")


_SAID = re.compile(r"(?:host (\S+?)\[[^\]]*\]|remote host (\S+)) said:\s*(.*)", re.IGNORECASE)


def _angle_blocks(text: str) -> list[Hit]:
    """qmail, Yahoo, Postfix plain text: '<rcpt>:' then the reason, up to a blank line."""
    hits: list[Hit] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _ANGLE_START.match(lines[i]) if lines[i].startswith("<") else None
        if not m:
            i += 1
            continue
        detail = [m.group(2)]
        i += 1
        while (
            i < len(lines)
            and lines[i].strip()
            and not (lines[i].startswith("<") and _ANGLE_START.match(lines[i]))
        ):
            if lines[i].startswith("---") or lines[i].startswith("(Other MXes"):
                break
            detail.append(lines[i].strip())
            i += 1
        joined = unfold_reply(detail)
        hit = Hit(recipient=m.group(1), diagnostic=joined)
        if sm := _SAID.search(joined):
            hit.remote_mta, hit.diagnostic = sm.group(1) or sm.group(2), sm.group(3)
        elif sm := re.search(r"Remote host said:\s*(.*)", joined):
            hit.diagnostic = sm.group(1)
        # qmail names the host and the stage in a sentence of its own
        if qm := re.search(r"(?:Connected to (\S+) but|^(\S+) failed after I sent)", joined):
            hit.remote_mta = hit.remote_mta or qm.group(1) or qm.group(2)
        hit.diagnostic = re.sub(r"\s*\(in reply to [^)]*\)\s*$", "", hit.diagnostic)
        hit.diagnostic = re.sub(
            r"\s*(?:I'm not going to try again|Giving up on ).*$", "", hit.diagnostic
        )
        hit.diagnostic = re.sub(r"\s*\.?\s*\(#(\d\.\d+\.\d+)\)\s*$", "", hit.diagnostic)
        if qm := re.search(r"\(#(\d\.\d+\.\d+)\)", joined):
            hit.status = qm.group(1)
        hit.command = command_of(joined)
        hits.append(hit)
    return hits


_DRAGONFLY = re.compile(r"There was an error delivering your mail to <([^>]+)>\.")


def _dragonfly(text: str) -> list[Hit]:
    m = _DRAGONFLY.search(text)
    if not m:
        return []
    rest = text[m.end() :].lstrip("\n").split("\n\n")[0].split("\n")
    hit = Hit(recipient=m.group(1))
    first = rest[0] if rest else ""
    if hm := re.match(r"^(\S+) \[[^\]]*\] did not like our ([^:]+):\s*(.*)$", first):
        hit.remote_mta = hm.group(1)
        hit.command = command_of("did not like our " + hm.group(2))
        hit.diagnostic = unfold_reply([hm.group(3), *rest[1:]])
    else:
        hit.diagnostic = unfold_reply(rest)
    return [hit]


_TRANSCRIPT = re.compile(r"-+ ?Transcript of session follows ?-+", re.IGNORECASE)
_TRANSCRIPT_END = re.compile(r"\n\s*-+ ?(?:Unsent message|Original message|Message)")
_TALKING_TO = re.compile(r"while talking to (\S+?)\.?:\s*$")
_SENDMAIL_RCPT = re.compile(rf"^([245]\d\d)(?:[ -]([245]\.\d+\.\d+))?\s+<?({ADDR})>?\.\.\.\s*(.*)$")


def _sendmail(text: str) -> list[Hit]:
    """Sendmail's plain-text transcript: '... while talking to host.:', '>>> CMD', '<<< reply'."""
    if not (m := _TRANSCRIPT.search(text)):
        return []
    body = _TRANSCRIPT_END.split(text[m.end() :], maxsplit=1)[0]
    hits: dict[str, Hit] = {}
    host = command = last_reply = ""
    for line in body.split("\n"):
        s = line.strip()
        if "while talking to " in s and (tm := _TALKING_TO.search(s)):
            host, command, last_reply = tm.group(1), "", ""
        elif s.startswith(">>> "):
            command = command_of(s)
        elif s.startswith("<<< "):
            last_reply = s[4:]
        elif s[:1] in ("2", "4", "5") and (rm := _SENDMAIL_RCPT.match(s)):
            rcpt = rm.group(3)
            hits.setdefault(
                rcpt.lower(),
                Hit(
                    recipient=rcpt,
                    reply_code=rm.group(1),
                    status=rm.group(2) or "",
                    remote_mta=host,
                    command=command,
                    diagnostic=last_reply or s,
                ),
            )
    return list(hits.values())


_OPENSMTPD = re.compile(r"for\s+the following\s+list of recipients:", re.IGNORECASE)
_OPENSMTPD_LINE = re.compile(r"^\s*([^\s<>@:]+@[^\s<>:]+):\s+(\d{3}[ -].*)$")
# A recipient whose reason is OpenSMTPD's own ('Domain does not exist', 'Envelope expired'):
# read only before the returned copy.
_OPENSMTPD_REASON = re.compile(r"^([^\s<>@:]+@[^\s<>:]+):\s+(\S.*)$")


def _opensmtpd(text: str) -> list[Hit]:
    """OpenSMTPD: '… for the following list of recipients:' then 'rcpt: reply' lines."""
    start = _OPENSMTPD.search(text)
    if not start:
        return []
    # Hits read after a line break in 'for the following', or from a reason without a reply
    # code, are not given to a DSN's records of the same recipients: those kept their own
    # (empty) diagnostic before these were read, and stay as they were.
    fills = "for the following" in start.group(0).lower()
    hits = []
    own = True  # before 'Below is a copy of the original message:'
    for line in text[start.end() :].split("\n"):
        if m := _OPENSMTPD_LINE.match(line):
            reply = m.group(2).strip()
            hit = Hit(recipient=m.group(1), diagnostic=reply, command=command_of(reply))
            hit.fills = fills
            hits.append(hit)
        elif own and "Below is a copy of the original message" in line:
            own = False
        elif own and (m := _OPENSMTPD_REASON.match(line)):
            delayed = "A message is delayed" in text[: start.start()]
            action = "delayed" if delayed else "failed"
            reason = m.group(2).strip()
            hits.append(Hit(recipient=m.group(1), action=action, diagnostic=reason, fills=False))
    return hits


_TRANSCRIPT_RCPT = re.compile(r"^\s*Recipient:\s*<([^>]+)>", re.IGNORECASE)


def _transcript(text: str) -> list[Hit]:
    """'Recipient: <rcpt>' followed by the SMTP dialogue ('>>> MAIL FROM…', '<<< 550 …'),
    as au/EZweb and some appliances write it."""
    hits: list[Hit] = []
    current: Hit | None = None
    for line in text.split("\n"):
        if m := _TRANSCRIPT_RCPT.match(line):
            current = Hit(recipient=m.group(1))
            hits.append(current)
        elif current is not None and (sent := re.match(r"^\s*>>>\s*(\S+)", line)):
            current.command = sent.group(1).upper().rstrip(":").split(":")[0]
        elif current is not None and (reply := re.match(r"^\s*<<<\s*(.*)$", line)):
            current.diagnostic = (current.diagnostic + " " + reply.group(1)).strip()
    return [h for h in hits if h.diagnostic]


_IMAIL = re.compile(r"^undeliverable to (\S+@\S+)\s*$", re.IGNORECASE | re.MULTILINE)


def _imail(text: str) -> list[Hit]:
    """IMail: 'undeliverable to rcpt' then 'Body of message generated response:' + reply."""
    rcpt = _IMAIL.search(text)
    if not rcpt:
        return []
    body = re.search(r"generated response:\s*\n(.*?)(?:\n\s*\n|\Z)", text, re.IGNORECASE | re.S)
    if not body:
        return []
    return [Hit(recipient=rcpt.group(1), diagnostic=unfold_reply(body.group(1).split("\n")))]


_IMAIL_SHORT = re.compile(rf"^([^\n:]{{3,80}}):\s*({ADDR})\s*\nOriginal message follows\.")


def _imail_short(text: str) -> list[Hit]:
    """IMail's short notice: 'Unknown user: rcpt' then 'Original message follows.'."""
    if "\nOriginal message follows." not in text:
        return []
    m = _IMAIL_SHORT.search(text)
    return [Hit(recipient=m.group(2), diagnostic=m.group(1).strip())] if m else []


_X1_LINE = re.compile(rf"^({ADDR}) \[([^\]\n]+)\]\s*$", re.MULTILINE)


def _x1(text: str) -> list[Hit]:
    """'---The following addresses had delivery errors---', then 'rcpt [reason]' lines."""
    start = text.find("---The following addresses had delivery errors---")
    if start < 0:
        return []
    return [
        Hit(recipient=m.group(1), diagnostic=m.group(2)) for m in _X1_LINE.finditer(text, start)
    ]


_X3_START = re.compile(
    r"Del[ei]very to the following recipients (failed permanently|was aborted after [^:\n]*):"
)
_X3_SMTP = re.compile(r"^SMTP:(\w+) host (\S+?):\s*(.*)$")


def _x3(text: str) -> list[Hit]:
    """'This is an automatically generated Delivery Status Notification.': '* rcpt' lines,
    then 'Technical details:' and the reply ('SMTP:RCPT host IP: 553 …')."""
    m = _X3_START.search(text) if "automatically generated Delivery Status" in text else None
    if not m:
        return []
    rcpts = re.findall(rf"^\s+\* ({ADDR})\s*$", text[m.end() : m.end() + 4000], re.MULTILINE)
    diag = m.group(0).rstrip(":")
    remote = command = ""
    tech = text.find("Technical details:", m.end())
    if tech >= 0:
        for line in text[tech + len("Technical details:") :].split("\n"):
            line = line.strip()
            if line.startswith("#") or line.startswith("=") or not line:
                continue
            diag = line
            if sm := _X3_SMTP.match(line):
                command, remote, diag = sm.group(1).upper(), sm.group(2), sm.group(3)
            break
    action = "failed" if m.group(1).startswith("failed") or tech >= 0 else ""
    return [
        Hit(recipient=r, action=action, diagnostic=diag, remote_mta=remote, command=command)
        for r in dict.fromkeys(rcpts)
    ]


_NOTES = re.compile(
    r"^-{7} Failure Reasons +-{8}\n(.*?)^-{7} Returned Message -{8}", re.MULTILINE | re.DOTALL
)


def _notes(text: str) -> list[Hit]:
    """Lotus Notes: '------- Failure Reasons --------', the reason, then the recipients,
    up to '------- Returned Message --------'."""
    m = search_if("------- Failure Reasons", _NOTES, text)
    if not m:
        return []
    rcpts: list[str] = []
    reason: list[str] = []
    for line in m.group(1).split("\n"):
        if am := LONE_ADDR.match(line):
            rcpts.append(am.group(1))
        elif line.strip():
            reason.append(line.strip())
    diag = " ".join(reason)
    return failed_hits(rcpts, diag)


_DOMINO = re.compile(
    r"^was not delivered to:\s*\n(.*?)^because:\s*\n\s*\n?(.*?)(?:\n\s*\n|\Z)",
    re.MULTILINE | re.DOTALL,
)


def _domino(text: str) -> list[Hit]:
    """Lotus Domino: 'was not delivered to:', the recipients, 'because:' and the reason."""
    m = search_if("\nbecause:", _DOMINO, text)
    return listed_failures(m.group(1), one_line(m.group(2))) if m else []


_X6_PERMANENT = re.compile(
    rf"returned permanent errors: ({ADDR})\. Reason: (?:SMTP Server <([^>\s]+)> )?([^\n]*)"
)
_X6_REJECTED = re.compile(
    rf"SMTP Server <([^>\s]+)> rejected recipient <({ADDR})> \(Error following (\w+)"
    r" command\)\. It responded as follows: \[([^\n]*)\]"
)


def _x6(text: str) -> list[Hit]:
    """'We had trouble delivering your message.': 'The following recipients returned permanent
    errors: rcpt. Reason: SMTP Server <IP> refused … error message: [reply]', or 'SMTP Server
    <host> rejected recipient <rcpt> (Error following RCPT command). … [reply]'."""
    if "We had trouble delivering your message" not in text:
        return []
    hits = []
    for m in _X6_PERMANENT.finditer(text):
        hit = Hit(recipient=m.group(1), action="failed", remote_mta=m.group(2) or "")
        reason = m.group(3)
        hit.diagnostic = reason.partition("error message: [")[2].rstrip("]") or reason
        if cm := re.search(r"your message \((\w+)\)", reason):
            hit.command = cm.group(1).upper()
        hits.append(hit)
    for m in _X6_REJECTED.finditer(text):
        hits.append(
            Hit(
                recipient=m.group(2),
                action="failed",
                remote_mta=m.group(1),
                command=m.group(3).upper(),
                diagnostic=m.group(4),
            )
        )
    return hits


_APACHEJAMES = re.compile(r"Error message below:\s*\n((?:[^\n]+\n)+)")
_APACHEJAMES_RCPT = re.compile(rf"^\s*RCPT TO: ({ADDR})\s*$", re.MULTILINE)


def _apachejames(text: str) -> list[Hit]:
    """Apache James: 'Error message below:' and the reply, the recipients as 'RCPT TO: rcpt'
    under 'Message details:'."""
    m = search_if("Error message below:", _APACHEJAMES, text)
    if not m:
        return []
    diag = unfold_reply(m.group(1).split("\n"))
    rcpts = _APACHEJAMES_RCPT.findall(text, m.end())
    return failed_hits(rcpts, diag)


_X2_FAILED = re.compile(
    rf"^Delivery failed: ({ADDR})\s*\n(?:(\S+) failed after I sent the message\.\s*\n)?"
    r"Remote host said(?:\[Response Message\])?:\s*([^\n]*)(?:\nSTEP: (\w+))?",
    re.MULTILINE,
)


def _x2(text: str) -> list[Hit]:
    """'NOTICE: Delivery Failure.': 'Delivery failed: rcpt', 'host failed after I sent the
    message.', 'Remote host said[Response Message]: reply', 'STEP: DATA SEND'."""
    if "\nDelivery failed: " not in text:
        return []
    hits = []
    for m in _X2_FAILED.finditer(text):
        hit = Hit(recipient=m.group(1), remote_mta=m.group(2) or "", diagnostic=m.group(3))
        if m.group(2):
            hit.command = "DATA"  # 'failed after I sent the message'
        elif m.group(4):
            hit.command = m.group(4).upper()
        hits.append(hit)
    return hits


_UNABLE_MAIL = re.compile(rf"^([^\n:<>]{{3,80}}): <({ADDR})>\s*\nUnable to deliver mail\.", re.M)


def _unable_mail(text: str) -> list[Hit]:
    """A short notice: 'User's mailbox is full: <rcpt>' then 'Unable to deliver mail.'."""
    return failed_matches(_UNABLE_MAIL.finditer(text), recipient=2, diagnostic=1)


# Detector(name, finder, order, needles): see `Detector`.
DETECTORS = (
    Detector("opensmtpd", _opensmtpd, 10, ("list of recipients:",)),
    # (every line _TRANSCRIPT_RCPT matches holds "recipient:")
    Detector("transcript", _transcript, 20, ("recipient:",)),
    Detector("imail", _imail, 30, ("undeliverable to",)),
    Detector(
        "exim",
        _exim,
        40,
        ("following address", "not yet been delivered", "could not be delivered to one"),
    ),
    Detector("dragonfly", _dragonfly, 50, ("there was an error delivering your mail to <",)),
    Detector("sendmail", _sendmail, 90, ("transcript of session follows",)),
    # qmail, Yahoo, Postfix and others that write '<rcpt>: reason'
    Detector("text", _angle_blocks, 100, ("\n<",), starts=("<",)),
    # IMail's short notice
    Detector("imailserver", _imail_short, 140, ("\noriginal message follows.",)),
    Detector("x1", _x1, 160, ("---the following addresses had delivery errors---",)),
    Detector("x3", _x3, 170, ("automatically generated delivery status",)),
)
# Notices of their own (see `detectors.NOTICES`).
NOTICES = (
    # Lotus Notes
    Detector("notes", _notes, 200, ("------- failure reasons",)),
    Detector("domino", _domino, 250, ("\nbecause:",)),
    Detector("x6", _x6, 270, ("we had trouble delivering your message",)),
    Detector("apachejames", _apachejames, 320, ("error message below:",)),
    Detector("x2", _x2, 340, ("\ndelivery failed: ",)),
    # 'rcpt is …: <rcpt>' / 'Unable to deliver mail.'
    Detector("unabletodeliver", _unable_mail, 350, ("\nunable to deliver mail.",)),
)
