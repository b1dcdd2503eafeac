"""Bounce evidence: returned NDRs/DSNs and MTA log lines → which blocklist rejected us.

`models` holds the records; `extract` reads messages and logs into BounceRecords (one per
failed recipient); `attribution` decides, from a record's text, whether a blocklist — a DNS
zone or a provider's own list — was the reason. Parsing and attribution are pure.
"""
