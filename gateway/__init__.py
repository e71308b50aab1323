"""A KedaSMS-compatible gateway: front-end proxy and back end in one ASGI app.

``create_app(GatewayConfig(...), policy=CarrierSimulation.realistic())`` builds it;
``python -m gateway`` serves it and manages accounts (see ``docs/gateway.md``).
"""

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.simulation import CarrierSimulation, CountryProfile

__all__ = ["CarrierSimulation", "CountryProfile", "GatewayConfig", "create_app"]
