"""A bare Flask "hello" app: the yardstick the benchmarks divide by."""

from flask import Flask


def create_app() -> Flask:
    """Return the smallest useful Flask app."""
    app = Flask(__name__)

    @app.route("/")
    def hello() -> str:
        return "hello"

    return app
