"""IB Gateway simulator: the TWS API socket protocol on 127.0.0.1 for unmodified ib_async clients.

Embedding (the demo, integration tests, the soak)::

    async with open_fake_gateway(FakeGatewayConfig(port=0, bars=csv, speed=60)) as gw:
        ...  # connect ib_async to 127.0.0.1:gw.port; drive faults with gw.drop(), gw.restart(5)

Standalone: ``python -m tools.fake_gateway --port 4002 --bars CSV --speed 60``.
"""

from tools.fake_gateway.config import FakeGatewayConfig
from tools.fake_gateway.server import FakeGateway, open_fake_gateway

__all__ = ["FakeGateway", "FakeGatewayConfig", "open_fake_gateway"]
