"""Debian 12's default configuration of the MTAs configured by files, for a plan made as a preview
on a host that does not run that MTA (`smarthost plan --mta exim`).

Only the lines the planners read and edit, as the packages install them (tests/data/smarthost
holds the whole files, and a test checks these lines against them); comments are left out. Pure.
"""

from __future__ import annotations

from pathlib import Path

from blmonitor.smarthost.plan import Files, Mta

# exim4-config's postinst writes this for an "internet site" (dpkg-reconfigure exim4-config).
_EXIM = """\
dc_eximconfig_configtype='internet'
dc_other_hostnames=''
dc_local_interfaces=''
dc_readhost=''
dc_relay_domains=''
dc_minimaldns='false'
dc_relay_nets=''
dc_smarthost=''
CFILEMODE='644'
dc_use_split_config='false'
dc_hide_mailname=''
dc_mailname_in_oh='true'
dc_localdelivery='mail_spool'
"""

# sendmail-cf's debian/sendmail.mc, which sendmail's postinst copies to /etc/mail/sendmail.mc.
_SENDMAIL = """\
divert(-1)dnl
divert(0)dnl
define(`_USE_ETC_MAIL_')dnl
include(`/usr/share/sendmail/cf/m4/cf.m4')dnl
OSTYPE(`debian')dnl
DOMAIN(`debian-mta')dnl
FEATURE(`no_default_msa')dnl
DAEMON_OPTIONS(`Family=inet,  Name=MTA-v4, Port=smtp, Addr=127.0.0.1')dnl
DAEMON_OPTIONS(`Family=inet,  Name=MSP-v4, Port=submission, M=Ea, Addr=127.0.0.1')dnl
FEATURE(`use_cw_file')dnl
FEATURE(`access_db', , `skip')dnl
FEATURE(`greet_pause', `1000')dnl 1 seconds
FEATURE(`delay_checks', `friend', `n')dnl
FEATURE(`conncontrol', `nodelay', `terminate')dnl
FEATURE(`ratecontrol', `nodelay', `terminate')dnl
include(`/etc/mail/m4/dialup.m4')dnl
include(`/etc/mail/m4/provider.m4')dnl
MAILER_DEFINITIONS
MAILER(`local')dnl
MAILER(`smtp')dnl
"""

# opensmtpd's /etc/smtpd.conf.
_OPENSMTPD = """\
table aliases file:/etc/aliases
listen on localhost
action "local" maildir alias <aliases>
action "relay" relay
match for local action "local"
match from local for any action "relay"
"""

# Each MTA's files by their name under its config_dir; the first is the one that tells whether
# the MTA is installed.
DEBIAN: dict[Mta, dict[str, str]] = {
    Mta.EXIM: {"update-exim4.conf.conf": _EXIM},
    Mta.SENDMAIL: {"sendmail.mc": _SENDMAIL},
    Mta.OPENSMTPD: {"smtpd.conf": _OPENSMTPD},
}


def preview(mta: Mta, config_dir: Path, files: Files) -> tuple[Files, tuple[str, ...]]:
    """`files` with Debian's defaults in place of the missing ones, and the note that marks the
    plan as a preview; `files` unchanged (and no note) when the MTA's own file is there."""
    shipped = DEBIAN.get(mta, {})
    if not shipped or files.get(config_dir / next(iter(shipped))) is not None:
        return files, ()
    out = dict(files)
    used = []
    for name, text in shipped.items():
        path = config_dir / name
        if out.get(path) is None:
            out[path] = text.encode()
            used.append(str(path))
    return out, (
        f"preview: planned against Debian's default {' and '.join(used)}, not this host's",
    )
