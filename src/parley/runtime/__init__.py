"""The private engine: session table, turn queue, turn loop, history integrity and event bus.

Nothing here is public API; `parley.Client` and `parley.Session` are the surface over it.
"""
