"""Mender stand-in: deviceauth, useradm, inventory, the device APIs of the Mender client and the
workflows between them (as Mender 4.1.3 behaves), persisted in SQLite.

`create_app(data_dir)` builds the Flask application; its database is `data_dir/mender.sqlite`.
"""

from bridge.sandbox.mender.app import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, create_app

__all__ = ["DEFAULT_ADMIN_EMAIL", "DEFAULT_ADMIN_PASSWORD", "create_app"]
