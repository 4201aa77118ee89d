"""tether.asgi."""
