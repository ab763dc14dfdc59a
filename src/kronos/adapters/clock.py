"""Times a command is given, against this machine's clock.

The core reads no clock: it judges cooldowns, quarantines and plan ages at
the time it is handed. A time ahead of the real one is no harmless
hypothesis when the result is kept: a plan dated in the future passes any
age check, and a state judged in the future drops every hold that ends
before then (a failed VM's quarantine among them) and starts cooldowns that
outlast the real ones. The commands that keep what they compute refuse such
a time here, with the clock skew two machines may fairly have.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kronos.core.convert import format_time

#: how far a given time may be ahead of this machine's clock (clocks drift apart)
CLOCK_SKEW_SECONDS = 300.0


def refuse_ahead(
    when: datetime, what: str, why: str, error: type[Exception], now: datetime | None = None
) -> None:
    """Raise ``error`` when ``when`` (``what`` names it) is more than :data:`CLOCK_SKEW_SECONDS`
    ahead of ``now``, this machine's clock unless given; ``why`` says what it would do."""
    ahead = (when - (now or datetime.now(UTC))).total_seconds()
    if ahead > CLOCK_SKEW_SECONDS:
        raise error(
            f"{what} {format_time(when)} is {ahead:.0f}s ahead of this machine's clock (more than "
            f"{CLOCK_SKEW_SECONDS:g}s of skew): {why}"
        )
