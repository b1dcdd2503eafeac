"""Smart-host routing while listed: a pure planner per MTA, a driver per MTA, and the reverter.

`plan.py` holds the shared shapes (Relay, FileEdit, Command, Plan) and `blocks.py` blmonitor's
marked blocks; `postfix.py`, `exim.py`, `sendmail.py`, `opensmtpd.py` and `exchange.py` turn the
current configuration and the wanted state into a Plan without touching the disk (`defaults.py`
holds Debian's files for a preview where the MTA is not installed); `drivers.py`
reads and changes each MTA through an injected runner; `checkpoint.py` saves what a change
replaces; `apply.py` checkpoints, edits, validates, reloads, rolls back, and reverts, for any
driver; `policy.py` decides when to route.
"""
