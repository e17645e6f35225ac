"""The HTTP API: ``custodiet serve``'s app factory, routes, the one error shape and the limits.

Importing this package loads nothing; ``custodiet.api.app.create_app`` builds the app (and
brings in FastAPI). ``custodiet.api.documents`` holds the JSON shapes of results, shared with
the CLI's ``--format json`` and the remote client.
"""
