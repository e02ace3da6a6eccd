"""Logging for every Sheaf entry point (aggregator run/worker/operator, prover): one stderr handler on
the root logger, as JSON lines or as text.

JSON (`--log-format json`, `SHEAF_LOG_FORMAT=json`): one object per line with the fixed fields
`ts` (UTC, ISO 8601), `level`, `logger`, `msg`, then the record's `extra=` fields (proof_id, batch_id,
domain, code, ...) and `exc` (the traceback) when there is one. Text: the same fields on one
readable line.

structlog's stdlib integration renders the records (its ProcessorFormatter, ExtraAdder and
JSONRenderer) rather than a hand-written formatter: the code keeps logging through stdlib
`logging.getLogger(...)`, so the libraries' records (web3, grpc, procrastinate) come out in the
same shape as ours, with no call site written against structlog's API.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")
LOG_FORMAT_ENV = "SHEAF_LOG_FORMAT"

# chatty at INFO; their warnings still come through
_NOISY = ("web3", "urllib3", "asyncio", "aiohttp.access")


def log_format(flag: str | None, default: LogFormat) -> LogFormat:
    """The format to use: the --log-format flag, else $SHEAF_LOG_FORMAT, else `default`. A bad
    value raises ValueError naming the variable and the choices."""
    value = flag or os.environ.get(LOG_FORMAT_ENV, "") or default
    if value not in LOG_FORMATS:
        raise ValueError(f"${LOG_FORMAT_ENV}={value!r}: must be one of {', '.join(LOG_FORMATS)}")
    return value


def add_log_format_argument(p: argparse.ArgumentParser, default: LogFormat, *, sub: bool = False) -> None:
    """--log-format on `p`. On a subcommand's parser (`sub`) an absent flag leaves the main parser's
    value alone, so `aggregator --log-format text run` and `aggregator run --log-format text` agree."""
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=argparse.SUPPRESS if sub else None,
        help=f"log lines on stderr: json (one object per line) or text (default ${LOG_FORMAT_ENV}, "
        f"else {default})",
    )


def _level_name(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    if isinstance(record, logging.LogRecord):
        event["level"] = record.levelname  # INFO, WARNING, ...: as operators grep for them
        event["logger"] = record.name
    return event


def _fixed_fields_first(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """ts, level, logger, msg, then the extras in the order given."""
    head = {k: event.pop(k) for k in ("ts", "level", "logger", "msg") if k in event}
    exc = event.pop("exception", None)
    out: EventDict = {**head, **event}
    if exc:
        out["exc"] = exc
    return out


def formatter(fmt: LogFormat) -> logging.Formatter:
    pre_chain: list[Processor] = [
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _level_name,
        structlog.stdlib.ExtraAdder(),  # every `extra=` key of the record
    ]
    if fmt == "json":
        tail: list[Processor] = [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg"),
            _fixed_fields_first,
            structlog.processors.JSONRenderer(),
        ]
    else:
        tail = [
            structlog.dev.ConsoleRenderer(
                colors=False,
                pad_event_to=0,
                timestamp_key="ts",
                exception_formatter=structlog.dev.plain_traceback,
            )
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )


def setup_logging(level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Replace the root logger's handlers with one stderr handler in `fmt` at `level`."""
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [h]
    root.setLevel(level.upper())
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
