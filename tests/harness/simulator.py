"""tools.fake_gateway's configuration for tests: free loopback ports, a session in progress."""

from __future__ import annotations

import datetime as dt
from typing import Any

from config.market_calendar import ET
from tools.fake_gateway import FakeGatewayConfig

#: a regular session inside the SPY CSV (tests.harness.data.SPY_1M), the previous one in it too
IN_SESSION = dt.datetime(2024, 2, 21, 10, 0, tzinfo=ET)


def gw_config(**overrides: Any) -> FakeGatewayConfig:
    """Free loopback ports, 10:00 ET on 2024-02-21, speed 60, plus `overrides`.

    Tests that need their own simulator enter `open_fake_gateway(gw_config(...))` themselves
    (a trio nursery must be entered and exited by the same task).
    """
    fields: dict[str, Any] = {"port": 0, "control_port": 0, "speed": 60.0,
                              "start": IN_SESSION}
    fields.update(overrides)
    return FakeGatewayConfig(**fields)
