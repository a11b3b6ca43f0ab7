"""Layer 3: the pipeline process (`sluice runtime`): SQL engine, connectors, completion
tokens and Feldera's pipeline-process HTTP API."""
