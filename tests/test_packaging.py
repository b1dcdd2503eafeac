"""What `pip install .` (the README's first command) installs: every package of the tree, so
a command never meets a module that only a checkout has. (Building the wheel would fetch the
build backend from the network: the test reads the packaging settings instead.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_the_tree_is_installed() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(settings["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "blmonitor").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert settings["package-dir"]["blmonitor.lists"] == "lists"
    data = settings.get("package-data", {})
    for package in listed:
        folder = ROOT / settings["package-dir"].get(package, package.replace(".", "/"))
        kept = [p.name for p in folder.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")
                and p.suffix in (".toml", ".html", ".j2", ".css")]  # fmt: skip
        for name in kept:
            patterns = data.get(package, [])
            assert any(Path(name).match(pattern) for pattern in patterns), (package, name)
