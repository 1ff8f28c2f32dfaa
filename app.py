"""Provisio: the automatic service activation server. `flask --app app run`."""

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

import cli
import errors
import extensions
import headers
import request_log
from blueprints import admin, api, auth, console, hooks, imports, mobile, ops
from blueprints.forms_util import refuse_nul_characters
from blueprints.routing import IdConverter
from config import Config, load_secrets


class Provisio(Flask):
    """Flask, asking once per function whether it is a coroutine function.

    Flask's ensure_sync asks inspect on every call, and it calls ensure_sync for every hook and view
    of every request: ten times for a link page, about a fiftieth of that page's instructions.
    """

    def ensure_sync(self, func: Callable) -> Callable:
        try:
            is_async = _is_coroutine_function(func)
        except TypeError:  # an unhashable callable: asked as Flask asks
            is_async = inspect.iscoroutinefunction(func)
        return self.async_to_sync(func) if is_async else func


# Bounded: a request's after_this_request callbacks are new functions each time.
_is_coroutine_function = functools.lru_cache(maxsize=1024)(inspect.iscoroutinefunction)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the application."""
    app = Provisio(__name__, instance_relative_config=True)
    app.url_map.converters["int"] = IdConverter  # before any route: every <int:id> stops at the largest id
    app.config.from_object(Config)
    if config is not None:
        app.config.from_mapping(config)
    load_secrets(app)
    extensions.init_app(app)
    request_log.init_app(app)  # first: even a request refused early gets its line
    for blueprint in (auth.bp, console.bp, imports.bp, admin.bp, mobile.bp, api.bp, api.snom_bp, hooks.bp,
                      ops.bp):
        app.register_blueprint(blueprint)
    app.before_request(refuse_nul_characters)
    errors.init_app(app)
    headers.init_app(app)
    cli.init_app(app)
    return app
