"""Layer 3: the kopf operator that reconciles Pipelines, Connectors and CompletionTokens."""
