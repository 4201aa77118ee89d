def apply_mask(
    data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, offset: int = 0
) -> bytes: ...
def parse_messages(
    data: bytes | bytearray | memoryview,
    pos: int,
    end: int,
    masked: bool,
    limit: int,
    events: list[str | bytes],
) -> int: ...
