"""The floors: what the stack's raw pieces cost when called directly, measured in the same run
and at the same concurrency as the scenarios compared with them. A scenario's ratio to its
floor is the price of the service's own work on top of the primitives it cannot avoid."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from learnflow_contracts.names import PUBSUB, STATESTORE, USER_PROGRESS_APP_ID

from learnflow_stack.bench.load import ScenarioResult, expect, measure
from learnflow_stack.bench.requests import Target, quiz_update

FLOOR_REQUESTS = 300  # per floor and concurrency, at --requests 1.0
BULK_KEYS = 20  # a bulk GET as wide as the listed page of lessons
FLOOR_TOPIC = "bench-floor"  # nobody subscribes: the publish alone is measured

STATE_GET = "daprd state GET, one key"
BULK_GET = f"daprd bulk state GET, {BULK_KEYS} keys"
TRANSACTION = "daprd state transaction, one upsert"
PUBLISH = "daprd publish to Kafka"
INVOKE = "daprd service invocation -> /healthz"
ACTOR = "daprd actor call (ApplyUpdate, a duplicate)"
FRAMEWORK = "FastAPI app alone: GET /healthz"


class FloorWorkloads(Target):
    """Each floor as a call; ``run`` measures them all at one concurrency."""

    async def _prepare(self) -> None:
        values = [{"key": self._key(i), "value": {"n": i}} for i in range(BULK_KEYS)]
        sidecar = self.agent.sidecar
        expect(
            await self.client.post(
                f"{sidecar.http_url}/v1.0/state/{STATESTORE}",
                json=values,
                headers=sidecar.api_headers,
            ),
            204,
        )
        # The actor floor repeats an update its actor has applied: activated, its document
        # cached, nothing written again (the cheapest turn an update can take).
        await self._call_actor()

    def _key(self, index: int) -> str:
        return self.id_for("floor-key", index)

    async def _call_actor(self) -> None:
        progress = self.progress.sidecar
        learner = self.id_for("floor", "learner")
        url = f"{progress.http_url}/v1.0/actors/LearnerProgressActor/{learner}/method/ApplyUpdate"
        update = quiz_update(learner, self.id_for("floor", "lesson"), learner, score=50)
        call = {"update": update, "not_after": time.time() + 3600}
        expect(await self.client.post(url, json=call, headers=progress.api_headers), 200)

    def _calls(self) -> dict[str, Callable[[int], Awaitable[None]]]:
        agent = self.agent.sidecar
        state_url = f"{agent.http_url}/v1.0/state/{STATESTORE}"

        async def state_get(_: int) -> None:
            url = f"{state_url}/{self._key(0)}"
            expect(await self.client.get(url, headers=agent.api_headers), 200)

        async def bulk_get(_: int) -> None:
            keys = [self._key(i) for i in range(BULK_KEYS)]
            body = {"keys": keys, "parallelism": 8}
            response = await self.client.post(
                f"{state_url}/bulk", json=body, headers=agent.api_headers
            )
            expect(response, 200)

        async def transaction(index: int) -> None:
            operation = {"operation": "upsert", "request": {"key": self._key(index), "value": 1}}
            response = await self.client.post(
                f"{state_url}/transaction",
                json={"operations": [operation]},
                headers=agent.api_headers,
            )
            expect(response, 204)

        async def publish(index: int) -> None:
            response = await self.client.post(
                f"{agent.http_url}/v1.0/publish/{PUBSUB}/{FLOOR_TOPIC}",
                json={"n": index},
                headers=agent.api_headers,
            )
            expect(response, 204)

        async def invoke(_: int) -> None:
            url = f"{agent.http_url}/v1.0/invoke/{USER_PROGRESS_APP_ID}/method/healthz"
            expect(await self.client.get(url, headers=agent.api_headers), 200)

        async def actor(_: int) -> None:
            await self._call_actor()

        async def framework(_: int) -> None:
            expect(await self.client.get(f"{self.progress.url}/healthz"), 200)

        return {
            STATE_GET: state_get,
            BULK_GET: bulk_get,
            TRANSACTION: transaction,
            PUBLISH: publish,
            INVOKE: invoke,
            ACTOR: actor,
            FRAMEWORK: framework,
        }

    async def run(self, concurrency: int) -> list[ScenarioResult]:
        await self._prepare()
        return [
            await measure(
                name,
                call,
                requests=self.config.count(FLOOR_REQUESTS),
                concurrency=concurrency,
                deadline=self.deadline(),
                meter=self.meter,
            )
            for name, call in self._calls().items()
        ]
