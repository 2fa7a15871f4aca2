"""A tiny OpenAI-compatible chat-completions server for integration tests and benchmarks.

It answers ``POST /v1/chat/completions`` with a valid, deterministic lesson about the topic
found between ``<learner_topic>`` tags, in the ``chat.completion`` format with usage, and it
can be switched into failure modes to exercise the Course Agent's error handling:

    GET  /stub/calls   -> {"calls": n}            chat requests received since the last reset
    POST /stub/reset                               calls = 0, mode "ok", start-up delay
    POST /stub/mode    {"mode": ..., "delay_seconds": x}   either field optional

Modes: ok, rate_limit (429 + Retry-After), server_error (500), hang (no answer until reset or
a mode change), invalid (a lesson that breaks the lesson rules, every time) and
json_object_only (400 for json_schema output, like servers without structured outputs).

Run: ``python -m learnflow_stack.llm_stub --port 8399 --delay 0.2`` (binds 127.0.0.1 only).
"""

import argparse
import asyncio
import html
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from learnflow_stack.ports import LOOPBACK, free_port
from learnflow_stack.process import ManagedProcess

Mode = Literal["ok", "rate_limit", "server_error", "hang", "invalid", "json_object_only"]

_TOPIC = re.compile(r"<learner_topic>(.*?)</learner_topic>", re.DOTALL)
_HANG_LIMIT_SECONDS = 300.0  # a hung request still ends, so a forgotten stub cannot block forever


class ModeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = None
    delay_seconds: float | None = Field(default=None, ge=0, le=60)


@dataclass
class _StubState:
    initial_delay_seconds: float
    delay_seconds: float
    mode: Mode = "ok"
    calls: int = 0
    # Set to let every hanging request go; replaced by a fresh event after each release.
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def release_hung_requests(self) -> None:
        self.release.set()
        self.release = asyncio.Event()


def stub_lesson(topic: str) -> dict[str, Any]:
    """A small lesson that passes the Course Agent's lesson rules."""
    return {
        "title": f"An introduction to {topic}",
        "summary": f"What {topic} is, how it works, and how to use it in simple cases.",
        "objectives": [
            {"id": "O1", "text": f"Explain what {topic} is."},
            {"id": "O2", "text": f"Apply {topic} to a simple example."},
        ],
        "prior_knowledge": ["Reading short technical texts."],
        "key_points": [f"{topic} has a precise meaning.", f"{topic} is learnt by practice."],
        "misconceptions": [
            {
                "misconception": f"{topic} is only for experts.",
                "correction": "Beginners can use it with a few simple rules.",
            }
        ],
        "sections": [
            {
                "heading": f"What {topic} is",
                "body_markdown": f"**{topic}** explained in plain words, with one example.",
                "objective_ids": ["O1"],
                "minutes": 10,
            },
            {
                "heading": f"Using {topic}",
                "body_markdown": f"A worked example that applies {topic} step by step.",
                "objective_ids": ["O2"],
                "minutes": 15,
            },
        ],
        "exercises": [
            {
                "prompt": f"Use {topic} on a new example of your own.",
                "objective_ids": ["O2"],
                "solution": "Follow the steps of the worked example in order.",
            }
        ],
        "quiz": [
            {
                "question": f"Which statement about {topic} is true?",
                "options": ["It has a precise meaning.", "It cannot be learnt.", "It is a myth."],
                "answer_index": 0,
                "objective_ids": ["O1"],
                "explanation": "The lesson defined it precisely.",
            },
            {
                "question": f"What is the best way to get better at {topic}?",
                "options": ["Practice on examples.", "Avoid examples."],
                "answer_index": 0,
                "objective_ids": ["O2"],
                "explanation": "Practice is how the lesson builds the skill.",
            },
        ],
    }


def _invalid_lesson(topic: str) -> dict[str, Any]:
    """Schema-shaped but rule-breaking: a quiz answer that points past its options."""
    lesson = stub_lesson(topic)
    lesson["quiz"][0]["answer_index"] = 7
    return lesson


def _topic_of(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and (match := _TOPIC.search(content)):
            return html.unescape(match.group(1)).strip() or "the topic"
    return "the topic"


def _error(
    status: int,
    message: str,
    kind: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _completion(
    number: int, model: str, messages: list[dict[str, Any]], content: str
) -> JSONResponse:
    prompt_chars = sum(len(str(message.get("content", ""))) for message in messages)
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, len(content) // 4 + 1
    return JSONResponse(
        {
            "id": f"chatcmpl-stub-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def create_stub_app(delay_seconds: float = 0.0) -> FastAPI:
    state = _StubState(initial_delay_seconds=delay_seconds, delay_seconds=delay_seconds)
    app = FastAPI(title="LearnFlow LLM stub")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: dict[str, Any]) -> JSONResponse:
        state.calls += 1
        number = state.calls
        if state.mode == "hang":
            release = state.release
            try:
                await asyncio.wait_for(release.wait(), timeout=_HANG_LIMIT_SECONDS)
            except TimeoutError:
                return _error(504, "stub hung for too long", "timeout")
        if state.delay_seconds:
            await asyncio.sleep(state.delay_seconds)
        if state.mode == "rate_limit":
            return _error(
                429, "rate limited by the stub", "rate_limit", headers={"Retry-After": "1"}
            )
        if state.mode == "server_error":
            return _error(500, "stub server error", "server_error")
        response_format = body.get("response_format") or {}
        if state.mode == "json_object_only" and response_format.get("type") == "json_schema":
            return _error(
                400,
                "response_format of type json_schema is not supported",
                "invalid_request_error",
                param="response_format",
            )
        messages = body.get("messages") or []
        topic = _topic_of(messages)
        lesson = _invalid_lesson(topic) if state.mode == "invalid" else stub_lesson(topic)
        content = json.dumps(lesson, ensure_ascii=False)
        return _completion(number, str(body.get("model", "stub")), messages, content)

    @app.get("/stub/calls")
    async def calls() -> dict[str, int]:
        return {"calls": state.calls}

    @app.post("/stub/reset")
    async def reset() -> dict[str, Any]:
        state.calls = 0
        state.mode = "ok"
        state.delay_seconds = state.initial_delay_seconds
        state.release_hung_requests()
        return {"mode": state.mode, "delay_seconds": state.delay_seconds}

    @app.post("/stub/mode")
    async def change_mode(change: ModeChange) -> dict[str, Any]:
        if change.mode is not None:
            state.mode = change.mode
            state.release_hung_requests()
        if change.delay_seconds is not None:
            state.delay_seconds = change.delay_seconds
        return {"mode": state.mode, "delay_seconds": state.delay_seconds}

    return app


def start_stub_process(delay_seconds: float, log_path: Path) -> tuple[str, ManagedProcess]:
    """Run the stub as a child process on a free loopback port; returns (base URL, process)."""
    port = free_port()
    process = ManagedProcess(
        name="llm-stub",
        argv=[
            sys.executable,
            "-m",
            "learnflow_stack.llm_stub",
            "--port",
            str(port),
            "--delay",
            str(delay_seconds),
        ],
        log_path=log_path,
    )
    url = f"http://{LOOPBACK}:{port}"
    process.start()
    process.wait_ready(
        lambda: httpx.get(f"{url}/stub/calls", timeout=1).is_success, 30, "/stub/calls"
    )
    return url, process


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_stub_app(args.delay),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
