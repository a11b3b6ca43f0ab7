"""Layer 4: local mode (`sluice local up`): pipeline processes plus the gateway."""
