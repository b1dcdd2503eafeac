"""The README documents every command and every option, and starts with the two commands."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from blmonitor import cli

README = (Path(__file__).parent.parent / "README.md").read_text()
CI_RUN = (Path(__file__).parent.parent / ".ci" / "run").read_text()
# The root group imports a command's module only when asked: ask for every one.
_CTX = click.Context(cli.main)
COMMANDS = {name: cli.main.get_command(_CTX, name) for name in cli.main.list_commands(_CTX)}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_documented(name: str) -> None:
    assert f"### `blmonitor {name}" in README
    command = COMMANDS[name]
    assert command is not None
    assert command.help and "Example" in command.help
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert any(f"`{opt}" in README or f", {opt}" in README for opt in param.opts), (
                f"{name} {param.opts[0]} is not in the README"
            )


GROUPS = [(g, c) for g, group in sorted(COMMANDS.items())
          if isinstance(group, click.Group) for c in sorted(group.commands)]  # fmt: skip


@pytest.mark.parametrize(("group", "name"), GROUPS)
def test_every_subcommand_is_documented(group: str, name: str) -> None:
    command = COMMANDS[group].commands[name]  # type: ignore[union-attr]
    assert f"blmonitor {group} {name}" in README
    assert command.help and "Example" in command.help
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert any(f"`{opt}" in README or f", {opt}" in README for opt in param.opts), (
                f"{group} {name} {param.opts[0]} is not in the README"
            )


def test_readme_starts_with_install_and_test_commands() -> None:
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    # Debian 12's own Python refuses pip outside a venv (PEP 668): the first line makes one
    assert block[0] == (
        "apt-get update && apt-get install -y python3-venv && python3 -m venv .venv"
        " && .venv/bin/pip install . && .venv/bin/blmonitor check"
    )
    assert block[1] == "scripts/check --setup"
    assert "scripts/check --setup" in CI_RUN


def test_every_exit_code_is_documented() -> None:
    for code in (cli.EXIT_CLEAN, cli.EXIT_LISTED, cli.EXIT_USAGE, cli.EXIT_UNKNOWN):
        assert f"| {code} |" in README
