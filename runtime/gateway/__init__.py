"""The IB Gateway adapter: ib_async on its own asyncio thread, the link transports, IB's codes,
the connection breaker and the Gateway's daily restart schedule.

Actors reach the Gateway only through `link_client` (typed requests) and the messages it emits.
"""
