"""The runtime, one subpackage per part:

- `supervision`: the supervisor, the actor contract, channels, the tree dump;
- `gateway`: the IB Gateway adapter (ib_async bridge, transports, codes, breaker, schedule);
- `ops`: the loopback HTTP server and the Discord client;
- `infra`: the clock, logs and the event journal, state files;
- `app`: the composition root (wiring, the tree, the CLI) — the only place that imports actors.
"""
