"""Manifests: the children of a Pipeline follow the pod contract."""

from __future__ import annotations

from typing import Any

from sluice.core import manifests, naming
from sluice.core.runtime_config import build_runtime_config
from sluice.models.resources import ConnectorSpec, PipelineSpec
from sluice.models.runtime_config import RuntimeConfig
from tests.factories import connector_doc

OWNER = manifests.Owner(name="orders", namespace="team", uid="uid-1", generation=3)
DEFAULTS = manifests.RuntimeDefaults(image="example.org/sluice:1")


def _spec(**fields: Any) -> PipelineSpec:
    return PipelineSpec.model_validate({"sql": "CREATE TABLE t (x INT);", **fields})


def _config(spec: PipelineSpec, connectors: list[tuple[str, ConnectorSpec]] = []) -> RuntimeConfig:  # noqa: B006
    return build_runtime_config(
        pipeline_name="orders",
        namespace="team",
        spec=spec,
        sql=spec.sql or "",
        connectors=connectors,
    )


def _children(spec: PipelineSpec) -> dict[str, dict[str, Any]]:
    built = manifests.build_children(OWNER, spec, _config(spec), DEFAULTS)
    return {child["kind"]: child for child in built}


def test_stateful_set_runs_the_runtime_restricted() -> None:
    sts = _children(_spec())["StatefulSet"]
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == "sluice-orders"
    pod = sts["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["command"] == ["sluice"]
    assert container["args"] == ["runtime", "--config", "/etc/sluice/config/config.json"]
    assert container["image"] == "example.org/sluice:1"
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["SLUICE_RUNTIME_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["SLUICE_RUNTIME_PORT"]["value"] == "8080"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts == {"/etc/sluice/config": "config", "/tmp": "tmp"}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "sluice-orders"
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}


def test_children_carry_only_our_labels_and_an_owner_reference() -> None:
    for child in _children(_spec()).values():
        assert child["metadata"]["labels"] == naming.pipeline_labels("orders")
        assert child["metadata"]["namespace"] == "team"
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == "uid-1"
        assert owner["controller"] is True


def test_config_map_holds_the_runtime_config() -> None:
    spec = _spec()
    config_map = _children(spec)["ConfigMap"]
    assert RuntimeConfig.model_validate_json(config_map["data"]["config.json"]) == _config(spec)


def test_spec_image_and_resources_win() -> None:
    spec = _spec(
        runtime={
            "image": "mine:2",
            "imagePullPolicy": "Never",
            "resources": {"limits": {"memory": "1Gi"}},
            "env": [{"name": "A", "value": "b"}],
            "nodeSelector": {"disk": "ssd"},
        }
    )
    sts = _children(spec)["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "mine:2"
    assert container["imagePullPolicy"] == "Never"
    assert container["resources"] == {"limits": {"memory": "1Gi"}}
    assert {"name": "A", "value": "b"} in container["env"]
    assert pod["nodeSelector"] == {"disk": "ssd"}


def test_config_hash_rolls_on_program_change_but_not_on_pause() -> None:
    running = _spec()
    paused = _spec(desiredState="Paused")
    changed = PipelineSpec.model_validate({"sql": "CREATE TABLE u (y INT);"})

    def pod_hash(spec: PipelineSpec) -> str:
        sts = _children(spec)["StatefulSet"]
        return str(sts["spec"]["template"]["metadata"]["annotations"]["sluice.dev/config-hash"])

    assert pod_hash(running) == pod_hash(paused)
    assert pod_hash(running) != pod_hash(changed)
    connector = ConnectorSpec.model_validate(connector_doc()["spec"])
    with_connector = manifests.config_hash(_config(running, [("t-input", connector)]))
    assert with_connector != pod_hash(running)
    paused_input = ConnectorSpec.model_validate(connector_doc(paused=True)["spec"])
    assert manifests.config_hash(_config(running, [("t-input", paused_input)])) == with_connector


def test_restart_request_is_on_the_pod_template() -> None:
    sts = _children(_spec(restartRequest="again"))["StatefulSet"]
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["sluice.dev/restart-request"] == "again"


def test_stopped_pipeline_has_no_stateful_set_but_keeps_the_rest() -> None:
    children = _children(_spec(desiredState="Stopped", runtime={"storage": {"size": "2Gi"}}))
    assert set(children) == {"ConfigMap", "Service", "PersistentVolumeClaim"}


def test_storage_claim_owned_only_when_reclaim_policy_is_delete() -> None:
    kept = _children(_spec(runtime={"storage": {"size": "2Gi"}}))
    assert "ownerReferences" not in kept["PersistentVolumeClaim"]["metadata"]
    assert kept["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    sts = kept["StatefulSet"]
    volumes = {volume["name"]: volume for volume in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["storage"]["persistentVolumeClaim"]["claimName"] == "sluice-orders-storage"
    deleted = _children(_spec(runtime={"storage": {"reclaimPolicy": "Delete"}}))
    assert deleted["PersistentVolumeClaim"]["metadata"]["ownerReferences"]


def test_service_is_headless_on_the_http_port() -> None:
    service = _children(_spec())["Service"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["spec"]["selector"] == naming.pipeline_labels("orders")
