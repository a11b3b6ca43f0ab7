"""Layer 1: pure functions over the models (naming, token codec, errors, CRDs, manifests,
planning, status). Never imports kopf, aiohttp or a Kubernetes client."""
