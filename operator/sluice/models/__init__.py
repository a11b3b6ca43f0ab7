"""Layer 0: pydantic models of the custom resources and of the runtime config. No I/O."""
