import hashlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import tiktoken
import tiktoken_ext.openai_public
from course_agent.domain.chat import ChatMessage
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt
from course_agent.domain.token_budget import PromptOverBudget
from course_agent.tokenizer import (
    RANK_FILE_OF_ENCODING,
    TokenCounter,
    encoding_for_model,
    seed_tiktoken_cache,
    tiktoken_cache_dir,
)
from learnflow_contracts.progress import ProgressProjectionV1
from tiktoken.load import read_file_cached

Render = Callable[..., RenderedPrompt]
MakeProjection = Callable[..., ProgressProjectionV1]


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_rank_file_identity_matches_tiktokens_own(encoding: str) -> None:
    rank_file = RANK_FILE_OF_ENCODING[encoding]
    source = inspect.getsource(tiktoken_ext.openai_public)

    assert f'"{rank_file.blob_url}",\n        expected_hash="{rank_file.sha256}"' in source


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_seeded_cache_is_what_tiktoken_reads_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    rank_file = RANK_FILE_OF_ENCODING[encoding]
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))

    path = seed_tiktoken_cache(rank_file, tiktoken_cache_dir())

    tiktoken_cache_name = hashlib.sha1(rank_file.blob_url.encode()).hexdigest()  # noqa: S324
    assert path == tmp_path / tiktoken_cache_name
    # With no network here, this only succeeds if tiktoken accepts the seeded file.
    assert read_file_cached(rank_file.blob_url, rank_file.sha256) == path.read_bytes()


def test_a_corrupted_cache_file_is_replaced(tmp_path: Path) -> None:
    rank_file = RANK_FILE_OF_ENCODING["cl100k_base"]
    path = seed_tiktoken_cache(rank_file, tmp_path)
    path.write_bytes(b"garbage")

    seed_tiktoken_cache(rank_file, tmp_path)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == rank_file.sha256


def test_cache_dir_defaults_under_learnflow_and_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert tiktoken_cache_dir() == tmp_path / ".cache/learnflow/tiktoken"
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(tmp_path / ".cache/learnflow/tiktoken")


@pytest.mark.parametrize(
    ("model", "encoding"),
    [("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base"), ("llama-3-local", "o200k_base")],
)
def test_models_map_to_their_encoding_unknown_ones_to_o200k(model: str, encoding: str) -> None:
    assert encoding_for_model(model).name == encoding


def test_counter_counts_message_framing(counter: TokenCounter) -> None:
    encoding = tiktoken.get_encoding("o200k_base")
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
    ]
    text_tokens = sum(
        len(encoding.encode(m.role)) + len(encoding.encode(m.content)) for m in messages
    )

    assert counter.count(messages) == text_tokens + 3 * len(messages) + 3
    # Counts are kept per text (an LRU): a repeat, the texts reordered, and a new text all agree
    # with tiktoken.
    assert counter.count(messages) == counter.count(messages[::-1]) == text_tokens + 9
    assert counter.count([ChatMessage(role="user", content="Hi there")]) == (
        len(encoding.encode("user")) + len(encoding.encode("Hi there")) + 6
    )


def _scores(n: int) -> tuple[tuple[str, int], ...]:
    return tuple((f"topic {i}", 50 + i) for i in range(n))  # topic 0 is the newest


def test_fitting_prompt_is_untouched(
    render: Render, request_: GenerateLessonRequest, make_projection: MakeProjection
) -> None:
    prompt = render(request_, make_projection())

    assert prompt.trimmed == ()
    assert prompt.personalisation is not None
    assert len(prompt.personalisation.recent_scores) == 3


def test_oldest_scores_are_trimmed_first_and_recorded(
    render: Render, request_: GenerateLessonRequest, make_projection: MakeProjection
) -> None:
    projection = make_projection(scores=_scores(5))
    full = render(request_, projection)

    prompt = render(request_, projection, budget=full.prompt_tokens - 1)

    assert prompt.trimmed == ("recent_score:topic 4",)
    assert prompt.prompt_tokens <= full.prompt_tokens - 1
    assert prompt.personalisation is not None
    assert [s.topic for s in prompt.personalisation.recent_scores] == [
        f"topic {i}" for i in range(4)
    ]
    assert "topic 4" not in prompt.messages[-1].content


def test_trimming_order_is_scores_then_strong_then_weak_topics(
    render: Render, request_: GenerateLessonRequest, make_projection: MakeProjection
) -> None:
    projection = make_projection(
        weak=("w1", "w2", "w3", "w4"), strong=("s1", "s2"), scores=_scores(2)
    )
    weak_only = make_projection(weak=("w1", "w2", "w3"), strong=(), scores=())
    budget = render(request_, weak_only).prompt_tokens

    prompt = render(request_, projection, budget=budget)

    assert prompt.trimmed == (
        "recent_score:topic 1",
        "recent_score:topic 0",
        "strong_topic:s2",
        "strong_topic:s1",
        "weak_topic:w4",
    )
    assert prompt.personalisation is not None
    assert prompt.personalisation.weak_topics == ("w1", "w2", "w3")


def test_personalisation_can_be_dropped_entirely_to_fit(
    render: Render, request_: GenerateLessonRequest, make_projection: MakeProjection
) -> None:
    budget = render(request_, None).prompt_tokens

    prompt = render(request_, make_projection(), budget=budget)

    assert not prompt.personalised
    assert prompt.trimmed[-1] == "weak_topic:decimals"
    assert prompt.messages == render(request_, None).messages


def test_over_budget_without_personalisation_is_a_422(
    render: Render, request_: GenerateLessonRequest, make_projection: MakeProjection
) -> None:
    budget = render(request_, None).prompt_tokens - 1

    with pytest.raises(PromptOverBudget) as caught:
        render(request_, make_projection(), budget=budget)

    assert caught.value.http_status == 422
    assert caught.value.code == "prompt_over_budget"
    assert "topic/goal too long for budget" in str(caught.value)
