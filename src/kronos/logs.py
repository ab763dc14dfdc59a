"""Logging: the standard library's, configured once for the command line.

Everything Kronos and its libraries log goes through :mod:`logging`, so an
operator turns detail up the usual way: ``-v`` (info), ``-vv`` or ``--debug``
(debug; ``--debug`` also opens openstacksdk's and keystoneauth's HTTP
logs), ``--log-file`` instead of stderr. Every line passes
:func:`kronos.redact.redact` on its way out: keystoneauth's debug output
carries auth URLs and request bodies. The engine's JSON lines are records
of the ``kronos.events`` logger written by :class:`JsonFormatter`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from kronos.errors import KronosIOError
from kronos.redact import RedactingFormatter, redact_data
from kronos.terminal import echo, printable

#: the loggers ``--debug`` opens besides Kronos's own: the OpenStack SDK and its HTTP layer
LIBRARIES = ("openstack", "keystoneauth", "urllib3")
TEXT = "kronos: %(levelname)s: %(name)s: %(message)s"


def configure(verbose: int = 0, debug: bool = False, log_file: str | None = None) -> None:
    """Send log records at the asked level to stderr or ``log_file`` (appended), redacted."""
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    if log_file:
        try:
            handler: logging.Handler = LogFile(log_file, encoding="utf-8")
        except OSError as exc:
            raise KronosIOError(f"--log-file {log_file}: {exc.strerror or exc}") from None
        handler.setFormatter(TextFormatter("%(asctime)s " + TEXT))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter(TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries stay quiet unless --debug opens them
    logging.getLogger("kronos").setLevel(level)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.captureWarnings(True)


class LogFile(logging.FileHandler):
    """``--log-file``: a line the file refuses is said once on stderr, with the reason.

    logging's own handler prints a traceback for every record it loses (a full
    disk: one per line, for the rest of the run); the command itself goes on,
    as it would without a log.
    """

    lost = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):  # a record that does not format: logging's report of it
            super().handleError(record)
            return
        if self.lost:
            return
        self.lost = True
        reason = exc.strerror or exc
        echo(
            f"kronos: --log-file {self.baseFilename}: cannot write ({reason}); "
            "its lines are lost from here on",
            err=True,
        )


class TextFormatter(RedactingFormatter):
    """A log line as a person reads it: redacted, and a name's control characters shown, not obeyed."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC), ``event`` (the message) and the record's
    ``fields``, redacted (errors quote Nova's and Prometheus's words)."""

    def format(self, record: logging.LogRecord) -> str:
        at = getattr(record, "at", None) or datetime.fromtimestamp(record.created, UTC)
        fields: dict[str, Any] = getattr(record, "fields", {})
        ts = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as the results file's
        line = {"ts": ts, "event": record.getMessage(), **fields}
        return json.dumps(redact_data(line), sort_keys=True, default=str)
