"""WebSocket extensions (RFC 6455 section 9); permessage-deflate is the one built in."""
