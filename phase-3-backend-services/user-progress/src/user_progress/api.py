"""User Progress's HTTP routes, in one router: the public ones (``progress_routes``) and the one
daprd delivers ``lesson-generated`` to (``delivery_routes``). Dapr's own routes (actors,
subscriptions list) are added by the app."""

from __future__ import annotations

from fastapi import APIRouter

from user_progress import delivery_routes, progress_routes

router = APIRouter()
router.include_router(progress_routes.router)
router.include_router(delivery_routes.router)
