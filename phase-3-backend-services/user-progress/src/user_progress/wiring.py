"""User Progress's own parts: the progress gateway and the learner actor, on a sidecar client.

``Adapters`` are what tests swap (the progress gateway); Dapr stays real.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from learnflow_service_kit.actor_turns import ActorTurns
from learnflow_service_kit.app import connect_sidecar
from learnflow_service_kit.outbox import Outbox, run_relay
from learnflow_service_kit.service_app import HostedActor, ServiceParts
from learnflow_service_kit.sidecar_client import SidecarClient

from user_progress import delivery_routes, progress_routes
from user_progress.progress_actor import LearnerProgressActor
from user_progress.progress_gateway import DaprProgressGateway, ProgressGateway
from user_progress.settings import Settings


@dataclass(frozen=True)
class Adapters:
    progress: ProgressGateway | None = None


def wire(settings: Settings, dapr: SidecarClient, adapters: Adapters) -> ServiceParts:
    # The actors publish through a pool of their own: requests waiting for an actor's turn hold
    # connections of the main pool, and the turn they wait for must never wait for one of them.
    actor_sidecar = connect_sidecar(settings.dapr_http_port, settings.dapr_api_token)
    turns = ActorTurns()
    outbox = Outbox(actor_sidecar)

    def build_actor(ctx: ActorRuntimeContext, actor_id: ActorId) -> LearnerProgressActor:
        return LearnerProgressActor(
            ctx, actor_id, sidecar=actor_sidecar, outbox=outbox, turns=turns
        )

    progress = adapters.progress or DaprProgressGateway(
        dapr, settings.call_deadlines, settings.max_pending_updates_per_learner
    )
    return ServiceParts(
        routers=[progress_routes.router, delivery_routes.router],
        state={"progress": progress},  # read by progress_routes.gateway
        actors=[HostedActor(LearnerProgressActor, build_actor)],
        background=[partial(run_relay, outbox, settings.outbox_relay_seconds)],
        # Events still staged go out before the sidecar client closes.
        closers=[outbox.drain, actor_sidecar.aclose],
    )
