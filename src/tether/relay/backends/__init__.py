"""tether.relay.backends."""
