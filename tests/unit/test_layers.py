"""The layers contract ([tool.importlinter] in pyproject.toml): each layer only looks down.

`handlers` may import `blocks`, `bot` and `storage`; `blocks` import neither `storage` nor
`handlers`; `bot` imports neither `handlers` nor `blocks`; no import loops between them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("handlers", "blocks", "bot", "storage")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    script = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", script, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_every_layer_only_looks_down() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contract_catches_the_domain_importing_the_slack_side(tmp_path: Path) -> None:
    # The same code with one import pointing up: bot/ reaching for the error table.
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "bot" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom handlers.errors import explain  # noqa: E402\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "bot (the domain core) imports neither handlers nor blocks BROKEN" in result.stdout
    assert "bot.errors -> handlers.errors" in result.stdout
