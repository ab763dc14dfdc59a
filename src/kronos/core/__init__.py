"""The planner: pure functions from snapshot (+ state, clock, options) to plan.

Nothing in this package does I/O, reads the clock or the environment, or keeps
global state; see ``tests/test_purity.py``.
"""
