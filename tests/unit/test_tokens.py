"""The completion-token codec matches Feldera's encoding byte for byte."""

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.core.tokens import CompletionToken, InvalidToken, decode_token

FELDERA_DOCS_TOKEN = "eyJ1IjoiMDE5NmIxMjAtNjIwMy03YjkwLWI2YmQtMTY4OTBkZjE1ZTI4IiwiZSI6MywiYyI6M30"


def test_decodes_the_token_from_feldera_docs() -> None:
    token = decode_token(FELDERA_DOCS_TOKEN)
    assert token == CompletionToken("0196b120-6203-7b90-b6bd-16890df15e28", 3, 3)


def test_encodes_compact_json_unpadded_urlsafe() -> None:
    token = CompletionToken("0196b120-6203-7b90-b6bd-16890df15e28", 3, 3).encode()
    assert token == FELDERA_DOCS_TOKEN
    assert "=" not in token


def test_padded_form_is_accepted() -> None:
    assert decode_token(FELDERA_DOCS_TOKEN + "=").records == 3


@given(st.uuids(), st.integers(0, 2**63), st.integers(0, 2**63))
def test_round_trip(incarnation: object, endpoint: int, records: int) -> None:
    token = CompletionToken(str(incarnation), endpoint, records)
    encoded = token.encode()
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_token(encoded) == token


def _encode(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not base64!", "not a valid base64 string"),
        ("", "error parsing completion token"),
        (_encode([1, 2, 3]), "expected a JSON object"),
        (_encode({"e": 1, "c": 1}), "field 'u'"),
        (_encode({"u": "x", "e": -1, "c": 1}), "field 'e'"),
        (_encode({"u": "x", "e": 1, "c": "7"}), "field 'c'"),
        (_encode({"u": "x", "e": True, "c": 1}), "field 'e'"),
        ("AAAA", "error parsing completion token"),
    ],
)
def test_malformed_tokens_are_rejected(token: str, message: str) -> None:
    with pytest.raises(InvalidToken, match=message):
        decode_token(token)
