"""Bounce evidence: returned NDRs/DSNs and MTA log lines → which blocklist rejected us.

`mailbox` reads files, mboxes and Maildirs (the only I/O here); `extract` walks a message's
MIME tree (`mime`, its fast path `_fastmime`) into records: RFC 3464 parts (`rfc3464`), then the
text formats of `detectors/` (one registry). `smtp` reads reply and status codes, `needles` is
the literal pre-check, `logs` reads MTA log lines, `rules` loads lists/bounces.toml and
`attribution` decides whether a blocklist was the reason. All pure but `mailbox` and `watch`.
"""
