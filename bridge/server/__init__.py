"""The HTTP server behind `mender-bridge serve`: waitress with body and time limits, a graceful
drain on SIGTERM (`wsgi`), and one structured access-log line per request (`accesslog`).
"""
