"""The names of the planner's phases, spelled once.

A plan's steps carry one of these as ``phase``. Two of them are *modes* an
aggregate is balanced in (a policy's ``mode``, ``kronos plan --mode``);
affinity repair runs before either when asked; evacuate and drain empty
named hosts and have entry points of their own. This module holds names
only, so the CLI can offer them without importing the planner.
"""

from __future__ import annotations

from typing import Final

AFFINITY: Final = "affinity"
SPREAD: Final = "spread"
PACK: Final = "pack"
EVACUATE: Final = "evacuate"
DRAIN: Final = "drain"

#: every phase, in the order a plan can run them
PHASES: Final = (DRAIN, AFFINITY, SPREAD, PACK, EVACUATE)
#: what ``mode`` may be: how an aggregate is balanced
MODES: Final = (SPREAD, PACK)
#: phases that only empty hosts: destinations only gain, sources only lose (waves rely on it)
ONE_WAY: Final = (EVACUATE, DRAIN)
#: phases that balance: soft server-group rules bind them as hard ones, aggregate cooldowns stop them
BALANCING: Final = (AFFINITY, SPREAD, PACK)
