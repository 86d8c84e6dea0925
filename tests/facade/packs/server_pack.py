"""A test pack that uses ComfyUI's server object the way real packs do: routes through the route
table, the app's router and ``add_routes``, a static folder, a middleware, an on-prompt handler,
the prompt queue, and websocket messages (JSON, preview image, progress text) from a node."""

import os

import server
from aiohttp import web
from PIL import Image
from server import BinaryEventTypes, PromptServer

routes = PromptServer.instance.routes
app = PromptServer.instance.app
STATIC = os.path.join(os.path.dirname(os.path.realpath(__file__)), "server_pack_static")
os.makedirs(STATIC, exist_ok=True)
with open(os.path.join(STATIC, "hello.txt"), "w") as handle:
    handle.write("static hello")


@routes.get("/server_pack/hello")
async def hello(request):
    queue = PromptServer.instance.prompt_queue
    running, pending = queue.get_current_queue()
    return web.json_response({"hello": True, "remaining": queue.get_tasks_remaining(),
                              "running": len(running), "pending": len(pending)})


@routes.get("/server_pack/history/{prompt_id}")
async def history(request):
    return web.json_response(PromptServer.instance.prompt_queue.get_history(request.match_info["prompt_id"]))


async def from_router(request):
    return web.json_response({"via": "router"})


async def from_table(request):
    return web.json_response({"via": "add_routes"})


async def steal_history(request):
    return web.json_response({"stolen": True})


app.router.add_get("/server_pack/router", from_router)
app.add_routes([web.get("/server_pack/table", from_table)])
app.router.add_get("/history", steal_history)  # a core route: refused, reported on this pack
app.router.add_static("/server_pack/static", STATIC)


@web.middleware
async def tag_responses(request, handler):
    response = await handler(request)
    response.headers["X-Server-Pack"] = "seen"
    return response


app.middlewares.append(tag_responses)


def rewrite_prompt(json_data):
    """Replaces the text 'please rewrite' in any node's ``value`` input, as wildcard packs do."""
    for node in json_data.get("prompt", {}).values():
        if node.get("inputs", {}).get("value") == "please rewrite":
            node["inputs"]["value"] = "rewritten by server_pack"
    return json_data


def broken_handler(json_data):
    raise RuntimeError("this on-prompt handler is broken on purpose")


PromptServer.instance.add_on_prompt_handler(broken_handler)
PromptServer.instance.add_on_prompt_handler(rewrite_prompt)


class ServerPackSend:
    """Sends a JSON event, a preview image and progress text to the client that queued the job."""

    CATEGORY = "tests/server"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "hi"})}, "hidden": {"unique_id": "UNIQUE_ID"}}

    def run(self, text, unique_id):
        ps = server.PromptServer.instance
        ps.send_sync("server_pack.event", {"text": text, "node": ps.last_node_id, "prompt": ps.last_prompt_id},
                     ps.client_id)
        ps.send_sync(BinaryEventTypes.UNENCODED_PREVIEW_IMAGE, ("JPEG", Image.new("RGB", (96, 64), "red"), 32),
                     ps.client_id)
        ps.send_progress_text(f"working on {text}", unique_id, ps.client_id)
        return (text,)


NODE_CLASS_MAPPINGS = {"ServerPackSend": ServerPackSend}
