"""Node schemas: /object_info and /object_info/{node_class}."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..state import state_of

routes = web.RouteTableDef()


@routes.get("/object_info")
async def object_info(request: web.Request) -> web.Response:
    # INPUT_TYPES may scan model folders: keep that off the event loop.
    info = await asyncio.to_thread(state_of(request).registry.object_info)
    return web.json_response(info)


@routes.get("/object_info/{node_class}")
async def object_info_for(request: web.Request) -> web.Response:
    registry = state_of(request).registry
    name = request.match_info["node_class"]
    if name not in registry:
        return web.json_response({})
    info = await asyncio.to_thread(registry.node_info, name)
    return web.json_response({name: info})
