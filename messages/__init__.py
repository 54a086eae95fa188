"""The only shared vocabulary of the actors: immutable, typed, JSON-serialisable messages.

Grouped by channel (see runtime/app/wiring.py for which channel carries which type):
  market   bars, gaps, quotes                       BarFeed -> Indicators, selector, router
  link     session state and Gateway notices        GatewayLink -> everyone who cares
  brain    indicator snapshots, decisions, signals  Indicators -> StrategySelector -> ModeGuard
  orders   intents, order events, fills, positions  ModeGuard -> OrderRouter -> ModeGuard
  control  trading state, commands                  ModeGuard <-> health endpoint, operator
  alerts   what the operator must hear              anyone -> Notifier
  status   the read-model of the operator's views    OrderRouter, ModeGuard, ResourceProbe
           (book, risk, resources: latest values)    -> console, /health, Notifier

No ib_async object ever appears here: they are mutable and belong to the asyncio side.
Time is always a timezone-aware UTC datetime.
"""
