"""Node schemas: /object_info and /object_info/{node_class}."""

from __future__ import annotations

import asyncio

from aiohttp import web

from graph.context import call_with_services

from ..state import state_of

routes = web.RouteTableDef()


@routes.get("/object_info")
async def object_info(request: web.Request) -> web.Response:
    # INPUT_TYPES may scan model folders: keep that off the event loop.
    state = state_of(request)
    info = await asyncio.to_thread(call_with_services, state.services, state.registry.object_info)
    return web.json_response(info)


@routes.get("/object_info/{node_class}")
async def object_info_for(request: web.Request) -> web.Response:
    state = state_of(request)
    name = request.match_info["node_class"]
    if name not in state.registry:
        return web.json_response({})
    info = await asyncio.to_thread(call_with_services, state.services, state.registry.node_info, name)
    return web.json_response({name: info})
