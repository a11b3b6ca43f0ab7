"""The `operator/` folder is a source root, never a package: it would shadow the stdlib."""

import operator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_folder_has_no_init() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_stdlib_operator_is_importable() -> None:
    assert operator.itemgetter(1)([0, 1]) == 1


def test_package_lives_under_operator() -> None:
    import sluice

    assert Path(sluice.__file__).resolve().parent == ROOT / "operator" / "sluice"
