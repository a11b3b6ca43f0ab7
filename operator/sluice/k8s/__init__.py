"""Layer 2: the only code that talks to the Kubernetes API server."""
