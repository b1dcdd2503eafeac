"""The man page and shell completion: docs/blmonitor.1 is what scripts/manpage makes from the
commands' help now, and renders without a warning; every completion script the README shows is
produced, and a real bash completes the lazily imported commands and their options with it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from blmonitor import cli

ROOT = Path(__file__).parent.parent
MANPAGE = ROOT / "docs" / "blmonitor.1"
README = (ROOT / "README.md").read_text()


# --- the man page ----------------------------------------------------------------------------


def make_manpage() -> str:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "manpage")],
                          capture_output=True, text=True, check=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.stderr == ""
    return done.stdout


def test_the_man_page_is_up_to_date() -> None:
    assert make_manpage() == MANPAGE.read_text(), "run: scripts/manpage > docs/blmonitor.1"


def test_the_man_page_has_every_command_and_option() -> None:
    page = MANPAGE.read_text()
    ctx = click.Context(cli.main)
    for name in cli.COMMANDS:  # the lazy ones are imported for it
        command = cli.main.get_command(ctx, name)
        assert command is not None
        shown = name.replace("-", "\\-")  # roff's hyphen, as in gmail-postmaster
        assert f'.SS "blmonitor {shown} ' in page
        subcommands = command.commands if isinstance(command, click.Group) else {}
        for sub in subcommands.values():
            assert f'.SS "blmonitor {shown} {sub.name} ' in page
        for each in (command, *subcommands.values()):
            for param in each.params:
                if isinstance(param, click.Option) and not param.hidden:
                    for spelling in param.opts:
                        assert "\\fB" + spelling.replace("-", "\\-") + "\\fR" in page
    # the examples kept as written, the exit codes, the options' own defaults
    assert ".nf\nExamples:\n  blmonitor check\n" in page
    assert (
        "\\-\\-since\\fR \\fITEXT\\fR\nHow far back the logs are read: 24h, 7d... [default: 7d]"
        in page
    )
    for code in (0, 1, 2, 3, 130):
        assert f".TP\n.B {code}\n" in page
    assert not re.search(r"^[.'](?![A-Za-z\\])", page, re.MULTILINE)  # no stray control lines
    assert page.isascii()


def render_warnings(*command: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([*command, str(MANPAGE)], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "MANWIDTH": "80", "MANPAGER": "cat",
                               "PAGER": "cat", **(env or {})})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "blmonitor \u2010 keep" in done.stdout or "blmonitor - keep" in done.stdout
    return done.stderr


@pytest.mark.skipif(shutil.which("man") is None and shutil.which("groff") is None,
                    reason="neither man nor groff here to render the man page")  # fmt: skip
@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_the_man_page_renders_without_warnings(locale) -> None:
    if shutil.which("man"):  # every groff warning (-ww), through man's own pipeline
        assert render_warnings("man", "--warnings=w", "-l", env={"LC_ALL": locale}) == ""
    if shutil.which("groff"):
        device = "-Tutf8" if locale == "C.UTF-8" else "-Tascii"
        assert render_warnings("groff", "-man", device, "-ww") == ""


def test_a_roff_mistake_would_be_seen(tmp_path) -> None:
    """The renderers do warn, so the test above can fail: an undefined macro, a bad escape."""
    if shutil.which("groff") is None:
        pytest.skip("no groff here")
    bad = tmp_path / "bad.1"
    bad.write_text(MANPAGE.read_text().replace(".SH FILES", ".XX FILES\nbad \\q escape"))
    done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(bad)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "macro 'XX' not defined" in done.stderr and "before 'q'" in done.stderr


def test_the_roff_escapes() -> None:
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader

    loader = SourceFileLoader("manpage", str(ROOT / "scripts" / "manpage"))
    spec = spec_from_loader("manpage", loader)
    assert spec is not None
    manpage = module_from_spec(spec)
    loader.exec_module(manpage)
    assert manpage.escape("--since 7d…\n.dot\n'quote \\n") == (
        "\\-\\-since 7d...\n\\&.dot\n\\&'quote \\en"
    )
    assert manpage.escape("a — b × c é") == "a \\(em b \\(mu c \\[u00E9]"


# --- shell completion ------------------------------------------------------------------------


def complete(shell_var: str, **env: str) -> str:
    result = CliRunner().invoke(cli.main, [], prog_name="blmonitor",
                                env={"_BLMONITOR_COMPLETE": shell_var, **env})  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


SOURCES = sorted(set(re.findall(r"_BLMONITOR_COMPLETE=(\w+_source) blmonitor", README)))


def test_the_readme_shows_every_shell() -> None:
    assert SOURCES == ["bash_source", "fish_source", "zsh_source"]
    assert "install -m 644 docs/blmonitor.1 /usr/local/share/man/man1/" in README


@pytest.mark.parametrize("source", SOURCES)
def test_every_completion_script_in_the_readme_is_made(source) -> None:
    script = complete(source)
    expected = {
        "bash_source": "complete -o nosort -F _blmonitor_completion blmonitor",
        "zsh_source": "#compdef blmonitor",
        "fish_source": "complete --no-files --command blmonitor",
    }[source]
    assert expected in script and "_BLMONITOR_COMPLETE" in script


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("blmonitor re", "1", ["relaytest", "report"]),
    ("blmonitor report --s", "2", ["--since"]),
    ("blmonitor smarthost ", "2", ["apply", "plan", "revert", "status", "sync"]),
    ("blmonitor check --fail-on ", "3", ["info", "warning", "critical"]),
])  # fmt: skip
def test_lazy_commands_and_their_options_complete(words, cword, expected) -> None:
    """The lazy group lists and imports its commands for completion as for --help."""
    out = complete("bash_complete", COMP_WORDS=words, COMP_CWORD=cword)
    assert [line.split(",", 1)[1] for line in out.splitlines()] == expected


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
def test_bash_completes_with_the_sourced_script(tmp_path) -> None:
    """The README's bash line in a real bash: the function it defines asks `blmonitor` (here a
    wrapper running this checkout) and fills COMPREPLY."""
    wrapper = tmp_path / "bin" / "blmonitor"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "import sys; sys.argv[0] = '
                       "'blmonitor'; from blmonitor.__main__ import main; main()\" \"$@\"\n")  # fmt: skip
    wrapper.chmod(0o755)
    script = ('eval "$(_BLMONITOR_COMPLETE=bash_source blmonitor)"\n'
              "COMP_WORDS=(blmonitor run --li); COMP_CWORD=2\n"
              "_blmonitor_completion blmonitor\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')  # fmt: skip
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}",
                               "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})  # fmt: skip
    assert done.stderr == ""
    assert done.stdout.split() == ["--listen", "--listen-password-file"]
