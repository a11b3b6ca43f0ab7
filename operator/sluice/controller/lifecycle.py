"""Layer 3 (controller): start and stop the operator — kopf settings, Deps, workers, probes.

kopf's own storage goes to annotations under our prefix (never into status), its finalizer
carries our name, its event posting is off (we post our own Events for transitions), and
it runs standalone (one replica, no peering objects). Startup builds the `Deps` into memo
and starts the work-queue workers; the liveness probe fails when they died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import kopf

from sluice.controller import connectors, pipelines, tokens
from sluice.controller.deps import Deps
from sluice.controller.handlers import registry
from sluice.controller.observe import Observer
from sluice.controller.programs import ProgramChecker
from sluice.controller.store import WorkKey
from sluice.k8s.api import (
    COMPLETION_TOKEN,
    CONFIG_MAP,
    CONNECTOR,
    PERSISTENT_VOLUME_CLAIM,
    PIPELINE,
    POD,
    SERVICE,
    STATEFUL_SET,
)
from sluice.k8s.client import HttpKubeApi, load_credentials
from sluice.models.settings import OperatorSettings
from sluice.process.client import ProcessClient

logger = logging.getLogger(__name__)

PREFIX = "sluice.dev"

Reconciler = Callable[[Deps, str, str], Awaitable[float | None]]
RECONCILERS: dict[str, Reconciler] = {
    "Pipeline": pipelines.reconcile_pipeline,
    "Connector": connectors.reconcile_connector,
    "CompletionToken": tokens.reconcile_token,
}


def kopf_settings() -> kopf.OperatorSettings:
    """kopf configured to stay out of status and out of other operators' way."""
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


async def process(deps: Deps, key: WorkKey) -> None:
    """Reconcile one object; a failure is retried with back-off, never raised."""
    kind, namespace, name = key
    try:
        delay = await RECONCILERS[kind](deps, namespace, name)
        deps.failures.pop(key, None)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        attempts = deps.failures.get(key, 0) + 1
        deps.failures[key] = attempts
        delay = min(deps.settings.max_backoff, 0.5 * 2**attempts)
        logger.warning(
            "reconciling %s %s/%s failed (attempt %d, retry in %.1f s): %s",
            kind,
            namespace,
            name,
            attempts,
            delay,
            error,
            exc_info=attempts == 1,
        )
    if delay is not None:
        deps.queue.add_after(key, delay)


PRIMED_KINDS = (
    # Pipelines first: whether a ConfigMap matters depends on the Pipelines reading it.
    PIPELINE,
    CONNECTOR,
    COMPLETION_TOKEN,
    CONFIG_MAP,
    SERVICE,
    STATEFUL_SET,
    PERSISTENT_VOLUME_CLAIM,
    POD,
)


async def prime_store(deps: Deps) -> None:
    """Fill the store with a full list of every watched kind, and queue what it concerns.

    Reconciling a Pipeline before its Connectors are known would render a config without
    them and roll a running pod (then roll it back once they arrive): after every operator
    restart or upgrade. So the workers start only once the store holds complete lists; the
    watch events that follow keep it current.
    """
    settings = deps.settings
    scopes: list[str | None] = [None] if settings.all_namespaces else list(settings.namespaces)
    keys: list[WorkKey] = []
    for kind in PRIMED_KINDS:
        for namespace in scopes:
            page = await deps.kube.list(kind, namespace)
            for body in page.items:
                # List items carry no kind; watch events (and the reconcilers) expect one.
                body.setdefault("apiVersion", kind.api_version)
                body.setdefault("kind", kind.kind)
                keys += deps.store.record(kind.kind, "ADDED", body)
    for key in dict.fromkeys(keys):
        deps.queue.add(key)


def start_workers(deps: Deps) -> list[asyncio.Task[None]]:
    """The timer task and the reconcile workers of the work queue."""
    tasks = [asyncio.create_task(deps.queue.run_timers(), name="workqueue timers")]
    for number in range(deps.settings.workers):
        tasks.append(
            asyncio.create_task(
                deps.queue.run_worker(lambda key: process(deps, key)),
                name=f"reconciler {number}",
            )
        )
    return tasks


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same credentials kubectl would use (in-cluster account, else the kubeconfig)."""
    return kopf.login_via_client(**kwargs)


@kopf.on.startup(registry=registry)
async def start(memo: kopf.Memo, **_: Any) -> None:
    settings: OperatorSettings = memo.settings
    if getattr(memo, "deps", None) is None:
        kube = HttpKubeApi.create(load_credentials())
        session = aiohttp.ClientSession()
        memo.closers = [kube.close, session.close]
        process_client = ProcessClient(session, timeout=settings.request_timeout)
        memo.deps = Deps(
            settings=settings,
            kube=kube,
            process=process_client,
            observer=Observer(process_client, session),
            programs=ProgramChecker(),
        )
    await prime_store(memo.deps)
    memo.tasks = start_workers(memo.deps)


@kopf.on.cleanup(registry=registry)
async def stop(memo: kopf.Memo, **_: Any) -> None:
    tasks: list[asyncio.Task[None]] = getattr(memo, "tasks", [])
    for task in tasks:
        task.cancel()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        deps: Deps | None = getattr(memo, "deps", None)
        if deps is not None:
            await deps.observer.close()
            deps.process.close()
    finally:
        # Even when kopf cancels the cleanup, leave no session open behind.
        for close in getattr(memo, "closers", []):
            with contextlib.suppress(Exception):
                await close()


@kopf.on.probe(id="workqueue", registry=registry)
async def workqueue(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    tasks: list[asyncio.Task[None]] = getattr(memo, "tasks", [])
    dead = [task.get_name() for task in tasks if task.done()]
    if dead:
        raise RuntimeError(f"reconcile tasks ended: {', '.join(dead)}")
    deps: Deps = memo.deps
    return {"pending": len(deps.queue), "statusWrites": deps.status_writes}


def run_operator(settings: OperatorSettings, memo: kopf.Memo | None = None) -> None:
    """Run kopf with our registry and settings until interrupted."""
    # kopf reports every handled watch event at INFO; our own Events and logs say what matters.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    memo = memo or kopf.Memo()
    memo.settings = settings
    kopf.run(
        registry=registry,
        settings=kopf_settings(),
        standalone=True,
        clusterwide=settings.all_namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness_endpoint,
        memo=memo,
    )
