"""tether.relay."""
