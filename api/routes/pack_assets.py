"""What node packs contribute to a front end besides nodes: translations (/i18n) and subgraph
blueprints (/global_subgraphs), read from each loaded pack's folder as ComfyUI reads them."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from aiohttp import web

from graph.folders import UnsafePathError, safe_join

from ..state import state_of

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: locales/<lang>/<file>.json files merged under the file's name; main.json's keys go at the top.
LOCALE_SECTIONS = ("nodeDefs", "commands", "settings")
BLUEPRINT_FOLDER = "subgraphs"


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
    return value if isinstance(value, dict) else {}


def _merge(into: dict, more: dict) -> dict:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _pack_folders(state) -> list[tuple[str, Path]]:
    return sorted((pack.name, Path(pack.path)) for pack in state.packs if pack.loaded and pack.path)


def translations(state) -> dict:
    """``{lang: {...main.json, "nodeDefs": …, "commands": …, "settings": …}}`` over every pack."""
    merged: dict[str, dict] = {}
    for _, folder in _pack_folders(state):
        locales = folder / "locales"
        if not locales.is_dir():
            continue
        for lang in sorted(p for p in locales.iterdir() if p.is_dir()):
            strings = _read_json(lang / "main.json")
            for section in LOCALE_SECTIONS:
                if found := _read_json(lang / f"{section}.json"):
                    strings[section] = found
            if strings:
                _merge(merged.setdefault(lang.name, {}), strings)
    return merged


def _blueprints(state) -> dict[str, tuple[str, Path]]:
    """Blueprint id → (pack, file): ``<pack>/subgraphs/<name>.json``, id ``<pack>/<name>``."""
    found = {}
    for pack, folder in _pack_folders(state):
        for path in sorted((folder / BLUEPRINT_FOLDER).glob("*.json")) if (folder / BLUEPRINT_FOLDER).is_dir() else ():
            found[f"{pack}/{path.stem}"] = (pack, path)
    return found


@routes.get("/i18n")
async def i18n(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(translations, state_of(request)))


@routes.get("/global_subgraphs")
async def global_subgraphs(request: web.Request) -> web.Response:
    """The packs' subgraph blueprints by id, their content fetched one at a time."""
    found = await asyncio.to_thread(_blueprints, state_of(request))
    return web.json_response({bid: {"source": "custom_node", "name": path.stem, "info": {"node_pack": pack}}
                              for bid, (pack, path) in found.items()})


@routes.get("/global_subgraphs/{blueprint:.+}")
async def global_subgraph(request: web.Request) -> web.Response:
    state = state_of(request)
    found = (await asyncio.to_thread(_blueprints, state)).get(request.match_info["blueprint"])
    if found is None:
        raise web.HTTPNotFound(text="no such subgraph blueprint")
    pack, path = found
    try:  # the listing came from the folder; the file must still lie inside it
        safe_join(path.parent, path.name)
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except (OSError, UnsafePathError) as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    return web.json_response({"source": "custom_node", "name": path.stem, "info": {"node_pack": pack}, "data": text})
