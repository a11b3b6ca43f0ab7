"""Layer 1 (core, pure): the completion-token codec, exactly as Feldera encodes tokens.

A token is URL-safe base64 without padding of the compact JSON
`{"u": incarnation uuid, "e": endpoint id, "c": records received}`. The runtime mints them,
the gateway and the operator decode them to answer from the completion frontier.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass


class InvalidToken(ValueError):
    """The token is not one this pipeline could have minted."""


@dataclass(frozen=True, slots=True)
class CompletionToken:
    """A decoded completion token."""

    incarnation: str
    endpoint_id: int
    records: int

    def encode(self) -> str:
        """The token string a client sees."""
        payload = json.dumps(
            {"u": self.incarnation, "e": self.endpoint_id, "c": self.records},
            separators=(",", ":"),
        )
        return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> CompletionToken:
    """Decode a token string; raises InvalidToken with Feldera's wording on any defect."""
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise InvalidToken(f"completion token is not a valid base64 string: {error}") from error
    try:
        fields = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidToken(f"error parsing completion token: {error}") from error
    if not isinstance(fields, dict):
        raise InvalidToken("error parsing completion token: expected a JSON object")
    incarnation, endpoint_id, records = fields.get("u"), fields.get("e"), fields.get("c")
    if not isinstance(incarnation, str):
        raise InvalidToken("error parsing completion token: field 'u' must be a string")
    return CompletionToken(
        incarnation=incarnation,
        endpoint_id=_count_field("e", endpoint_id),
        records=_count_field("c", records),
    )


def _count_field(key: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidToken(
            f"error parsing completion token: field '{key}' must be a non-negative integer"
        )
    return value
