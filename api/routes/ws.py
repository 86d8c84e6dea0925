"""The realtime channel: /ws?clientId=<sid>."""

from __future__ import annotations

import json
import uuid

from aiohttp import WSMsgType, web

from ..state import state_of

routes = web.RouteTableDef()

#: What this server announces in answer to a client's feature_flags hello.
SERVER_FEATURES = {"supports_preview_metadata": True}


@routes.get("/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    state = state_of(request)
    socket = web.WebSocketResponse(heartbeat=30, max_msg_size=1 << 20)
    await socket.prepare(request)
    sid = request.query.get("clientId") or uuid.uuid4().hex
    client = state.hub.add(sid, socket)
    try:
        state.hub.send_json_to(client, "status", {**state.worker.status_message(), "sid": sid})
        for job, node in state.worker.running():
            if job.client_id == sid and node is not None:
                state.hub.send_json_to(client, "executing", {"node": node, "display_node": node,
                                                             "prompt_id": job.prompt_id})
        first = True
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            if first:
                first = False
                try:
                    hello = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(hello, dict) and hello.get("type") == "feature_flags":
                    flags = hello.get("data")
                    client.feature_flags = flags if isinstance(flags, dict) else {}
                    features = {**SERVER_FEATURES, "max_upload_size": state.options.max_upload_size}
                    state.hub.send_json_to(client, "feature_flags", features)
    finally:
        await state.hub.remove(client)
    return socket
