"""Server-rendered pages of the operator console (mounted by :func:`sync.api.app.create_app`)."""
