"""The Argo CD health checks in docs/gitops run in a real Lua 5.1 interpreter over their fixtures.

Argo CD runs health scripts in gopher-lua (Lua 5.1) with only the base, table, string and math
libraries; `lupa.lua51` embeds the reference Lua 5.1 and the same libraries are removed here.
The fixtures are resource documents as `kubectl get -o yaml` prints them; each must also be a
valid object of the generated CRD, so they cannot drift from the real status shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import lupa.lua51 as lua51
import pytest
import yaml

from sluice.core import crdgen
from tests.factories import ROOT

ARGOCD = ROOT / "docs" / "gitops" / "argocd" / "sluice.dev"
KINDS = ("Pipeline", "Connector", "CompletionToken")
SANDBOXED_AWAY = ("os", "io", "debug", "package", "require", "dofile", "loadfile", "loadstring")
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in crdgen.build_all_crds().values()}


def run_health_script(script: str, resource: dict[str, Any]) -> dict[str, Any]:
    """What Argo CD would compute: the script's returned table, as a dict."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua_globals = runtime.globals()
    for name in SANDBOXED_AWAY:
        lua_globals[name] = None
    lua_globals.obj = runtime.table_from(resource, recursive=True)
    result = runtime.execute(script)
    assert result is not None, "the script returned nothing"
    return dict(result.items())


def _test_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind in KINDS:
        suite = yaml.safe_load((ARGOCD / kind / "health_test.yaml").read_text())
        cases += [(kind, test) for test in suite["tests"]]
    return cases


CASES = _test_cases()


@pytest.mark.parametrize(
    ("kind", "test"), CASES, ids=[f"{kind}-{Path(t['inputPath']).stem}" for kind, t in CASES]
)
def test_health_script_over_fixture(kind: str, test: dict[str, Any]) -> None:
    script = (ARGOCD / kind / "health.lua").read_text()
    resource = yaml.safe_load((ARGOCD / kind / test["inputPath"]).read_text())
    assert resource["kind"] == kind
    health = run_health_script(script, resource)
    assert health["status"] == test["healthStatus"]["status"]
    assert health.get("message") == test["healthStatus"]["message"]


@pytest.mark.parametrize(
    ("kind", "test"), CASES, ids=[f"{kind}-{Path(t['inputPath']).stem}" for kind, t in CASES]
)
def test_fixture_is_a_valid_resource(kind: str, test: dict[str, Any]) -> None:
    resource = yaml.safe_load((ARGOCD / kind / test["inputPath"]).read_text())
    schema = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.validate(resource, schema)


@pytest.mark.parametrize("kind", KINDS)
def test_every_fixture_is_tested_and_every_outcome_covered(kind: str) -> None:
    suite = yaml.safe_load((ARGOCD / kind / "health_test.yaml").read_text())["tests"]
    referenced = {test["inputPath"] for test in suite}
    on_disk = {f"testdata/{path.name}" for path in (ARGOCD / kind / "testdata").glob("*.yaml")}
    assert referenced == on_disk
    outcomes = {test["healthStatus"]["status"] for test in suite}
    expected = {"Healthy", "Progressing", "Degraded"}
    if kind == "Pipeline":
        expected.add("Suspended")
    assert outcomes == expected


@pytest.mark.parametrize("kind", KINDS)
def test_stale_or_missing_status_is_progressing(kind: str) -> None:
    """Argo compares health right after a sync: before the operator has seen the new
    generation, a Ready=True left from the old one must not count as Healthy."""
    script = (ARGOCD / kind / "health.lua").read_text()
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Done",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    complete = {**ready, "type": "Complete"}
    for status in (
        None,
        {},
        {"observedGeneration": -1},
        {"observedGeneration": 1, "conditions": [ready, complete]},
    ):
        resource: dict[str, Any] = {"kind": kind, "metadata": {"name": "x", "generation": 2}}
        if status is not None:
            resource["status"] = status
        assert run_health_script(script, resource)["status"] == "Progressing", status
    resource["status"] = {"observedGeneration": 2, "conditions": [ready, complete]}
    assert run_health_script(script, resource)["status"] == "Healthy"


@pytest.mark.parametrize("kind", ["Pipeline", "Connector"])
def test_stalled_wins_over_reconciling_and_ready(kind: str) -> None:
    script = (ARGOCD / kind / "health.lua").read_text()

    def condition(type_: str, status: str) -> dict[str, str]:
        return {"type": type_, "status": status, "reason": f"{type_}Reason", "message": "m"}

    resource: dict[str, Any] = {
        "kind": kind,
        "metadata": {"generation": 4},
        "status": {
            "observedGeneration": 4,
            "conditions": [
                condition("Ready", "True"),
                condition("Reconciling", "True"),
                condition("Stalled", "True"),
            ],
        },
    }
    health = run_health_script(script, resource)
    assert health == {"status": "Degraded", "message": "StalledReason: m"}
    resource["status"]["conditions"][2]["status"] = "False"
    assert run_health_script(script, resource)["status"] == "Progressing"
    resource["status"]["conditions"][1]["status"] = "False"
    assert run_health_script(script, resource)["status"] == "Healthy"
    resource["status"]["conditions"][0]["status"] = "Unknown"
    assert run_health_script(script, resource)["status"] == "Progressing"


def test_scripts_use_no_library_argo_cd_lacks() -> None:
    for kind in KINDS:
        script = (ARGOCD / kind / "health.lua").read_text()
        for name in SANDBOXED_AWAY:
            assert f"{name}." not in script, (kind, name)
            assert f"{name}(" not in script, (kind, name)


def test_sandbox_really_removes_the_libraries() -> None:
    with pytest.raises(lua51.LuaError):
        run_health_script("return {status = os.getenv('HOME')}", {})
