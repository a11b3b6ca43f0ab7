"""`sluice gateway` refuses to run open unless told twice, and reads the chart's variables."""

from __future__ import annotations

import pytest

from sluice.cli import main
from sluice.core.errors import UserError
from sluice.gateway.command import default_mechanisms, parse_mechanisms


def test_auth_off_needs_explicit_consent() -> None:
    with pytest.raises(UserError, match="--insecure-no-auth"):
        parse_mechanisms("none", insecure=False)
    assert parse_mechanisms("none", insecure=True) == []
    assert parse_mechanisms("apikey, serviceaccount", insecure=False) == [
        "apikey",
        "serviceaccount",
    ]
    with pytest.raises(UserError, match="unknown mechanism"):
        parse_mechanisms("apikey,basic", insecure=False)
    with pytest.raises(UserError, match="cannot be combined"):
        parse_mechanisms("none,apikey", insecure=True)


def test_cli_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--auth", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "refusing to serve without authentication" in err


def test_chart_environment_selects_mechanisms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_AUTH_ENABLED", "true")
    monkeypatch.setenv("SLUICE_AUTH_API_KEYS", "true")
    monkeypatch.setenv("SLUICE_AUTH_SERVICE_ACCOUNT_TOKENS", "false")
    monkeypatch.setenv("SLUICE_AUTH_OIDC_ISSUER", "https://login.example.com")
    assert default_mechanisms() == "apikey,oidc"
    monkeypatch.setenv("SLUICE_AUTH_ENABLED", "false")
    assert default_mechanisms() == "none"
