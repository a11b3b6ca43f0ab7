"""Layer 1 (core, pure): the children a Pipeline should have, as Kubernetes manifests.

`build_children` turns one Pipeline (its spec plus the rendered runtime config) into the
ConfigMap, Service, StatefulSet and, when storage is asked for, the PersistentVolumeClaim
the operator applies with server-side apply. Children carry only Sluice's labels: nothing of
the parent's metadata is copied, so GitOps tools never mistake them for their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.core import naming
from sluice.models.resources import API_VERSION, PipelineSpec, StorageSpec
from sluice.models.runtime_config import RuntimeConfig
from sluice.models.settings import RUNTIME_PORT

CONFIG_KEY = "config.json"
CONFIG_DIR = "/etc/sluice/config"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"
STORAGE_DIR = "/var/lib/sluice"

ANNOTATION_CONFIG_HASH = "sluice.dev/config-hash"
ANNOTATION_RESTART_REQUEST = "sluice.dev/restart-request"

CONTAINER_NAME = "pipeline"


@dataclass(frozen=True)
class Owner:
    """The Pipeline that owns the children."""

    name: str
    namespace: str
    uid: str
    generation: int = 1

    def reference(self) -> dict[str, Any]:
        """The controller owner reference children carry (garbage collection, ownership)."""
        return {
            "apiVersion": API_VERSION,
            "kind": "Pipeline",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class RuntimeDefaults:
    """What the operator fills in where the spec is silent."""

    image: str
    image_pull_policy: str | None = None


def storage_claim_name(pipeline: str) -> str:
    """Name of the pipeline's PersistentVolumeClaim."""
    return f"{naming.pipeline_child_name(pipeline)}-storage"


def storage_path(spec: PipelineSpec) -> str | None:
    """Where the pipeline process keeps its state: the PVC's mount, when there is one."""
    return STORAGE_DIR if spec.runtime is not None and spec.runtime.storage is not None else None


def config_hash(config: RuntimeConfig) -> str:
    """Hash of what the process runs; run states (pipeline and connectors) are left out.

    Pausing or resuming goes through the pipeline's API, so it must not roll the pod.
    """
    steady = config.model_copy(
        update={
            "initial_state": "Running",
            "connectors": [c.model_copy(update={"paused": False}) for c in config.connectors],
        }
    )
    return naming.short_hash(steady.model_dump_json())


def _metadata(owner: Owner, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": naming.pipeline_labels(owner.name),
        "ownerReferences": [owner.reference()],
    }
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def build_config_map(owner: Owner, config: RuntimeConfig) -> dict[str, Any]:
    """The ConfigMap holding the runtime config document the pod starts from."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            owner,
            naming.pipeline_child_name(owner.name),
            {ANNOTATION_CONFIG_HASH: config_hash(config)},
        ),
        "data": {CONFIG_KEY: config.model_dump_json(indent=1)},
    }


def build_service(owner: Owner) -> dict[str, Any]:
    """A headless Service: the StatefulSet's governing service and a stable DNS name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, naming.pipeline_child_name(owner.name)),
        "spec": {
            "clusterIP": "None",
            "selector": naming.pipeline_labels(owner.name),
            "ports": [{"name": "http", "port": RUNTIME_PORT, "targetPort": "http"}],
            "publishNotReadyAddresses": True,
        },
    }


def build_storage_claim(owner: Owner, storage: StorageSpec) -> dict[str, Any]:
    """The PVC; only owned by the Pipeline (so deleted with it) when the policy says Delete."""
    metadata = _metadata(owner, storage_claim_name(owner.name))
    if storage.reclaim_policy != "Delete":
        del metadata["ownerReferences"]
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name is not None:
        spec["storageClassName"] = storage.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def _container(spec: PipelineSpec, defaults: RuntimeDefaults) -> dict[str, Any]:
    runtime = spec.runtime
    env: list[dict[str, Any]] = [
        {"name": "SLUICE_RUNTIME_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "SLUICE_RUNTIME_PORT", "value": str(RUNTIME_PORT)},
    ]
    for variable in runtime.env if runtime and runtime.env else []:
        env.append({"name": variable.name, "value": variable.value})
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if runtime is not None and runtime.storage is not None:
        mounts.append({"name": "storage", "mountPath": STORAGE_DIR})
    probe_target = {"path": "/readyz", "port": "http"}
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": (runtime.image if runtime and runtime.image else defaults.image),
        # The command is explicit: never rely on the image's entrypoint.
        "command": ["sluice"],
        "args": ["runtime", "--config", CONFIG_PATH],
        "env": env,
        "ports": [{"name": "http", "containerPort": RUNTIME_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": probe_target, "periodSeconds": 1, "failureThreshold": 3},
        # Liveness only judges a process that has started: a slow start on a busy node
        # (imports, replaying storage) is the startup probe's business, with a long budget.
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 300,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    pull_policy = (runtime.image_pull_policy if runtime else None) or defaults.image_pull_policy
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    if runtime is not None and runtime.resources is not None:
        container["resources"] = runtime.resources.model_dump(
            by_alias=True, mode="json", exclude_none=True
        )
    return container


def build_stateful_set(
    owner: Owner, spec: PipelineSpec, config: RuntimeConfig, defaults: RuntimeDefaults
) -> dict[str, Any]:
    """The StatefulSet of one pod running `sluice runtime`; none when the pipeline is Stopped."""
    runtime = spec.runtime
    labels = naming.pipeline_labels(owner.name)
    template_annotations = {
        ANNOTATION_CONFIG_HASH: config_hash(config),
        ANNOTATION_RESTART_REQUEST: spec.restart_request or "",
    }
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": naming.pipeline_child_name(owner.name)}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if runtime is not None and runtime.storage is not None:
        volumes.append(
            {
                "name": "storage",
                "persistentVolumeClaim": {"claimName": storage_claim_name(owner.name)},
            }
        )
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec, defaults)],
        "volumes": volumes,
        "terminationGracePeriodSeconds": 30,
    }
    if runtime is not None:
        if runtime.node_selector:
            pod_spec["nodeSelector"] = dict(runtime.node_selector)
        if runtime.tolerations:
            pod_spec["tolerations"] = [
                toleration.model_dump(by_alias=True, mode="json", exclude_none=True)
                for toleration in runtime.tolerations
            ]
        if runtime.service_account_name:
            pod_spec["serviceAccountName"] = runtime.service_account_name
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(owner, naming.pipeline_child_name(owner.name)),
        "spec": {
            "replicas": 1,
            "serviceName": naming.pipeline_child_name(owner.name),
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": template_annotations},
                "spec": pod_spec,
            },
        },
    }


def build_children(
    owner: Owner, spec: PipelineSpec, config: RuntimeConfig, defaults: RuntimeDefaults
) -> list[dict[str, Any]]:
    """Every child the Pipeline should have now, in the order they are applied.

    A Stopped pipeline keeps its config, Service and storage but has no StatefulSet.
    """
    children = [build_config_map(owner, config), build_service(owner)]
    if spec.runtime is not None and spec.runtime.storage is not None:
        children.append(build_storage_claim(owner, spec.runtime.storage))
    if spec.desired_state != "Stopped":
        children.append(build_stateful_set(owner, spec, config, defaults))
    return children
