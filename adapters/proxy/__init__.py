"""The OpenAI-compatible guardrail proxy (``pip install ".[proxy]"`` in a checkout).

``create_app(settings) -> FastAPI``; ``guardrail serve`` runs it with uvicorn.
"""

from __future__ import annotations

from .app import create_app
from .settings import ProxySettings, load_settings

__all__ = ["ProxySettings", "create_app", "load_settings"]
