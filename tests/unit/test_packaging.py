"""`pip install invoicebot` installs the bot alone: the stand-ins' localstripe (GPL-3.0)
comes only with the `demo` extra, and the demo commands say so in one line without it.

The install test is a real one, offline: the project's wheel is built with its own build
backend, installed with pip into a fresh virtualenv, and that virtualenv gets exactly the
runtime dependency closure the wheel declares (followed through each dependency's own
metadata), linked from this test environment. A runtime dependency on localstripe would
bring it into that closure, and the test would fail.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
HINT = "pip install 'invoicebot[demo]'"
# What the wheel is built from: the source tree less what is not the project.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", "*.db",
                                    ".pytest_cache", ".hypothesis", ".invoicebot-demo", "test-artifacts",
                                    "node_modules")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_runtime_dependencies_leave_localstripe_to_the_demo_extra() -> None:
    project = _project()
    runtime = {Requirement(r).name.lower() for r in project["dependencies"]}
    assert "localstripe" not in runtime
    extras = project["optional-dependencies"]
    assert "localstripe" in {Requirement(r).name.lower() for r in extras["demo"]}
    # `.ci/run` installs '.[test]' and gets the stand-ins with it.
    test_extra = [Requirement(r) for r in extras["test"]]
    assert any(r.name == "invoicebot" and "demo" in r.extras for r in test_extra)


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements need, through each one's own metadata, as
    installed in this environment (no extras of the project itself)."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = requirement.name.lower().replace("_", "-")
        dist = importlib.metadata.distribution(name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for wanted in ("", *requirement.extras):
            todo += [(Requirement(r), wanted) for r in dist.requires or []]
    return {key.split("[", 1)[0] for key in seen}


def _link_into(site: Path, names: set[str]) -> None:
    """Make these installed distributions (code and metadata) visible in another site-packages."""
    for name in names:
        dist = importlib.metadata.distribution(name)
        assert dist.files is not None, f"{name} has no RECORD"
        for top in {f.parts[0] for f in dist.files if f.parts and f.parts[0] not in ("..", "__pycache__")}:
            source, target = Path(str(dist.locate_file(top))), site / top
            if source.exists() and not target.exists():
                target.symlink_to(source, target_is_directory=source.is_dir())


@pytest.fixture(scope="module")
def bare_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with `pip install invoicebot` (no extras) in it; its bin/ folder."""
    work = tmp_path_factory.mktemp("bare-install")
    shutil.copytree(ROOT, work / "src", ignore=NOT_SOURCE)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "wheels"),
                    str(work / "src")], check=True, timeout=180)
    (wheel,) = (work / "wheels").glob("invoicebot-*.whl")
    venv.create(work / "env", with_pip=False, symlinks=True)
    python = work / "env" / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=120)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    declared = importlib.metadata.Distribution.at(next(site.glob("invoicebot-*.dist-info"))).requires or []
    _link_into(site, _closure(declared))
    return python.parent


def _run(bin_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing of this checkout on the path, no settings.
    clean = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(bin_dir.parent), "LANG": "C.UTF-8",
             **(env or {})}
    return subprocess.run(list(args), cwd=bin_dir.parent, env=clean, capture_output=True, text=True, timeout=30)


def test_a_bare_install_has_no_localstripe_and_the_bot_imports_whole(bare_install: Path) -> None:
    python = str(bare_install / "python")
    probe = _run(bare_install, python, "-c", "import importlib.util as u; print(u.find_spec('localstripe'))")
    assert probe.returncode == 0 and probe.stdout.strip() == "None", probe.stderr
    # Every module of the bot (not the stand-ins) imports with the runtime dependencies alone
    # (Alembic's migration scripts run inside `db upgrade`, below).
    walk = ("import importlib, pkgutil\n"
            "for top in ('bot', 'handlers', 'blocks', 'storage'):\n"
            "    package = importlib.import_module(top)\n"
            "    for info in pkgutil.walk_packages(package.__path__, top + '.'):\n"
            "        if not info.name.startswith('storage.migrations'):\n"
            "            importlib.import_module(info.name)\n"
            "print('ok', importlib.import_module('bot').__file__)")
    imported = _run(bare_install, python, "-c", walk)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("ok ") and "site-packages" in imported.stdout  # the installed copy


def test_a_bare_install_migrates_its_database(bare_install: Path, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    upgraded = _run(bare_install, str(bare_install / "invoicebot"), "db", "upgrade", env={"DATABASE_URL": url})
    assert upgraded.returncode == 0, upgraded.stderr
    current = _run(bare_install, str(bare_install / "invoicebot"), "db", "current", env={"DATABASE_URL": url})
    assert current.returncode == 0 and current.stdout.strip() not in ("", "empty"), current.stdout


@pytest.mark.parametrize("command", [["demo"], ["sandbox"]])
def test_the_demo_commands_without_the_extra_say_in_one_line_what_to_install(bare_install: Path,
                                                                             command: list[str]) -> None:
    result = _run(bare_install, str(bare_install / "invoicebot"), *command)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and HINT in lines[0], result.stderr
    assert not (bare_install.parent / ".invoicebot-demo").exists()  # nothing started half-way


def test_the_fake_stripe_without_the_extra_says_what_to_install(bare_install: Path) -> None:
    result = _run(bare_install, str(bare_install / "python"), "-m", "sandbox.stripe")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and HINT in result.stderr.strip(), result.stderr


def test_the_built_wheel_names_localstripe_only_under_the_demo_extra(bare_install: Path) -> None:
    site = bare_install.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (info,) = site.glob("invoicebot-*.dist-info")
    metadata = importlib.metadata.Distribution.at(info).metadata
    assert metadata["Version"] == _project()["version"]
    requires = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    localstripe = [r for r in requires if r.name.lower() == "localstripe"]
    assert localstripe and all(r.marker is not None and r.marker.evaluate({"extra": "demo"})
                               and not r.marker.evaluate({"extra": ""}) for r in localstripe)
