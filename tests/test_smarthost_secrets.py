"""The relay password, current or superseded, in no plan, note, state file or output.

blmonitor's credentials lines are masked by their position (never by searching for the
password), a credentials file is shown as one line of what happens to it, and a rotated password
is told by the checkpoint's salted digest of the password file and written anew. The adapter
runs on copies of Debian's default files with its commands faked.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from blmonitor.errors import SmarthostError
from blmonitor.smarthost import blocks, exim, opensmtpd, postfix, sendmail
from blmonitor.smarthost.apply import Smarthost
from blmonitor.smarthost.checkpoint import Checkpoint, matches, secret_digest
from blmonitor.smarthost.drivers import Ran
from blmonitor.smarthost.plan import PASSWORD, STALE, Credentials, Mta, Relay, render_plan

DATA = Path(__file__).parent / "data" / "smarthost"
HOST = "smtp.relay7.example"
OLD = "relay7"  # short, and part of the relay's host name
NEW = "N3w-rotated-pass"


def _ok(argv: Sequence[str]) -> Ran:
    return Ran(" ".join(argv), 0, "")


BLOCK = "# BEGIN blmonitor smarthost\n{}\n# END blmonitor smarthost\n"
LINE = f"{HOST}:me:{PASSWORD}"


@pytest.mark.parametrize(
    ("text", "password", "expected"),
    [
        # the wanted line, the password also in the host name: the host stays as it is
        (BLOCK.format(f"{HOST}:me:{OLD}"), OLD, BLOCK.format(LINE)),
        # an older password: the whole line is STALE, the admin's lines outside are theirs
        ("a:b:theirs\n" + BLOCK.format(f"{HOST}:me:{OLD}"), NEW, "a:b:theirs\n" + BLOCK.format(STALE)),
        # no block: nothing of blmonitor's to mask, whatever the lines hold
        (f"{HOST}:me:{OLD}\n", OLD, f"{HOST}:me:{OLD}\n"),
    ],
)  # fmt: skip
def test_blmonitor_lines_are_masked_by_position(text: str, password: str, expected: str) -> None:
    where = Credentials(Path("/etc/exim4/passwd.client"), LINE)
    assert blocks.mask(text.encode(), where, password) == expected.encode()


def test_a_whole_file_of_blmonitor_is_masked_line_by_line() -> None:
    relay = Relay(HOST, 587, "me", Path("/p"))
    where = postfix.credentials(relay, Path("/etc/postfix"))
    assert where.whole and where.line == f"[{HOST}]:587 me:{PASSWORD}"
    data = f"[{HOST}]:587 me:{OLD}\n[{HOST}]:587 someone-else:x\n".encode()
    masked = blocks.mask(data, where, OLD)
    assert masked == f"{where.line}\n{STALE}\n".encode()
    # without a login every line of blmonitor's is stale
    assert blocks.mask(data, postfix.credentials(Relay(HOST), Path("/etc/postfix")), OLD) == (
        f"{STALE}\n{STALE}\n".encode()
    )


@pytest.mark.parametrize(
    ("module", "name"),
    [(exim, "passwd.client"), (sendmail, "authinfo"), (opensmtpd, "smtpd.blmonitor-secrets")],
)
def test_each_planner_names_its_credentials_line(module: object, name: str) -> None:
    relay = Relay(HOST, 587, "me", Path("/p"))
    where = module.credentials(relay, Path("/etc/x"))  # type: ignore[attr-defined]
    assert where.path == Path("/etc/x") / name and PASSWORD in where.line and not where.whole


def test_a_salted_digest_tells_content_apart_and_holds_no_plain_hash() -> None:
    first, second = secret_digest(b"pw\n"), secret_digest(b"pw\n")
    assert first is not None and first != second  # salted: equal passwords, other digests
    assert matches(b"pw\n", first) and matches(b"pw\n", second) and not matches(b"pw2\n", first)
    assert matches(None, None) and not matches(b"x", None) and not matches(b"x", "scrypt$zz$00")


class Exim:
    """Exim on a copy of Debian's default files, its commands faked."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "exim4"
        shutil.copytree(DATA / "exim4", self.dir)
        self.password_file = tmp / "relay.pass"
        self.password_file.write_text(OLD + "\n")
        self.state = tmp / "state"

    def switch(self) -> Smarthost:
        relay = Relay(HOST, 587, "me", self.password_file)
        return Smarthost(Mta.EXIM, relay, config_dir=self.dir, state_dir=self.state, runner=_ok)

    @property
    def table(self) -> str:
        return (self.dir / "passwd.client").read_text()


def test_a_password_in_the_host_name_is_not_revealed_and_stays_applied(tmp_path: Path) -> None:
    exim4 = Exim(tmp_path)
    switch = exim4.switch()
    text = render_plan(switch.plan_apply(), switch.relay)
    assert f"passwd.client: credentials for [{HOST}]:587 (new)" in text
    assert OLD not in text.replace(HOST, "") and "<password" not in text
    switch.apply(now="t")
    assert f"{HOST}:me:{OLD}\n" in exim4.table
    again = exim4.switch().plan_apply()  # masked by position: the line reads as the plan's
    assert again.empty and not exim4.switch().password_changed()


def test_a_rotated_password_is_noticed_shown_as_changed_and_written(tmp_path: Path) -> None:
    exim4 = Exim(tmp_path)
    exim4.switch().apply(now="t")
    state = (exim4.state / "smarthost.json").read_text()
    assert OLD not in state.replace(HOST, "")
    exim4.password_file.write_text(NEW + "\n")
    switch = exim4.switch()
    assert switch.password_changed()
    plan = switch.plan_apply()
    assert [e.path.name for e in plan.edits] == ["passwd.client"]
    text = render_plan(plan, switch.relay)
    assert f"passwd.client: credentials for [{HOST}]:587 (changed)" in text
    outcome = switch.apply(now="t")
    assert outcome.changed and "the relay password changed" in " ".join(outcome.notes)
    assert f"{HOST}:me:{NEW}\n" in exim4.table and OLD not in exim4.table.replace(HOST, "")
    assert not exim4.switch().password_changed()
    everything = [text, json.dumps(switch.status()), (exim4.state / "smarthost.json").read_text(),
                  *(str(n) for n in (*plan.notes, *outcome.notes))]  # fmt: skip
    for where in everything:
        assert NEW not in where and OLD not in where.replace(HOST, "")
    checkpoint = Checkpoint.load(exim4.state / "smarthost.json")
    assert checkpoint is not None and checkpoint.password is not None
    assert matches((NEW + "\n").encode(), checkpoint.password)
    # the table's digest is salted and slow too: no plain hash of a file holding the password
    assert checkpoint.written is not None
    kinds = {p.name: (v or "").split("$")[0] for p, v in checkpoint.written.items()}
    assert kinds["passwd.client"] == "scrypt" and kinds["update-exim4.conf.conf"] != "scrypt"
    # revert: the table back to Debian's, told as removed, never shown
    revert = exim4.switch()
    text = render_plan(revert.plan_revert(), revert.relay)
    assert f"passwd.client: credentials for [{HOST}]:587 (removed)" in text and NEW not in text
    revert.revert()
    assert exim4.table == (DATA / "exim4" / "passwd.client").read_text()


def test_an_apply_that_would_keep_a_stale_line_is_refused(tmp_path: Path) -> None:
    exim4 = Exim(tmp_path)
    switch = exim4.switch()
    plan = switch.plan_apply()
    edit = next(e for e in plan.edits if e.secret)
    stale = type(edit)(edit.path, edit.before, (STALE + "\n").encode(), edit.mode, True)
    with pytest.raises(SmarthostError, match="old credentials line"):
        switch._write(stale)
