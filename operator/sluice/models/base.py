"""Layer 0 (models): the base classes every wire model shares.

Spec models forbid unknown fields so a typo in a manifest is an error that names the field;
status models ignore unknown fields so an older operator can read a newer one's status.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """A frozen model with camelCase names on the wire and snake_case names in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


class StatusModel(BaseModel):
    """Like WireModel, but tolerant of fields it does not know (written by newer versions)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )
