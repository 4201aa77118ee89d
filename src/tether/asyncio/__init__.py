"""asyncio runtime: connections, server and client over the sans-I/O engine."""
