"""Pure auth logic: Feldera's API-key format and hash, roles, bearer parsing, dispatch."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from sluice.core.auth import (
    RBAC_VERBS,
    check_api_key_name,
    generate_api_key,
    hash_api_key,
    looks_like_api_key,
    parse_role,
    role_allows,
)
from sluice.gateway.auth import bearer_token


def test_generated_keys_have_feldera_format_and_differ() -> None:
    keys = {generate_api_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert re.fullmatch(r"apikey:[A-Za-z0-9]{128}", key)
        assert looks_like_api_key(key)


def test_hash_is_sha256_of_the_whole_key_in_standard_base64() -> None:
    key = "apikey:" + "a" * 128
    expected = base64.standard_b64encode(hashlib.sha256(key.encode()).digest()).decode()
    assert hash_api_key(key) == expected
    assert hash_api_key(key).endswith("=")  # 32 bytes -> padded standard base64
    assert hash_api_key(key) != hash_api_key("a" * 128)  # the prefix is hashed too


@pytest.mark.parametrize(
    ("granted", "required", "allowed"),
    [
        ("read", "read", True),
        ("read", "write", False),
        ("write", "read", True),
        ("write", "write", True),
        ("write", "admin", False),
        ("admin", "write", True),
    ],
)
def test_role_order(granted: str, required: str, allowed: bool) -> None:
    assert role_allows(parse_role(granted), parse_role(required)) is allowed


def test_unknown_role_and_bad_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        parse_role("owner!")
    with pytest.raises(ValueError, match="invalid API key name"):
        check_api_key_name("has space")
    with pytest.raises(ValueError, match="invalid API key name"):
        check_api_key_name("x" * 101)
    assert check_api_key_name("ci_bot-1") == "ci_bot-1"


def test_rbac_verbs_per_role() -> None:
    assert RBAC_VERBS == {"read": "get", "write": "update", "admin": "patch"}


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer   ", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
