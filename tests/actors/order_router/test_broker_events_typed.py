"""broker_events is one typed union from GatewayLink to OrderRouter (issue 12: a union per
channel lets mypy catch a missing case; a `Channel[Message]` with isinstance chains does not).

mypy (strict, part of every commit) checks the router's `match` exhaustive through
`assert_never`; these tests pin that the channel's ends are typed with the union and that the
dispatch names every member, so neither can quietly fall back to `Message`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing

import trio

from actors import gateway_link
from actors.order_router import core, sessions
from messages.orders import (
    BrokerCommission,
    BrokerEvent,
    BrokerExecution,
    BrokerOrderError,
    BrokerOrderStatus,
)
from runtime.gateway.link_transport import SessionEvents


def test_each_end_of_broker_events_is_typed_with_the_union() -> None:
    assert typing.get_type_hints(gateway_link.Outbox)["broker"] == \
        trio.MemorySendChannel[BrokerEvent]
    assert typing.get_type_hints(SessionEvents)["broker"] == \
        trio.MemorySendChannel[BrokerEvent] | None
    assert typing.get_type_hints(core.Inbox)["broker"] == \
        trio.MemoryReceiveChannel[BrokerEvent]


def test_the_union_holds_what_the_gateway_pushes() -> None:
    assert set(typing.get_args(BrokerEvent)) == {BrokerOrderStatus, BrokerExecution,
                                                 BrokerCommission, BrokerOrderError}


def test_the_routers_dispatch_matches_every_member_and_ends_in_assert_never() -> None:
    source = inspect.getsource(sessions.Sessions.on_broker_event)
    tree = ast.parse(textwrap.dedent(source))
    (match,) = [n for n in ast.walk(tree) if isinstance(n, ast.Match)]
    handled = {c.pattern.cls.id for c in match.cases
               if isinstance(c.pattern, ast.MatchClass) and isinstance(c.pattern.cls, ast.Name)}
    assert handled == {t.__name__ for t in typing.get_args(BrokerEvent)}
    last = match.cases[-1]
    assert isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None
    assert "assert_never" in ast.unparse(last.body[0])
