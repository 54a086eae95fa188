"""The bot's brain as pure logic: indicators, strategy selection, signals, exits, options, sizing.

No trio, no I/O, no wall clock: time is passed in (as aware datetimes at the edges, as float
UTC epoch seconds on the hot path). The Indicators and StrategySelector actors are thin loops
around these classes, and `tools.replay` drives the very same code over recorded bars, so the
live bot and a replay of the same bars make the same decisions.
"""
