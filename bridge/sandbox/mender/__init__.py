"""Mender stand-in: deviceauth, useradm and inventory identity search, persisted in SQLite.

`create_app(data_dir)` builds the Flask application; its database is `data_dir/mender.sqlite`.
"""

from bridge.sandbox.mender.app import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, create_app

__all__ = ["DEFAULT_ADMIN_EMAIL", "DEFAULT_ADMIN_PASSWORD", "create_app"]
