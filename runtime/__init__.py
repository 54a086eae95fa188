"""The runtime: supervision, channel wiring, the one clock, logging and the entry point."""
