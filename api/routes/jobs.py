"""ComfyUI's unified jobs list: /jobs and /jobs/{prompt_id} (graph.job_views has the shape)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from graph import job_views

from ..state import state_of

routes = web.RouteTableDef()

MAX_LIMIT = 1000


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


def _all_jobs(state, wanted: set[str]) -> list[dict]:
    jobs: list[dict] = []
    if job_views.IN_PROGRESS in wanted:
        jobs += [job_views.queued_job(item, job_views.IN_PROGRESS) for item in state.worker.running_items()]
    if job_views.PENDING in wanted:
        jobs += [job_views.queued_job(job.queue_item(), job_views.PENDING) for job in state.store.pending()]
    if wanted & {job_views.COMPLETED, job_views.FAILED, job_views.CANCELLED}:
        jobs += [job for job in state.finished_jobs.records(state.store) if job["status"] in wanted]
    return jobs


@routes.get("/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    try:
        wanted = job_views.parse_statuses(request.query.get("status"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    limit = _int(request, "limit", None)
    offset = _int(request, "offset", 0)
    if limit is not None and not 0 <= limit <= MAX_LIMIT:
        raise web.HTTPBadRequest(text=f"limit must lie in 0…{MAX_LIMIT}")
    sort_by = request.query.get("sort_by", "create_time")
    if sort_by not in ("create_time", "execution_duration"):
        raise web.HTTPBadRequest(text="sort_by must be create_time or execution_duration")
    state = state_of(request)
    jobs = await asyncio.to_thread(_all_jobs, state, wanted)
    workflow_id = request.query.get("workflow_id")
    if workflow_id:
        jobs = [job for job in jobs if job.get("workflow_id") == workflow_id]
    return web.json_response(job_views.page(jobs, sort_by=sort_by, descending=request.query.get("sort_order") != "asc",
                                            offset=offset or 0, limit=limit))


def _one_job(state, prompt_id: str) -> dict | None:
    entry = state.store.history_entry(prompt_id)
    if entry is not None:
        return job_views.finished_job(prompt_id, entry, detail=True)
    for item in state.worker.running_items():
        if item[1] == prompt_id:
            return job_views.queued_job(item, job_views.IN_PROGRESS, detail=True)
    for job in state.store.pending():
        if job.prompt_id == prompt_id:
            return job_views.queued_job(job.queue_item(), job_views.PENDING, detail=True)
    return None


@routes.get("/jobs/{prompt_id}")
async def get_job(request: web.Request) -> web.Response:
    job = await asyncio.to_thread(_one_job, state_of(request), request.match_info["prompt_id"])
    if job is None:
        raise web.HTTPNotFound(text="no such job")
    return web.json_response(job)
