"""Stageline: a self-hosted CI/CD pipeline service speaking the CodeArts Pipeline v5 API."""

__version__ = "0.1.0"
