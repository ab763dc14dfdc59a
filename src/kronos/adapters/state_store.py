"""Where ``kronos state`` reads and changes the state: a file, or the engines' shared etcd key.

Why one place: an operator releases a quarantined VM, or looks at what is
in cooldown, wherever the engines keep it. With ``--state FILE`` that is a
state file; with ``--config kronos.conf`` it is where that configuration's
engines keep theirs: the ``[coordination]`` backend's etcd key when one is
set (several engines share it, and a change is a compare-and-swap, as the
engines' own), else ``[engine] state_file``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from kronos.adapters.journal import FileState, SharedState
from kronos.errors import ConfigError


@contextlib.contextmanager
def open_state(
    state_path: str | None, config_path: str | None
) -> Iterator[tuple[SharedState, dict[str, Any]]]:
    """The state ``--state`` names, or the one ``--config``'s engines keep (module docstring),
    with the options those engines turn an outcome into a hold with (``[engine]``
    ``instance_cooldown``, ``instance_quarantine_seconds``; none for a file)."""
    if config_path is None:
        yield FileState(state_path if state_path is not None else "state.json"), {}
        return
    from kronos.adapters import coordination
    from kronos.adapters.config import load_config
    from kronos.adapters.journal import state_options

    config = load_config(config_path, os.environ, require_scope=False, policies=False)
    options = state_options(config)
    if not config.coordination.backend_url:
        path = config.path(config.engine.state_file)
        if path is None:
            raise ConfigError(f"{config_path}: [engine] state_file is empty (and no [coordination])")
        yield FileState(str(path)), options
        return
    with coordination.shared_state(config.coordination) as store:
        yield store, options
