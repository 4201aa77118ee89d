"""picows echo and fan-out server, written with its listener API (see ``_common.py``)."""

from __future__ import annotations

from _common import FANOUT_PATH, FANOUT_PAYLOAD, HOST, MAX_MESSAGE, ready, run
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server


subscribers: set[WSTransport] = set()
FANOUT_PATH_BYTES = FANOUT_PATH.encode()


class Echo(WSListener):  # type: ignore[misc]
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)


class Fanout(WSListener):  # type: ignore[misc]
    def on_ws_connected(self, transport: WSTransport) -> None:
        subscribers.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        subscribers.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type == WSMsgType.TEXT:
            for _ in range(int(frame.get_payload_as_ascii_text())):
                for peer in subscribers:
                    peer.send(WSMsgType.BINARY, FANOUT_PAYLOAD)


def listener_factory(request: WSUpgradeRequest) -> WSListener:
    if request.path == FANOUT_PATH_BYTES:
        return Fanout()
    return Echo()


async def main(port: int) -> None:
    server = await ws_create_server(listener_factory, HOST, port, max_frame_size=MAX_MESSAGE)
    async with server:
        ready()
        await server.serve_forever()


if __name__ == "__main__":
    run(main, __doc__ or "")
