"""Settings an operator gets right in one go: every problem named at once, each command
asking only for what it uses, and an unusable database said in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import SettingsError, load_database_settings, load_settings

REQUIRED = ("SLACK_SIGNING_SECRET", "STRIPE_API_KEY", "BILLING_API_URL", "BILLING_API_TOKEN", "NOTIFY_CHANNEL",
            "SLACK_BOT_TOKEN")
SERVICES = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "STRIPE_API_KEY": "sk_test_x",
            "BILLING_API_URL": "http://127.0.0.1:9", "BILLING_API_TOKEN": "t", "NOTIFY_CHANNEL": "C1"}
ROOT = Path(__file__).parents[2]


@pytest.fixture
def empty_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("SLACK_", "STRIPE_", "BILLING_", "DATABASE_", "NOTIFY_", "PUBLIC_", "LOG_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env here
    return tmp_path


def invoicebot(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in an environment holding nothing but `env` (and what Python needs to run)."""
    base = {k: v for k in ("PATH", "HOME", "LANG", "SYSTEMROOT") if (v := os.environ.get(k))}
    return subprocess.run([sys.executable, "-m", "handlers.entry", *args], cwd=cwd, env={**base, "PYTHONPATH": str(ROOT),
                          **env}, capture_output=True, text=True, timeout=120)


def test_an_empty_environment_names_every_missing_setting_in_one_run(empty_environment: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert [p.split(" ", 1)[0] for p in raised.value.problems] == list(REQUIRED)
    assert all(" is missing: " in p for p in raised.value.problems)
    assert any("Basic Information page" in p for p in raised.value.problems if p.startswith("SLACK_SIGNING"))

    served = invoicebot("serve", cwd=empty_environment)
    assert served.returncode == 2 and "Traceback" not in served.stderr
    lines = served.stderr.splitlines()
    assert len(lines) == len(REQUIRED)
    for name, line in zip(REQUIRED, lines, strict=True):
        assert line.startswith(f"invoicebot: {name} is missing: ")
    assert list(empty_environment.iterdir()) == []  # refusing created no database


def test_malformed_and_missing_settings_are_reported_together(empty_environment: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(database_url="mysql://x/y", log_format="xml", public_url="not a url",
                      slack_client_id="A1", stripe_api_key="sk_test_x")
    problems = "\n".join(raised.value.problems)
    assert "DATABASE_URL is malformed (must start with sqlite:/// or postgresql://" in problems
    assert "LOG_FORMAT is malformed (must be text or json)" in problems
    assert "PUBLIC_URL is malformed" in problems
    assert "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together" in problems
    assert "SLACK_SIGNING_SECRET is missing" in problems and "STRIPE_API_KEY" not in problems


def test_postgres_urls_are_accepted_as_postgresql(empty_environment: Path) -> None:
    settings = load_database_settings(database_url="postgres://u:p@db.example:5432/invoicebot")
    assert settings.database_url == "postgresql://u:p@db.example:5432/invoicebot"
    assert load_database_settings(database_url="postgres+asyncpg://h/db").database_url == "postgresql+asyncpg://h/db"


def test_empty_values_count_as_unset(empty_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a copied .env.example leaves empty.
    for name, value in {**SERVICES, "PUBLIC_URL": "", "SLACK_CLIENT_ID": "", "STRIPE_WEBHOOK_SECRET": ""}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.public_url is None and not settings.multi_workspace and settings.stripe_webhook_secret is None


def test_database_commands_need_database_url_alone(database_url: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    upgraded = invoicebot("db", "upgrade", cwd=work, DATABASE_URL=database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith("database at ") and upgraded.stderr == ""  # no alembic INFO lines
    for args in (("db", "current"), ("payments",), ("payments", "--json"), ("audit",), ("audit", "--json"),
                 ("audit", "--invoice", "INV-1")):
        result = invoicebot(*args, cwd=work, DATABASE_URL=database_url)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr == ""
    assert invoicebot("payments", "--json", cwd=work, DATABASE_URL=database_url).stdout.strip() == "[]"
    assert invoicebot("payments", cwd=work, DATABASE_URL=database_url).stdout == "no payments.\n"
    # -v shows what the quiet default hides.
    assert "alembic" in invoicebot("-v", "db", "upgrade", cwd=work, DATABASE_URL=database_url).stderr


@pytest.mark.parametrize("url", ["postgresql://u:p@127.0.0.1:1/db", "sqlite:////nonexistent/x.db"])
@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("db", "upgrade"), ("payments",)])
def test_an_unusable_database_is_one_line_and_exit_code_1(url: str, command: tuple[str, ...], tmp_path: Path) -> None:
    result = invoicebot(*command, cwd=tmp_path, DATABASE_URL=url, **SERVICES)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("invoicebot: cannot ") and ("127.0.0.1:1" in line or "/nonexistent" in line)
    assert "p@" not in line  # never the password
    assert result.stdout == ""
    assert not Path("/nonexistent").exists()


def test_serve_refusing_an_empty_database_leaves_no_file_behind(tmp_path: Path) -> None:
    result = invoicebot("serve", "--port", "0", cwd=tmp_path, **SERVICES)  # the default: ./invoicebot.db
    assert result.returncode == 1 and "run `invoicebot db upgrade` first" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["serve"], ["socket"], ["check"], ["reconcile"], ["db"], ["db", "upgrade"],
                    ["db", "current"], ["payments"], ["audit"], ["sandbox"], ["demo"]):
        assert main([*command, "--help"]) == 0, command
        out = capsys.readouterr().out
        assert "Usage: invoicebot" in out, command
    main(["audit", "--help"])
    assert "--json" in capsys.readouterr().out


def test_an_invalid_status_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["payments", "--status", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "'bogus' is not one of" in err
    assert all(s in err for s in ("'created'", "'recorded'", "'failed'", "'requires_action'", "'canceled'"))


def test_the_docs_name_every_setting_and_command() -> None:
    from bot.cli import app
    from bot.settings import EXPECTS, Settings

    fields = {name.upper() for name in Settings.model_fields}
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    test_only = {"CLOCK_OFFSET_FILE"}  # the test stack's and the demo's clock: not for operators
    assert example == fields - test_only and set(EXPECTS) == fields
    readme, deploy = (ROOT / "README.md").read_text(), (ROOT / "docs" / "deploy.md").read_text()
    commands = {c.name or c.callback.__name__ for c in app.registered_commands} | \
        {g.name for g in app.registered_groups}
    for command in commands:
        assert f"`invoicebot {command}" in readme, command
    assert "invoicebot check" in deploy and "/readyz" in deploy and "docs/billing-api.md" in readme
