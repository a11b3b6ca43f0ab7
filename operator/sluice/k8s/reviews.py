"""Layer 2 (k8s): TokenReview and SubjectAccessReview for the gateway's ServiceAccount auth.

The gateway hands a caller's bearer token to the API server (TokenReview) to learn who it
is, then asks RBAC (SubjectAccessReview) whether that user may `get` / `update` / `list`
`pipelines.sluice.dev` in the namespace. The official `kubernetes` client is blocking, so
every call runs in a worker thread.

RBAC a client needs: a Role with `get` on `pipelines` for read routes (stats, completion
status, pipeline descriptors), `update` for write routes (ingress, completion tokens,
start/pause), and `list` to list pipelines. The gateway itself needs `create` on
`tokenreviews.authentication.k8s.io` and `subjectaccessreviews.authorization.k8s.io`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sluice.core.auth import ReviewedUser
from sluice.models.resources import GROUP


def load_api_client(context: str | None = None) -> Any:
    """A `kubernetes.client.ApiClient`: in-cluster credentials, else the kubeconfig."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            context=context, client_configuration=configuration
        )
    return client.ApiClient(configuration)


class KubernetesReviewer:
    """TokenReview + SubjectAccessReview against one API server."""

    def __init__(self, api_client: Any, audiences: Sequence[str] = ()) -> None:
        from kubernetes import client

        self.audiences = list(audiences)
        self._authentication = client.AuthenticationV1Api(api_client)
        self._authorization = client.AuthorizationV1Api(api_client)

    async def review_token(self, token: str) -> ReviewedUser | None:
        """The user the token authenticates, or None when the API server rejects it."""
        return await asyncio.to_thread(self._review_token, token)

    def _review_token(self, token: str) -> ReviewedUser | None:
        from kubernetes import client

        spec = client.V1TokenReviewSpec(token=token, audiences=self.audiences or None)
        review = self._authentication.create_token_review(client.V1TokenReview(spec=spec))
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return ReviewedUser(
            username=user.username or "",
            uid=user.uid or "",
            groups=tuple(user.groups or ()),
            extra={key: list(value) for key, value in (user.extra or {}).items()},
        )

    async def review_access(
        self, user: ReviewedUser, namespace: str, verb: str, name: str | None
    ) -> bool:
        """Whether RBAC allows `verb` on `pipelines.sluice.dev` (`name`, or all) to `user`."""
        return await asyncio.to_thread(self._review_access, user, namespace, verb, name)

    def _review_access(
        self, user: ReviewedUser, namespace: str, verb: str, name: str | None
    ) -> bool:
        from kubernetes import client

        attributes = client.V1ResourceAttributes(
            group=GROUP, resource="pipelines", verb=verb, namespace=namespace, name=name
        )
        spec = client.V1SubjectAccessReviewSpec(
            user=user.username,
            uid=user.uid or None,
            groups=list(user.groups) or None,
            extra=user.extra or None,
            resource_attributes=attributes,
        )
        review = self._authorization.create_subject_access_review(
            client.V1SubjectAccessReview(spec=spec)
        )
        return bool(review.status is not None and review.status.allowed)
