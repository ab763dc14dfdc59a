"""The one rule that keeps secrets out of what Kronos prints, logs and writes.

Secrets reach text in two shapes: a URL whose user-info carries a password
(``http://user:PASS@prom:9090``), and a setting whose name says it is secret
(``password = ...``, ``"token": "..."``, ``Authorization: Bearer ...``).
:func:`redact` blanks the value of both, wherever the text came from — our
own messages, a library's exception, a response body — so every sink
(the CLI's error line, ``check-config``, ``scores``, the engine log, the
results file, the snapshot's ``source``) calls it once before writing.

Values are blanked, keys and the text's shape are kept: a JSON line stays
JSON, a message still says *which* setting was wrong. The kronos.conf loader
also never puts a secret value into a message in the first place
(:class:`~kronos.adapters.config.Secret`); this is the second line.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

#: a setting is secret when its name contains one of these (and it does not name a file or an id)
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential", "api_key",
                "access_key", "private_key", "auth_key")  # fmt: skip

_WORD = "|".join(re.escape(w) for w in SECRET_WORDS).replace("_", "[_-]?")
#: a secret-looking name, unless it names a file, a path, an id, a type or a URL
_NAME = (
    r"[\w.$-]*(?:" + _WORD + r")[\w.-]*?"
    r"(?<![_-]file)(?<![_-]path)(?<![_-]id)(?<![_-]type)(?<![_-]url)"
)
#: one character of an unquoted value: a backslash escape counts (JSON text: \u00e9), a quote ends it
_ESCAPE = r"\\[^\"'\s]"
#: user-info of a URL: everything between "scheme://" and the last "@" before the host (a
#: password with an unescaped "@" is all user-info, as URL parsers read it)
_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<info>(?:[^\s/?#'\"\\<>]|" + _ESCAPE + r")+)@"
)
#: NAME = value, NAME=value, "NAME": "value", 'NAME': value; after a spaced " = " (INI style)
#: the value runs to the end of the line, else to a delimiter
_KEYED = re.compile(
    r"(?P<key>(?<![\w.$-])(?P<oq>[\"'])?" + _NAME + ")"
    r"(?P<sep>(?(oq)(?P=oq)\s*[:=]\s*|(?:(?P<ini>[ \t]+=[ \t]+)|\s*=\s*)))"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
    r"|(?(ini)(?:[^\n\"\\]|" + _ESCAPE + r")+|(?:[^\s,;&'\"\\)}\]]|" + _ESCAPE + r")+))",
    re.IGNORECASE,
)
#: HTTP credentials headers and schemes, as requests and keystoneauth print them
_HEADER = re.compile(
    r"(?P<key>\b(?:authorization|x-auth-token|x-subject-token|x-service-token)[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>(?:(?:bearer|basic|token)\s+)?(?:[^\s,;'\"\\)}\]]|" + _ESCAPE + r")+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{6,})", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a setting or field called ``name`` holds a secret (``password``, ``os_token``, ...)."""
    return re.fullmatch(_NAME, name, re.IGNORECASE) is not None


def _keep_quotes(m: re.Match[str]) -> str:
    value = m.group("value")
    quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 and value[-1] == value[0] else ""
    return f"{m.group('key')}{m.group('sep')}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """``text`` with URL user-info and the values of secret-named settings replaced by ``***``."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _HEADER.sub(lambda m: f"{m.group('key')}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group('key')}{MASK}", text)
    return _KEYED.sub(_keep_quotes, text)


def redact_data(data: Any) -> Any:
    """``data`` (JSON-like: dicts, lists, strings) with :func:`redact` applied to every string,
    and the value of every secret-named key blanked; for documents written as JSON.
    """
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {
            k: MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "") else redact_data(v)
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact_data(x) for x in data]
    return data


class RedactingFormatter(logging.Formatter):
    """Library log records (keystoneauth warns with the auth URL in it) pass the same rule."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
