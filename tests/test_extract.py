"""Extraction: returned messages and MTA log lines → BounceRecords.

The message table uses copies of real bounces from sisimai/set-of-emails (tests/data/bounces/,
BSD-2-Clause, see PROVENANCE.md there); the log samples in tests/data/logs/ are our own lines in
each MTA's documented format.
"""

from __future__ import annotations

import base64
import io
import logging
import random
import sys
from datetime import datetime
from pathlib import Path

import pytest

from blmonitor.bounces.extract import extract_records, parse_message
from blmonitor.bounces.logs import parse_log_line
from blmonitor.bounces.mailbox import parse_mbox, read_path

DATA = Path(__file__).parent / "data"
BOUNCES = DATA / "bounces"
LOGS = DATA / "logs"
CORPUS = Path(__file__).parents[2] / "shared" / "corpus" / "sisimai-set-of-emails"

# (file, [(recipient, action, status, reply_code, remote_mta, diagnostic starts with, command,
#   message_id), ...]) — one row per failed or delayed recipient; [] for what is not a bounce.
MESSAGES = [
    (  # OpenSMTPD: the DSN has no diagnostic; the text's 'rcpt: reply' line fills it
        "bsd/lhost-opensmtpd-13.eml",
        [
            (
                "pseudo-local-part-of-yahoo-inc@yahoo.com",
                "delayed",
                "4.0.0",
                "421",
                "",
                "421 4.7.0 [TSS04] Messages from 192.0.2.",
                "",
                "<74f4e39a1c26094a@df.example.jp>",
            ),
        ],
    ),
    (  # au/EZweb: 'Recipient: <…>' and the SMTP dialogue
        "bsd/lhost-ezweb-08.eml",
        [
            (
                "kijitora-neko-nyaan-22222-cats@hotmail.com",
                "failed",
                "",
                "550",
                "",
                "550 SC-004 (COL0-MC1-F1) Unfortunately, ",
                "MAIL",
                "",
            ),
        ],
    ),
    (  # IMail: 'undeliverable to …' and the generated response
        "bsd/lhost-imailserver-06.eml",
        [
            (
                "kijitora@example.jp",
                "failed",
                "",
                "550",
                "",
                "550-REJECTED - Blacklisted URL in messag",
                "",
                "",
            ),
        ],
    ),
    (  # Google Groups: the group's address from the returned original's To:
        "bsd/lhost-googlegroups-02.eml",
        [
            (
                "libsisimai@googlegroups.com",
                "failed",
                "",
                "",
                "",
                "We're writing to let you know that the g",
                "",
                "<C49550E2-5112-44DD-9976-042A766A412C@example.jp>",
            ),
        ],
    ),
    (  # Google Groups, a localised notice (Chinese): the first paragraph
        "bsd/lhost-googlegroups-13.eml",
        [
            (
                "libsisimai@googlegroups.com",
                "failed",
                "",
                "",
                "",
                "我們謹此通知，您試圖聯絡的「libsisimai」群組可能不存在，或者您沒有在此",
                "",
                "<BA12E0AA-C7DA-4337-922A-9A6496523DAA@example.jp>",
            ),
        ],
    ),
    (  # Zoho: 'rcpt Invalid Address, ERROR_CODE :550, ERROR_CODE :reply' lines
        "bsd/lhost-zoho-02.eml",
        [
            (
                "mikeneko@example.co.jp",
                "failed",
                "5.2.1",
                "550",
                "",
                "550 5.2.1 <mikeneko@example.co.jp>... Us",
                "",
                "",
            ),
            (
                "sabineko@example.co.jp",
                "failed",
                "5.2.2",
                "550",
                "",
                "550 5.2.2 <sabineko@example.co.jp>... Ma",
                "",
                "",
            ),
        ],
    ),
    (  # Zoho warning: '[Status: Error, Address: <rcpt>, ResponseCode 421, , text]'
        "bsd/lhost-zoho-04.eml",
        [
            (
                "kijitora@6kaku.example.co.jp",
                "delayed",
                "",
                "421",
                "",
                "421 Host not reachable.",
                "",
                "",
            ),
        ],
    ),
    (  # m-FILTER: '-------server message' and '-------SMTP command'
        "bsd/lhost-mfilter-02.eml",
        [
            (
                "kijitora@example.co.jp",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 <kijitora@example.co.jp>: Reci",
                "DATA",
                "<000000000000@exmaple.jp>",
            ),
        ],
    ),
    (  # IMail's short notice: 'Unknown user: rcpt' / 'Original message follows.'
        "bsd/lhost-imailserver-01.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "",
                "",
                "",
                "Unknown user",
                "",
                "<00000000.ffffffff@example.org>",
            ),
        ],
    ),
    (  # GMX: '"rcpt":', the SMTP error and host lines, the reply
        "bsd/lhost-gmx-03.eml",
        [
            (
                "mikeneko@example.co.jp",
                "failed",
                "5.2.1",
                "",
                "mx.example.co.jp",
                "5.2.1 <mikeneko@example.co.jp>... User U",
                "RCPT",
                "<trinity-a789f317-7b04-44ee-a4e7-bb102ff02906-1417217561570@3capp-mailcom-lxa02>",
            ),
            (
                "sabineko@example.co.jp",
                "failed",
                "5.2.2",
                "",
                "mx.example.co.jp",
                "5.2.2 <sabineko@example.co.jp>... Mailbo",
                "RCPT",
                "<trinity-a789f317-7b04-44ee-a4e7-bb102ff02906-1417217561570@3capp-mailcom-lxa02>",
            ),
        ],
    ),
    (  # 1&1: 'rcpt:' then one line 'SMTP error … for TEXT command, host: H (IP) reason: …'
        "bsd/lhost-einsundeins-03.eml",
        [
            (
                "xxxx@xxxx.fr",
                "failed",
                "5.2.0",
                "550",
                "smtp-in.orange.fr",
                "550 5.2.0 Mail rejete. Mail rejected. of",
                "DATA",
                "<1576497267.@xxxx.xxxx>",
            ),
        ],
    ),
    (  # X1: 'rcpt [reason]' under '---The following addresses had delivery errors---'
        "bsd/lhost-x1-01.eml",
        [
            ("kijitora@example.co.jp", "failed", "", "", "", "User unknown", "", ""),
        ],
    ),
    (  # X3: '* rcpt' and 'Technical details:' 'SMTP:RCPT host IP: reply'
        "bsd/lhost-x3-01.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "5.3.0",
                "553",
                "192.0.2.8",
                "553 5.3.0 <kijitora@example.com>... No s",
                "RCPT",
                "",
            ),
        ],
    ),
    (  # MX Logic: '  <rcpt>: reply' over two lines
        "bsd/lhost-mxlogic-03.eml",
        [
            (
                "kijitora@example.co.jp",
                "failed",
                "",
                "550",
                "",
                "550 unknown user <kijitora@example.co.jp",
                "",
                "<0000.0000000000000000@mx4145.example.org>",
            ),
        ],
    ),
    (  # OpenSMTPD, 'for' and 'the following list of recipients:' on two lines
        "bsd/lhost-opensmtpd-01.eml",
        [
            (
                "apdugoaidugoaidugoaeiudggadi@gmail.com",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 http://support.google.com/mail",
                "",
                "",
            ),
        ],
    ),
    (  # OpenSMTPD's own reason (no reply code) in a delay notice
        "bsd/lhost-opensmtpd-04.eml",
        [
            (
                "kijitora@neko.example.jp",
                "delayed",
                "",
                "",
                "",
                "Network error on destination MXs",
                "",
                "",
            ),
        ],
    ),
    ("bsd/arf-01.eml", []),
    (
        "bsd/lhost-amazonses-16.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "5.7.1",
                "521",
                "",
                "521-5.7.1 Service unavailable; client [2",
                "",
                "<20222244efee00-2022eefe-e2ee-eee0-aaef-2022eaaf0000-000000@email.amazonses.com>",
            ),
        ],
    ),
    (
        "bsd/lhost-dragonfly-01.eml",
        [
            (
                "pseudo-local-part@google.example.com",
                "failed",
                "",
                "",
                "gmail-smtp-in.l.google.com",
                "Unauthenticated email from example.jp is",
                "DATA",
                "<66681288.e06d1.3824794@df.example.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-dragonfly-06.eml",
        [
            (
                "blocked@libsisimai.net",
                "failed",
                "",
                "",
                "mail-inbound.libsisimai.net",
                "<blocked@libsisimai.net>: Recipient addr",
                "RCPT",
                "<6668171d.e0724.4a78d49a@df.example.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-exchange2003-02.eml",
        [
            (
                "kijitora@example.co.jp",
                "failed",
                "",
                "",
                "",
                "The recipient name is not recognized",
                "",
                "<000000000000000.0000000@example.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-exchange2007-01.eml",
        [
            (
                "mikeneko@example.co.jp",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 RESOLVER.ADR.RecipNotFound; no",
                "",
                "",
            ),
        ],
    ),
    (
        "bsd/lhost-exim-02.eml",
        [
            (
                "kijitora@example.jp",
                "failed",
                "5.1.1",
                "550",
                "mx.example.jp",
                "550 5.1.1 <kijitora@example.jp>... User ",
                "RCPT",
                "<E1X58pB-0004bW-2s@marutamachi.example.org>",
            ),
            (
                "sabatora@example.jp",
                "failed",
                "5.2.1",
                "550",
                "mx.example.jp",
                "550 5.2.1 <sabatora@example.jp>... User ",
                "RCPT",
                "<E1X58pB-0004bW-2s@marutamachi.example.org>",
            ),
        ],
    ),
    (
        "bsd/lhost-exim-05.eml",
        [
            (
                "kijitora@neko.example.co.jp",
                "failed",
                "5.1.1",
                "553",
                "mx49.neko.example.co.jp",
                "553 5.1.1 unknown or illegal user: kijit",
                "RCPT",
                "<19990429233445.000000@mx4.example.org>",
            ),
        ],
    ),
    (
        "bsd/lhost-exim-32.eml",
        [
            (
                "kijitora@example.net",
                "failed",
                "",
                "571",
                "relay.example.net",
                "571 No PTR Record found. Reverse DNS req",
                "CONN",
                "<neko222-nyaaan-22@neko.example.com>",
            ),
        ],
    ),
    (
        "bsd/lhost-exim-45.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "5.2.0",
                "550",
                "smtp.secureserver.net",
                "550 5.2.0 <sironeko-nyaan@neko.example.c",
                "DATA",
                "<neko222-nyaaan-22@neko.example.com>",
            ),
        ],
    ),
    (
        "bsd/lhost-gmail-04.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "5.7.1",
                "554",
                "",
                "554 554 5.7.1 Service unavailable; Clien",
                "",
                "<CAJYcEwW7ghrwjbwmwK3GKRG98qSVTKhGBvnkbVH1RdwFJwHWFQ@mail.gmail.com>",
            ),
        ],
    ),
    (
        "bsd/lhost-gmail-06.eml",
        [
            (
                "kijitora@example.jp",
                "delayed",
                "4.2.2",
                "450",
                "",
                "450 450 4.2.2 <kijitora@example.jp>... M",
                "",
                "<A4D6026C-0699-460F-9F86-C2A5CB4BE6CE@gmail.com>",
            ),
        ],
    ),
    (
        "bsd/lhost-office365-02.eml",
        [
            (
                "kijitora@example.onmicrosoft.com",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 RESOLVER.ADR.RecipNotFound; no",
                "",
                "<c302b7e8-9b97-40ef-90eb-313cc6c25133@NYAAAAN.example.org>",
            ),
        ],
    ),
    (
        "bsd/lhost-postfix-02.eml",
        [
            (
                "filtered@example.co.jp",
                "failed",
                "5.2.1",
                "550",
                "mx.example.co.jp",
                "550 5.2.1 <filtered@example.co.jp>... Us",
                "RCPT",
                "",
            ),
            (
                "userunknown@example.co.jp",
                "failed",
                "5.1.1",
                "550",
                "mx.example.co.jp",
                "550 5.1.1 <userunknown@example.co.jp>...",
                "RCPT",
                "",
            ),
        ],
    ),
    (
        "bsd/lhost-postfix-07.eml",
        [
            (
                "kijitora@user.example.or.jp",
                "failed",
                "",
                "550",
                "mx.user.example.or.jp",
                "550 <kijitora@user.example.or.jp>: User ",
                "",
                "<8EF96F3F-377B-4E4D-9F3C-54EE1924B2BA@mirror.example.ne.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-postfix-74.eml",
        [
            (
                "kijitora@y.example.ca",
                "failed",
                "4.7.0",
                "421",
                "mta6.am0.yahoodns.net",
                "421 4.7.0 [TSS04] Messages from 192.0.2.",
                "MAIL",
                "<9UK8P757b8z3ZQM@u1.em.example.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-postfix-80.eml",
        [
            (
                "xxxx@xxxx.com",
                "failed",
                "5.1.0",
                "550",
                "xxxx.xxxx.com",
                "550-5.1.0 MXIN506 MailFrom domain is lis",
                "MAIL",
                "<1761564505.xxxx@xxxx.com>",
            ),
        ],
    ),
    (
        "bsd/lhost-qmail-14.eml",
        [
            (
                "pseudo-local-part-of-google-gmail@gmail.com",
                "failed",
                "5.7.26",
                "550",
                "74.125.204.27",
                "550-5.7.26 Unauthenticated email from ex",
                "DATA",
                "<20240624085401.44481.qmail@nq.example.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-qmail-19.eml",
        [
            (
                "pseudo-local-part-of-yahoo-inc@yahoo.com",
                "delayed",
                "4.7.0",
                "421",
                "98.136.96.74",
                "421 4.7.0 [TSS04] Messages from 192.0.2.",
                "MAIL",
                "<20240624061002.40681.qmail@nq.example.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-sendmail-17.eml",
        [
            (
                "kijitora@example.net",
                "failed",
                "5.1.6",
                "551",
                "smtp45.example.net",
                "551 not our user",
                "DATA",
                "<200904292345.00000000000000@example.com>",
            ),
        ],
    ),
    (
        "bsd/lhost-v5sendmail-03.eml",
        [
            (
                "kijitora@example.org",
                "failed",
                "",
                "550",
                "",
                "550 <kijitora@example.org>, User Unknown",
                "RCPT",
                "",
            ),
        ],
    ),
    (
        "bsd/lhost-yahoo-01.eml",
        [
            (
                "kijitora@example.org",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 <kijitora@example.org>... User",
                "RCPT",
                "<6AE6249A-E7A8-4980-862C-F499F6B8E7C5@y.example.co.jp>",
            ),
        ],
    ),
    (
        "bsd/lhost-yahoo-11.eml",
        [
            (
                "kijitora@example.jp",
                "failed",
                "5.1.8",
                "501",
                "",
                "501 5.1.8 Sender address rejected [MAIL_",
                "MAIL",
                "<967641.42676.qm@web101219.mail.kks.yahoo.co.jp>",
            ),
        ],
    ),
    ("bsd/rfc3834-01.eml", []),
    (
        "bsd/rhost-godaddy-02.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "5.1.3",
                "553",
                "smtp.secureserver.net",
                "553 http://www.spamhaus.org/query/bl?ip=",
                "RCPT",
                "<200904010549.n315nLUx008574@mta1.example.net>",
            ),
        ],
    ),
    (
        "bsd/rhost-microsoft-05.eml",
        [
            (
                "pseudo-local-part-of-microsoft@outlook.com",
                "failed",
                "4.7.650",
                "451",
                "outlook-com.olc.protection.outlook.com",
                "451 4.7.650 The mail server [192.0.2.25]",
                "MAIL",
                "<WpZGzDpcy1zw5NGv@relay0.example.jp>",
            ),
        ],
    ),
    (
        "bsd/rhost-microsoft-06.eml",
        [
            (
                "sabineko@example.onmicrosoft.com",
                "failed",
                "5.7.515",
                "550",
                "198.51.100.25",
                "550 5.7.515 Access denied, sending domai",
                "DATA",
                "<5E82FFFE9D95.88616A92ACCB@relay-1.nyaaaan.example.onmicrosoft.com>",
            ),
        ],
    ),
    (
        "dos/lhost-gmail-01.eml",
        [
            (
                "userunknown@example.jp",
                "failed",
                "5.1.1",
                "550",
                "mx.example.jp",
                "550 5.1.1 <userunknown@example.jp>... Us",
                "",
                "<D992C2C3-F175-4C4D-97E2-53A90E4E5BF5@gmail.com>",
            ),
        ],
    ),
    (
        "dos/lhost-office365-01.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "5.1.10",
                "550",
                "",
                "550 5.1.10 RESOLVER.ADR.RecipientNotFoun",
                "",
                "<FFFFFFFF.EEEEEEEE@example.ed.jp>",
            ),
        ],
    ),
    (
        "dos/lhost-sendmail-01.eml",
        [
            (
                "userunknown@bouncehammer.jp",
                "failed",
                "5.1.1",
                "550",
                "mx.bouncehammer.jp",
                "550 5.1.1 <userunknown@bouncehammer.jp>.",
                "DATA",
                "<E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org>",
            ),
        ],
    ),
    (
        "err/make-test-07.eml",
        [
            (
                "userunknown@example.com",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 <userunknown@example.com>... U",
                "",
                "<20090330081819.3619.qmail@mta.example.co.jp>",
            ),
        ],
    ),
    (
        "mac/lhost-exim-01.eml",
        [
            (
                "kijitora@example.ed.jp",
                "failed",
                "5.7.0",
                "550",
                "mx.example.jp",
                "550 5.7.0 <shironeko@example.jp>... Plea",
                "MAIL",
                "<E1P1ce6-000Egt-GZ@e1.example.org>",
            ),
        ],
    ),
    (
        "mac/lhost-qmail-01.eml",
        [
            (
                "kijitora@example.ne.jp",
                "failed",
                "5.5.0",
                "550",
                "192.0.2.32",
                "550 Unknown user kijitora@example.ne.jp",
                "RCPT",
                "<000000000.9999999999999.JavaMail.postmaster@mailhub>",
            ),
        ],
    ),
    (
        "mac/rhost-microsoft-01.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "5.7.606",
                "550",
                "example.com.mail.protection.outlook.com",
                "550 5.7.606 Access denied, banned sendin",
                "DATA",
                "<00000000000000000000000000000000000000000000000@example.net>",
            ),
        ],
    ),
    ("not/is-not-bounce-01.eml", []),
    ("not/is-not-bounce-02.eml", []),
    ("not/rb-issue-368-bug.eml", []),
    (  # Lotus Notes: '------- Failure Reasons', the reason (ISO-2022-JP), the recipient
        "bsd/lhost-notes-01.eml",
        [
            (
                "kijitora@u1.example.co.jp",
                "failed",
                "",
                "",
                "",
                "エラー(テストメッセージとしての)",
                "",
                "<000000000.0000000000000.notes@example.co.jp>",
            ),
        ],
    ),
    (  # Lotus Notes, an English reason
        "bsd/lhost-notes-03.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "",
                "",
                "",
                "User not listed in public Name & Address",
                "",
                "<0000000000.0000000@mx12.example.or.jp>",
            ),
        ],
    ),
    (  # KDDI: 'Could not be delivered to: <rcpt>', the reason on the next line
        "bsd/lhost-kddi-02.eml",
        [
            (
                "kijitora@00000000000000.dion.ne.jp",
                "failed",
                "",
                "",
                "",
                "As their mailbox is full.",
                "",
                "<00000000.000000000000000@exampe.cat>",
            ),
        ],
    ),
    (  # TrendMicro InterScan: 'Sent <<< RCPT TO:<rcpt>' / 'Received >>> reply'
        "bsd/lhost-trendmicro-01.eml",
        [
            (
                "kijitora@example.co.jp",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 <kijitora@example.co.jp>... us",
                "RCPT",
                "<00000000000.000000000000@e3.example.co.jp>",
            ),
        ],
    ),
    (  # TrendMicro InterScan: 'Unable to deliver message to <rcpt> (…)'
        "bsd/lhost-trendmicro-03.eml",
        [
            (
                "kijitora@example.jp",
                "failed",
                "",
                "",
                "",
                "Unable to deliver message to <kijitora@e",
                "",
                "",
            ),
        ],
    ),
    (  # Active!hunter: '>>> rcpt <rcpt>', the reply after the transcript line
        "bsd/lhost-activehunter-01.eml",
        [
            (
                "kijitora@example.org",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 sorry, no mailbox here by that name ",
                "",
                "<0000000000.00000000000@mx4.example.org>",
            ),
        ],
    ),
    (  # BIGLOBE: 'delivery problems' recipients, 'Non-delivered information' reason
        "bsd/lhost-biglobe-01.eml",
        [
            (
                "postmaster@mxr.biglobe.ne.jp",
                "failed",
                "",
                "",
                "",
                "The number of messages in recipient's ma",
                "",
                "<000000000000000000000000000000@example.com>",
            ),
        ],
    ),
    (  # Domino: 'was not delivered to:' rcpt 'because:' reason
        "bsd/lhost-domino-01.eml",
        [
            (
                "kijitora@example.jp",
                "failed",
                "",
                "",
                "",
                "User some.name (kijitora@example.jp) not",
                "",
                "",
            ),
        ],
    ),
    (  # Exim delay notice: 'The address to which … has not yet been delivered is:'
        "bsd/lhost-exim-38.eml",
        [
            (
                "kijitora@example.co.jp",
                "delayed",
                "",
                "450",
                "mta-nyaan.example.co.jp",
                "450 service permits 2 unverifyable sendi",
                "MAIL",
                "",
            ),
        ],
    ),
    (  # Amazon SES bounce notification, JSON inside an SNS envelope
        "bsd/lhost-amazonses-10.eml",
        [
            (
                "bounce@simulator.amazonses.com",
                "failed",
                "5.1.1",
                "550",
                "",
                "550 5.1.1 user unknown",
                "",
                "",
            ),
        ],
    ),
    (  # X6: 'returned permanent errors: rcpt. Reason: SMTP Server <IP> refused …'
        "bsd/lhost-x6-01.eml",
        [
            (
                "kijitora@nyaan.example.org",
                "failed",
                "5.4.6",
                "554",
                "192.0.2.223",
                "554 5.4.6 Hop count exceeded - possible ",
                "DATA",
                "<68b329da9893e34099c7d8ad5cb9c940@x6.example.co.jp>",
            ),
        ],
    ),
    (  # X6: 'SMTP Server <host> rejected recipient <rcpt> (Error following RCPT …'
        "bsd/lhost-x6-02.eml",
        [
            (
                "kijitora@libsisimai.org",
                "failed",
                "5.1.1",
                "550",
                "smtpd.libsisimai.org",
                "550 5.1.1 User unknown",
                "RCPT",
                "<6ac566f9b25c11c29ceed6217d1feefe@x6.libsisimai.org>",
            ),
        ],
    ),
    (  # MailFoundry: 'host[IP] responded with failure: reply'
        "bsd/lhost-mailfoundry-02.eml",
        [
            (
                "kijitora@example.org",
                "failed",
                "5.1.1",
                "552",
                "mail.example.org",
                "552 sorry, mailbox kijitora@example.org ",
                "",
                "<00000000000000000.neko@cat.example.net>",
            ),
        ],
    ),
    (  # Mimecast: '-- rcpt', 'Additional information follows :' '-- reply'
        "bsd/lhost-mimecast-02.eml",
        [
            (
                "sabatora@example.net",
                "failed",
                "5.7.54",
                "",
                "",
                "5.7.54 SMTP; Unable to relay recipient i",
                "",
                "",
            ),
        ],
    ),
    (  # MessageLabs: the DSN has no recipient; the text's rcpt and 'Reason:' reply
        "bsd/rhost-messagelabs-01.eml",
        [
            (
                "kijitora@example.messagelabs.com",
                "failed",
                "",
                "550",
                "",
                "550-Please turn on SMTP Authentication i",
                "",
                "<000000000222.0000.0000000000000000202@NEKO.NYAAN>",
            ),
        ],
    ),
    (  # MailMarshal: 'Could not be delivered because of' reply, affected recipients
        "bsd/lhost-mailmarshal-02.eml",
        [
            (
                "kijitora@nyaan.example.com",
                "failed",
                "5.1.1",
                "550",
                "203.0.113.2",
                "550 5.1.1 User unknown",
                "",
                "",
            ),
        ],
    ),
    (  # Apache James: 'Error message below:' reply, 'RCPT TO: rcpt'
        "bsd/lhost-apachejames-01.eml",
        [
            (
                "000000000000@vtext.example.com",
                "failed",
                "",
                "550",
                "",
                "550 - Requested action not taken: no suc",
                "",
                "",
            ),
        ],
    ),
    (  # EZweb notice without a transcript: '<rcpt>' and the English sentence
        "bsd/lhost-ezweb-03.eml",
        [
            (
                "this-local-part-does-not-exist-on-the-site@ezweb.ne.jp",
                "failed",
                "",
                "",
                "",
                "The user(s) account is disabled.",
                "",
                "",
            ),
        ],
    ),
    (  # X2: 'Delivery failed: rcpt', 'host failed after I sent the message.'
        "bsd/lhost-x2-07.eml",
        [
            (
                "kijitora@example.co.jp",
                "failed",
                "5.4.14",
                "554",
                "192.0.2.1",
                "554 5.4.14 Hop count exceeded - possible",
                "DATA",
                "",
            ),
        ],
    ),
    (  # Exchange 2003: 'The following recipient(s) could not be reached:'
        "bsd/lhost-exchange2003-04.eml",
        [
            (
                "kijitora@example.com",
                "failed",
                "",
                "",
                "",
                "Recipient Not Found MSEXCH:IMC:NEKO:KIJI",
                "",
                "",
            ),
        ],
    ),
    (  # multipart/report whose boundary never occurs: the body read as one text
        "bsd/rfc3464-06.eml",
        [
            (
                "kijitora@example.net",
                "failed",
                "5.5.0",
                "554",
                "",
                "554 <kijitora@example.net>... Service un",
                "",
                "<0000000000.0000000@mail.example.com>",
            ),
        ],
    ),
    (  # 'User's mailbox is full: <rcpt>' / 'Unable to deliver mail.'
        "bsd/rfc3464-38.eml",
        [
            ("kijitora-nyaan@example.jp", "failed", "", "", "", "User's mailbox is full", "", ""),
        ],
    ),
]


@pytest.mark.parametrize(("name", "expected"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_parse_message(name: str, expected: list[tuple[str, ...]]) -> None:
    records = parse_message((BOUNCES / name).read_bytes(), source=name)
    got = [
        (
            r.recipient,
            r.action,
            r.status,
            r.reply_code,
            r.remote_mta,
            r.diagnostic[:40],
            r.command,
            r.message_id,
        )
        for r in records
    ]
    assert got == expected
    assert all(r.source == name and r.format for r in records)


def test_table_covers_formats_and_line_endings() -> None:
    formats = {
        r.format for name, _ in MESSAGES for r in parse_message((BOUNCES / name).read_bytes())
    }
    assert formats >= {
        "rfc3464",
        "exim",
        "text",
        "gmail",
        "dragonfly",
        "exchange",
        "exchange2003",
        "sendmail",
        "opensmtpd",
        "googlegroups",
        "zoho",
        "mfilter",
        "imailserver",
        "nemesis",
        "x1",
        "x3",
        "mxlogic",
        "notes",
        "kddi",
        "trendmicro",
        "activehunter",
        "biglobe",
        "domino",
        "amazonses",
        "x6",
        "mailfoundry",
        "mimecast",
        "messagelabs",
        "mailmarshal",
        "apachejames",
        "ezweb",
        "x2",
        "unabletodeliver",
    }
    folders = {name.split("/")[0] for name, _ in MESSAGES}
    assert folders == {"bsd", "mac", "dos", "err", "not"}
    assert len(MESSAGES) >= 25


def test_line_endings_do_not_matter() -> None:
    lf = (BOUNCES / "mac/lhost-exim-01.eml").read_bytes().replace(b"\r", b"\n")
    for data in (lf, lf.replace(b"\n", b"\r\n"), lf.replace(b"\n", b"\r")):
        [record] = parse_message(data)
        assert record.recipient == "kijitora@example.ed.jp"
        assert record.diagnostic.endswith("Please use the smtp server of your ISP.")


def test_dsn_fields_dates_and_unfolding() -> None:
    [record] = parse_message((BOUNCES / "bsd/lhost-postfix-80.eml").read_bytes())
    assert record.format == "rfc3464"
    assert "\n" not in record.diagnostic and not record.diagnostic.lower().startswith("smtp;")
    assert "550 5.1.0" not in record.diagnostic  # continuation prefixes of the reply are dropped
    assert isinstance(record.date, datetime)


def test_base64_delivery_status_and_encoded_text() -> None:
    dsn = (
        "Reporting-MTA: dns; mx.example.org\n\n"
        "Final-Recipient: rfc822; user@example.com\nAction: failed\nStatus: 5.7.1\n"
        "Remote-MTA: dns; mx.example.com\n"
        "Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; Client host [203.0.113.5]\n"
        " blocked using zen.spamhaus.org\n"
        "Last-Attempt-Date: Tue, 5 Nov 2024 10:15:02 +0000\n"
    )
    message = (
        "From: MAILER-DAEMON@example.org\nSubject: Undelivered\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode("Zustellung fehlgeschlagen – ärgerlich".encode()).decode()
        + "\n--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode(dsn.encode()).decode()
        + "\n--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <abc@example.org>\nSubject: hi\n\n--b--\n"
    )
    [record] = parse_message(message.encode())
    assert record.recipient == "user@example.com"
    assert record.diagnostic == (
        "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org"
    )
    assert (record.status, record.reply_code, record.remote_mta) == (
        "5.7.1",
        "554",
        "mx.example.com",
    )
    assert record.message_id == "<abc@example.org>"
    assert record.date == datetime.fromisoformat("2024-11-05T10:15:02+00:00")


def test_delivered_and_relayed_recipients_are_not_records() -> None:
    message = (
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; a.example\n\n"
        "Final-Recipient: rfc822; ok@example.com\nAction: delivered\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; later@example.com\nAction: delayed\nStatus: 4.4.1\n\n--b--\n"
    )
    assert [(r.recipient, r.action) for r in parse_message(message.encode())] == [
        ("later@example.com", "delayed")
    ]


# ----------------------------------------------------------------------------- robustness


def mutations(seed: int) -> list[bytes]:
    """Hostile and broken messages (bench/bounces.py times them too)."""
    rng = random.Random(seed)
    samples = sorted(p for p in BOUNCES.rglob("*.eml"))
    out: list[bytes] = [b"", b"\n", b"\r", b"From \n", b"Content-Type: multipart/mixed\n\n--"]
    for _ in range(60):
        out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))))
    for path in samples:
        data = path.read_bytes()
        cut = rng.randrange(len(data))
        out.append(data[:cut])  # truncated
        out.append(data.replace(b"boundary=", b"boundary=x", 1))  # boundaries that never come
        out.append(data.replace(b"--", b"", 3))  # broken boundary lines
        out.append(data.replace(b"\n", b"", rng.randrange(1, 20)))  # headers run together
        noisy = bytearray(data)
        for _ in range(20):
            noisy[rng.randrange(len(noisy))] = rng.randrange(256)
        out.append(bytes(noisy))
    out.append(
        b"Content-Type: multipart/mixed; boundary=a\n\n"
        + b"--a\nContent-Type: multipart/mixed; boundary=a\n\n" * 200
    )
    out.append(
        b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!notbase64"
    )
    out.append(
        b"Subject: =?utf-8?B?broken?=\nContent-Type: text/plain; charset=x-no-such-charset\n\n<a@b.example>: 550 no\n"
    )
    out.append(b"The following address(es) failed:\n\n  " + b"a" * 100_000 + b"\n")
    out.append(b"<a@b.example>: " + b"550 " * 50_000 + b"\n")
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_never_raises(seed: int) -> None:
    # `extract_records` is `parse_message` without the net that logs and swallows an exception:
    # any exception here is a parsing bug. (The time each input takes is bench/bounces.py's.)
    for data in mutations(seed):
        records = extract_records(data)
        assert isinstance(records, list)
        assert parse_message(data) == records


# ----------------------------------------------------------------------------- mbox, files


def test_parse_mbox_splits_and_unescapes() -> None:
    mbox = (
        b"From MAILER-DAEMON Tue Nov  5 10:15:02 2024\r\nSubject: one\r\n\r\n>From here\r\n\r\n"
        b"From MAILER-DAEMON Tue Nov  5 10:15:03 2024\r\nSubject: two\r\n\r\nbody\r\nFrom the middle\r\n"
    )
    parts = list(parse_mbox(mbox))
    assert [n for n, _ in parts] == [1, 2]
    assert parts[0][1] == b"Subject: one\n\nFrom here\n\n"
    assert parts[1][1].endswith(b"From the middle\n")  # not after a blank line: no separator
    assert list(parse_mbox(b"")) == []
    assert list(parse_mbox(b"Subject: x\n\nbody\n")) == [(1, b"Subject: x\n\nbody\n")]


def test_read_mbox_file() -> None:
    records = list(read_path(BOUNCES / "mbox-1"))
    assert records and all(r.source == f"{BOUNCES / 'mbox-1'}:1" for r in records)


def test_read_maildir_directory_and_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes((BOUNCES / "bsd/lhost-exim-02.eml").read_bytes())
    (maildir / "cur" / "2:2,S").write_bytes((BOUNCES / "dos/lhost-gmail-01.eml").read_bytes())
    (maildir / "tmp" / "3").write_bytes((BOUNCES / "bsd/lhost-qmail-19.eml").read_bytes())
    got = sorted(r.recipient for r in read_path(maildir))
    assert got == ["kijitora@example.jp", "sabatora@example.jp", "userunknown@example.jp"]

    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "x.eml").write_bytes((BOUNCES / "mac/lhost-qmail-01.eml").read_bytes())
    (tree / "mbox").write_bytes(b"From x\n" + (BOUNCES / "bsd/lhost-yahoo-01.eml").read_bytes())
    (tree / "unreadable.eml").symlink_to(tmp_path / "missing")
    with caplog.at_level(logging.WARNING, logger="blmonitor.bounces.mailbox"):
        got = sorted(r.recipient for r in read_path(tree))
    assert got == ["kijitora@example.ne.jp", "kijitora@example.org"]
    assert "unreadable.eml" in caplog.text
    assert list(read_path(tmp_path / "nope.eml")) == []


def test_read_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (BOUNCES / "bsd/lhost-exim-05.eml").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    [record] = read_path(Path("-"))
    assert (record.recipient, record.source) == ("kijitora@neko.example.co.jp", "-")


# ----------------------------------------------------------------------------- whole corpus


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
def test_whole_shared_corpus() -> None:
    files = sorted(p for p in (CORPUS / "maildir").rglob("*.eml"))
    found = 0
    for path in files:
        records = extract_records(path.read_bytes(), source=str(path))
        found += bool(records)
        if path.parent.name == "not":
            assert records == [], path
    assert found >= 600
    assert sum(1 for _ in read_path(CORPUS / "mailbox")) >= 30


# ----------------------------------------------------------------------------- log lines

# (file, line number, recipient, action, status, reply_code, remote_mta, diagnostic contains, command)
LOG_LINES = [
    (
        "postfix.log",
        1,
        "alice@outlook.com",
        "failed",
        "5.7.1",
        "550",
        "outlook-com.olc.protection.outlook.com",
        "block list (S3150)",
        "MAIL",
    ),
    (
        "postfix.log",
        2,
        "bob@example.net",
        "failed",
        "5.7.1",
        "554",
        "mx.example.net",
        "blocked using zen.spamhaus.org",
        "RCPT",
    ),
    (
        "postfix.log",
        3,
        "carol@gmail.com",
        "delayed",
        "4.7.0",
        "421",
        "gmail-smtp-in.l.google.com",
        "low reputation",
        "DATA",
    ),
    (
        "postfix.log",
        4,
        "dave@example.org",
        "failed",
        "5.1.1",
        "550",
        "mail.example.org",
        "User unknown",
        "RCPT",
    ),
    (
        "postfix.log",
        5,
        "erin@example.com",
        "delayed",
        "4.4.1",
        "",
        "",
        "Connection timed out",
        "CONN",
    ),
    (
        "postfix.log",
        8,
        "grace@yahoo.com",
        "delayed",
        "4.7.0",
        "421",
        "mta7.am0.yahoodns.net",
        "[TSS04]",
        "MAIL",
    ),
    (
        "exim_mainlog",
        2,
        "alice@outlook.com",
        "failed",
        "5.7.1",
        "550",
        "outlook-com.olc.protection.outlook.com",
        "(S3150)",
        "MAIL",
    ),
    (
        "exim_mainlog",
        3,
        "bob@example.net",
        "failed",
        "5.7.1",
        "554",
        "mx.example.net",
        "zen.spamhaus.org",
        "RCPT",
    ),
    (
        "exim_mainlog",
        4,
        "carol@gmail.com",
        "delayed",
        "4.7.0",
        "421",
        "gmail-smtp-in.l.google.com",
        "low reputation",
        "DATA",
    ),
    (
        "exim_mainlog",
        5,
        "dave@example.org",
        "failed",
        "5.1.1",
        "550",
        "mail.example.org",
        "User unknown",
        "RCPT",
    ),
    ("exim_mainlog", 6, "erin@example.com", "delayed", "", "", "", "Connection timed out", ""),
    (
        "sendmail.log",
        1,
        "alice@outlook.com",
        "failed",
        "5.7.1",
        "",
        "outlook-com.olc.protection.outlook.com",
        "Service unavailable",
        "",
    ),
    (
        "sendmail.log",
        2,
        "bob@example.net",
        "failed",
        "5.7.1",
        "554",
        "mx.example.net",
        "zen.spamhaus.org",
        "",
    ),
    (
        "sendmail.log",
        3,
        "carol@gmail.com",
        "delayed",
        "4.7.0",
        "421",
        "gmail-smtp-in.l.google.com",
        "low reputation",
        "",
    ),
    (
        "sendmail.log",
        4,
        "dave@example.org",
        "failed",
        "5.1.1",
        "",
        "mail.example.org",
        "User unknown",
        "",
    ),
]
NOT_BOUNCES = [
    ("postfix.log", 6),
    ("postfix.log", 7),
    ("exim_mainlog", 1),
    ("exim_mainlog", 7),
    ("exim_mainlog", 8),
    ("sendmail.log", 5),
]


def _line(name: str, number: int) -> str:
    return (LOGS / name).read_text().splitlines()[number - 1]


@pytest.mark.parametrize(
    ("name", "number", "rcpt", "action", "status", "code", "remote", "diag", "command"), LOG_LINES
)
def test_parse_log_line(
    name: str,
    number: int,
    rcpt: str,
    action: str,
    status: str,
    code: str,
    remote: str,
    diag: str,
    command: str,
) -> None:
    record = parse_log_line(_line(name, number), source=f"{name}:{number}")
    assert record is not None
    assert (
        record.recipient,
        record.action,
        record.status,
        record.reply_code,
        record.remote_mta,
        record.command,
    ) == (rcpt, action, status, code, remote, command)
    assert diag in record.diagnostic
    assert "(in reply to" not in record.diagnostic
    assert record.source == f"{name}:{number}" and record.format.endswith("-log")


@pytest.mark.parametrize(("name", "number"), NOT_BOUNCES)
def test_log_lines_that_are_not_bounces(name: str, number: int) -> None:
    assert parse_log_line(_line(name, number)) is None


def test_log_dates() -> None:
    syslog = _line("postfix.log", 2)
    assert parse_log_line(syslog) is not None
    assert parse_log_line(syslog).date is None  # type: ignore[union-attr]  # no year: no guess
    assert parse_log_line(syslog, year=2024).date == datetime(2024, 11, 5, 10, 16, 40)  # type: ignore[union-attr]
    iso = parse_log_line(_line("postfix.log", 8))
    assert iso is not None and iso.date == datetime.fromisoformat(
        "2024-11-05T10:20:44.123456+01:00"
    )
    exim = parse_log_line(_line("exim_mainlog", 2))
    assert exim is not None and exim.date == datetime(2024, 11, 5, 10, 15, 3)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "x" * 20_000,
        "postfix/smtp[1]: A: to=<, status=bounced (",
        "** ==",
        "stat= dsn=",
    ],
)
def test_log_garbage(line: str) -> None:
    assert parse_log_line(line) is None
