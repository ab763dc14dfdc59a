"""A small Prometheus HTTP API client: instant and range queries at explicit times.

Why not a client library: Kronos needs two endpoints (``/api/v1/query`` for
the scores at the snapshot's time, ``/api/v1/query_range`` for the history
that ends there), strict error handling and a retry policy of its own, and
already depends on requests. Every query names its evaluation time(s), so a
cycle reads one consistent instant and a recorded run can be reproduced.

Failures are sorted by who can fix them: a connection that cannot be made
after the retries is :class:`~kronos.errors.UnavailableError` (exit 69),
401/403 is :class:`~kronos.errors.PermissionDenied` (exit 77), and anything
wrong with one query (PromQL error, HTTP 5xx, a read timeout, a result that
is not the vector or matrix asked for) is :class:`QueryFailed`, which the scorer turns
into a data-health problem of that policy instead of stopping the cycle.
Messages show the URL without its user-info (:func:`kronos.redact.redact`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from kronos.errors import ConfigError, KronosError, NoInputError, PermissionDenied, UnavailableError
from kronos.redact import redact

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import requests

    from kronos.adapters.config import PrometheusConfig


#: the largest answer read: a range query of 100 000 VMs' profiles over 30 points is ~250 MB
MAX_ANSWER_BYTES = 1 << 30

#: the most of a bearer token file read: a token goes in one HTTP header (a JWT is a few KiB);
#: a log named by mistake, or a file that grew to gigabytes, is refused without reading it all
MAX_TOKEN_BYTES = 64 << 10


class QueryFailed(KronosError):
    """One query could not be answered; the message says what Prometheus said."""

    exit_code = 69


class Sample(NamedTuple):
    """One series of an instant vector (a tuple: a cycle reads 100 000 of them)."""

    labels: dict[str, str]
    value: float


class Series(NamedTuple):
    """One series of a range query: its labels, and its points' times and values, oldest first."""

    labels: dict[str, str]
    times: list[float]
    values: list[float]


class PrometheusClient:
    """Instant and range queries against one Prometheus, over an injected requests Session."""

    def __init__(
        self,
        url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        verify: bool | str = True,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import requests

        self.url = url.rstrip("/")
        #: the URL as messages show it: user-info (a password) blanked
        self.shown = redact(self.url)
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.verify = verify
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._auth = basic_auth
        self._sleep = sleep

    @classmethod
    def from_config(cls, cfg: PrometheusConfig, session: requests.Session | None = None) -> PrometheusClient:
        token = None
        if cfg.bearer_token_file:
            where = f"[prometheus] bearer_token_file = {cfg.bearer_token_file!r}"
            try:
                with Path(cfg.bearer_token_file).open("rb") as fh:
                    data = fh.read(MAX_TOKEN_BYTES + 1)
                if len(data) > MAX_TOKEN_BYTES:
                    raise ConfigError(f"{where}: more than {MAX_TOKEN_BYTES} bytes: not a token file")
                token = data.decode("utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:  # unreadable input: 66, as for any file
                why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise NoInputError(f"{where}: cannot read: {why}") from None
            if not token:
                raise ConfigError(f"{where}: the file is empty")
            if not _header_safe(token):  # requests would fail with the token in its message
                raise ConfigError(f"{where}: the token must be one line of ASCII (an HTTP header)")
        basic = (cfg.username, cfg.password.value) if cfg.username and cfg.password else None
        parts = urlsplit(cfg.url)
        for key, value in (("username", cfg.username), ("password", basic and basic[1])):
            if value and not _header_safe(value):
                raise ConfigError(f"[prometheus] {key}: must be one line of ASCII (sent in an HTTP header)")
        if not _header_safe(f"{parts.username or ''}{parts.password or ''}"):
            raise ConfigError(f"[prometheus] url = {redact(cfg.url)!r}: its user-info must be ASCII")
        return cls(
            cfg.url,
            session=session,
            timeout=cfg.timeout,
            retries=cfg.retries,
            backoff=cfg.retry_backoff,
            verify=cfg.ca_file or cfg.verify,
            bearer_token=token,
            basic_auth=basic,
        )

    def _post(self, path: str, data: dict[str, str]) -> requests.Response:
        import requests

        endpoint = f"{self.url}{path}"
        for attempt in range(self.retries + 1):
            try:
                return self.session.post(
                    endpoint,
                    data=data,
                    headers=self._headers,
                    auth=self._auth,
                    timeout=self.timeout,
                    verify=self.verify,
                    stream=True,  # the body is read by _body, within a size and a time
                )
            except (requests.exceptions.InvalidHeader, UnicodeError):  # their text holds the credential
                raise ConfigError(
                    f"Prometheus at {self.shown}: the credentials cannot be sent in an HTTP header "
                    "(check [prometheus] bearer_token_file, username, password)"
                ) from None
            except requests.exceptions.SSLError as exc:
                why = redact(str(exc))
                raise UnavailableError(f"Prometheus at {self.shown}: TLS verification failed: {why}") from exc
            except requests.exceptions.ReadTimeout as exc:
                raise QueryFailed(f"no answer within {self.timeout:g}s ([prometheus] timeout)") from exc
            except requests.exceptions.ConnectionError as exc:
                if attempt == self.retries:
                    raise UnavailableError(
                        f"Prometheus at {self.shown} unreachable after {attempt + 1} attempt(s): "
                        + redact(_root(exc))
                    ) from exc
                self._sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def query(self, expr: str, at: datetime) -> list[Sample]:
        """Evaluate ``expr`` at ``at``; the result must be an instant vector."""
        data = self._data("/api/v1/query", {"query": expr, "time": f"{at.timestamp():.3f}"}, "vector")
        return [_sample(item) for item in data.get("result") or ()]

    def query_range(self, expr: str, start: datetime, end: datetime, step: float) -> list[Series]:
        """Evaluate ``expr`` at ``start``, ``start + step``, ... up to ``end``: a range vector per series.

        Prometheus evaluates at exactly those times (it does not align
        ``start`` to the step), and leaves a time out of a series where the
        expression had no value there.
        """
        form = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": repr(float(step)),
        }
        data = self._data("/api/v1/query_range", form, "matrix")
        return [_series(item) for item in data.get("result") or ()]

    def _data(self, path: str, form: dict[str, str], result_type: str) -> dict[str, Any]:
        """The ``data`` of a successful answer of ``result_type``; every failure sorted as above."""
        log.debug("%s %s", path, form)
        resp = self._post(path, form)  # (its retries and backoff are not the answer's time)
        raw = self._body(resp, time.monotonic() + self.timeout)
        try:
            text = raw.decode(resp.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know (a proxy's page)
            text = raw.decode("utf-8", errors="replace")
        log.debug("answer: HTTP %s, %d bytes", resp.status_code, len(raw))
        if resp.status_code in (401, 403):
            raise PermissionDenied(
                f"Prometheus at {self.shown} answered {resp.status_code}: "
                "check [prometheus] bearer_token_file or username/password"
            )
        body = _json(raw)
        html = "html" in resp.headers.get("content-type", "")
        if not body and (resp.status_code in (200, 404) or (html and resp.status_code < 500)):
            # a path that is no Prometheus API (…/graph, a login page): every query would fail alike
            said = (text.strip().splitlines() or [resp.reason or ""])[0][:120]
            raise ConfigError(
                f"[prometheus] url = {self.shown!r}: {path} answered HTTP {resp.status_code} without "
                f"Prometheus's JSON ({redact(said)!r}): name Prometheus's root, e.g. http://HOST:9090"
            )
        if resp.status_code != 200 or body.get("status") != "success":
            kind = body.get("errorType") or "error"
            said = body.get("error") or (text.strip().splitlines() or [""])[0][:200] or resp.reason
            raise QueryFailed(redact(f"HTTP {resp.status_code} {kind}: {said}"))
        data = body.get("data")
        if not isinstance(data, dict):
            raise QueryFailed(f"the answer's data is not an object: {str(data)[:80]!r}")
        if data.get("resultType") != result_type:
            expected = "an instant vector" if result_type == "vector" else "a range vector (matrix)"
            raise QueryFailed(f"the query returned a {data.get('resultType')}; expected {expected}")
        result = data.get("result") or []
        if not (isinstance(result, list) and all(_labelled(item) for item in result)):
            raise QueryFailed(
                f"the answer's result is not a list of series with string labels: {str(result)[:80]!r}"
            )
        return dict(data)

    def _body(self, resp: requests.Response, deadline: float) -> bytes:
        """The answer's body, whole by ``deadline`` and at most :data:`MAX_ANSWER_BYTES`: requests'
        timeout bounds each read, so a server that trickles (or streams without end) held the
        engine, and filled its memory, for as long as it liked."""
        import requests
        import urllib3

        chunks, size = [], 0
        try:
            # read1: what has arrived, up to 64 KiB (iter_content waits for whole chunks, and a
            # trickle never fills one)
            while chunk := resp.raw.read1(1 << 16, decode_content=True):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise QueryFailed(f"the answer is over {MAX_ANSWER_BYTES} bytes: refused unread")
                if time.monotonic() > deadline:
                    raise QueryFailed(f"no whole answer within {self.timeout:g}s ([prometheus] timeout)")
                chunks.append(chunk)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # the connection broke or stalled mid-answer
            raise QueryFailed(f"the answer broke off: {redact(_root(exc))}") from None
        finally:
            resp.close()
        return b"".join(chunks)


def _header_safe(text: str) -> bool:
    """Whether ``text`` can be sent in an HTTP header: one line of Latin-1 (requests' rule)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\n" not in text and "\r" not in text


def _labelled(item: Any) -> bool:
    """A series as Prometheus sends one: an object whose ``metric`` maps names to strings."""
    labels = item.get("metric", {}) if isinstance(item, dict) else None
    return isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())


def _json(raw: bytes) -> dict[str, Any]:
    """The answer's JSON object, or {} for a body that is none (a page, a list, nesting deeper
    than Python recurses). JSON in bytes that are not UTF-8 is a garbled answer, not a wrong URL."""
    try:
        body = json.loads(raw)
    except UnicodeDecodeError as exc:
        if not _json(raw.decode("utf-8", errors="replace").encode()):
            return {}  # not JSON either: a page in another charset
        raise QueryFailed(
            f"the answer is JSON but not UTF-8 (byte {raw[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}): Prometheus sends UTF-8; is something between rewriting its answers?"
        ) from None
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def _sample(item: dict[str, Any]) -> Sample:
    """Prometheus sends label values as strings and the value as a string ("NaN", "+Inf" too)."""
    try:
        value = float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        value = math.nan
    return Sample(item.get("metric") or {}, value)


def _series(item: dict[str, Any]) -> Series:
    """A matrix entry: ``values`` is a list of ``[unix time, "value"]``; an unreadable value is NaN."""
    points = item.get("values") or ()
    labels = item.get("metric") or {}
    try:  # the common case in two comprehensions: 3.1 million points parse in about a second
        return Series(labels, [float(p[0]) for p in points], [float(p[1]) for p in points])
    except (IndexError, TypeError, ValueError):
        pass
    times, values = [], []
    for point in points:
        try:
            t = float(point[0])
        except (IndexError, TypeError, ValueError):
            continue  # no time: nowhere to put it
        try:
            value = float(point[1])
        except (IndexError, TypeError, ValueError):
            value = math.nan
        times.append(t)
        values.append(value)
    return Series(labels, times, values)


def _root(exc: BaseException) -> str:
    """The innermost cause, which is what an operator can act on ("Connection refused")."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc)
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text
