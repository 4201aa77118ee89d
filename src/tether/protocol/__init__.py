"""Sans-I/O RFC 6455 / RFC 7692 engine: bytes in, events and bytes out.

Nothing in this package imports asyncio, socket, ssl or threading.
"""
