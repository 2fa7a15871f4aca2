"""The floors: what the stack's raw pieces cost when called directly, measured in the same run
and at the same concurrency as the scenarios compared with them. A scenario's ratio to its
floor is the price of the service's own work on top of the primitives it cannot avoid."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from learnflow_contracts.names import PUBSUB, STATESTORE, USER_PROGRESS_APP_ID

from learnflow_stack.bench.load import ScenarioResult, expect, measure
from learnflow_stack.bench.requests import Target

FLOOR_REQUESTS = 300  # per floor and concurrency, at --requests 1.0
BULK_KEYS = 20  # a bulk GET as wide as the listed page of lessons
FLOOR_TOPIC = "bench-floor"  # nobody subscribes: the publish alone is measured

STATE_GET = "daprd state GET, one key"
BULK_GET = f"daprd bulk state GET, {BULK_KEYS} keys"
TRANSACTION = "daprd state transaction, one upsert"
PUBLISH = "daprd publish to Kafka"
INVOKE = "daprd service invocation -> /healthz"
ACTOR = "daprd actor call (GetStatus, state cached)"
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
        # The learner whose actor the actor floor calls: activated, its state cached.
        await self.lessons_assigned(self._actor_learner)

    def _key(self, index: int) -> str:
        return self.id_for("floor-key", index)

    @property
    def _actor_learner(self) -> str:
        return self.id_for("floor", "learner")

    def _calls(self) -> dict[str, Callable[[int], Awaitable[None]]]:
        agent, progress = self.agent.sidecar, self.progress.sidecar
        state_url = f"{agent.http_url}/v1.0/state/{STATESTORE}"
        actor_url = (
            f"{progress.http_url}/v1.0/actors/LearnerProgressActor/{self._actor_learner}"
            "/method/GetStatus"
        )

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
            expect(await self.client.post(actor_url, headers=progress.api_headers), 200)

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
