"""The composition root: settings in, channels wired, the supervision tree built and run.

The only package that imports `actors`: `app.build_tree` is the supervision tree in one place,
`wiring` every channel, `cli` the command line (`python -m runtime`).
"""
