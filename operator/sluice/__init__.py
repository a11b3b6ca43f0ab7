"""Sluice: Feldera-compatible streaming SQL pipelines on Kubernetes."""

__version__ = "0.1.0"
