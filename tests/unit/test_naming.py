"""Names derived from user input follow Feldera's canonicalisation."""

import pytest

from sluice.core import naming


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("orders", "orders"),
        ("ORDERS", "orders"),
        ('"Orders"', "Orders"),
        ('"a.b"', "a.b"),
        ('"', '"'),
    ],
)
def test_canonical_sql_name(written: str, canonical: str) -> None:
    assert naming.canonical_sql_name(written) == canonical


def test_endpoint_name_lowercases_table_but_not_connector() -> None:
    assert naming.endpoint_name("PRICE", "Tutorial-Price") == "price.Tutorial-Price"


def test_pipeline_labels_select_one_pipeline() -> None:
    labels = naming.pipeline_labels("orders")
    assert labels[naming.LABEL_PIPELINE] == "orders"
    assert labels[naming.LABEL_MANAGED_BY] == "sluice"
    assert "app.kubernetes.io/instance" not in labels
