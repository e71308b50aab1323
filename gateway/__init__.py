"""A KedaSMS-compatible gateway: front-end proxy and back end in one ASGI app.

``create_app(GatewayConfig(...))`` builds it; ``python -m gateway`` serves it and manages
accounts (see ``docs/gateway.md``).
"""

from gateway.app import create_app
from gateway.config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]
