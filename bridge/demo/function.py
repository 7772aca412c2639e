"""The Pub/Sub push entry the demo serves under functions-framework when `functions/main.py` is
not on disk (the package installed with `pip install .`, without its source tree): the same
`on_push` over the runtime, built at the first request instead of at import."""

from __future__ import annotations

import functools
import os

import functions_framework
from flask import Request, Response

from bridge import logs, webhook
from bridge.runtime import Runtime


@functools.cache
def _runtime() -> Runtime:
    runtime = Runtime.from_env(os.environ)
    logs.configure(redactor=runtime.redactor)
    return runtime


@functions_framework.http
def on_push(request: Request) -> Response:
    """A Pub/Sub push subscription's envelope (or the registry stand-in's direct delivery)."""
    return webhook.push_response(_runtime(), request)
