"""Tests of the pure brain: indicators, gameplan, selection, signals, options, replay."""
