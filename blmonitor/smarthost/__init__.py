"""Smart-host routing while listed: a pure planner per MTA, and the adapter that applies a plan.

`plan.py` holds the shared shapes (Relay, FileEdit, Command, Plan); `postfix.py`, `exim.py`,
`sendmail.py`, `opensmtpd.py` and `exchange.py` turn the current configuration and the wanted
state into a Plan without touching the disk; `apply.py` checkpoints, edits, validates, reloads,
rolls back, and reverts.
"""
