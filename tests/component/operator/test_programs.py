"""The operator's program check runs the real runtime check in a child process."""

from __future__ import annotations

from pathlib import Path

from sluice.controller.programs import ProgramChecker
from sluice.models.runtime_config import ConnectorConfig, RuntimeConfig, TransportConfig

GOOD_SQL = "CREATE TABLE t (x INT); CREATE VIEW v AS SELECT x FROM t;"


async def test_a_program_that_binds_is_valid() -> None:
    checker = ProgramChecker()
    assert await checker.problem(RuntimeConfig(pipeline_name="p", sql=GOOD_SQL), "h1") is None


async def test_a_program_that_does_not_bind_is_reported_with_the_engine_message() -> None:
    checker = ProgramChecker()
    config = RuntimeConfig(
        pipeline_name="p", sql="CREATE TABLE t (x INT); CREATE VIEW v AS SELECT y FROM t;"
    )
    problem = await checker.problem(config, "h2")
    assert problem is not None
    assert "view 'v'" in problem
    assert '"y"' in problem


async def test_a_connector_on_an_unknown_table_is_reported_and_no_file_is_touched(
    tmp_path: Path,
) -> None:
    checker = ProgramChecker()
    connector = ConnectorConfig(
        name="out",
        relation="missing",
        direction="output",
        transport=TransportConfig(
            name="file_output", config={"path": f"{tmp_path}/never/out.json"}
        ),
    )
    config = RuntimeConfig(pipeline_name="p", sql=GOOD_SQL, connectors=[connector])
    problem = await checker.problem(config, "h3")
    assert problem is not None
    assert "missing" in problem
    assert not (tmp_path / "never").exists()


async def test_verdicts_are_cached_by_config_hash() -> None:
    checker = ProgramChecker(command=["false"])  # would fail if it ran again
    checker._verdicts["known"] = None
    config = RuntimeConfig(pipeline_name="p", sql="anything")
    assert await checker.problem(config, "known") is None
    assert await checker.problem(config, "unknown") is not None
