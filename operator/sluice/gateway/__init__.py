"""Layer 3: the gateway ("sidecar API") serving Feldera's /v0 REST API."""
