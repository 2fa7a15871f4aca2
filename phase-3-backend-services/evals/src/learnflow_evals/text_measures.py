"""Measures of a lesson's prose: how hard it reads, and which language it is in."""

import re
from functools import cache

import textstat
from course_agent.domain.lesson import LessonDraft
from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

# Code is not prose: it would skew both readability and language detection.
_FENCED_CODE = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`]*`")
_MARKUP = re.compile(r"[*_#>|]+")
# The languages the detector chooses among: every locale the cases use, and close neighbours
# a detector could confuse them with. Fewer candidates make short texts far more reliable.
_CANDIDATES = (
    Language.ENGLISH,
    Language.GERMAN,
    Language.FRENCH,
    Language.SPANISH,
    Language.PORTUGUESE,
    Language.ITALIAN,
    Language.DUTCH,
)


def prose(lesson: LessonDraft) -> str:
    """The lesson's running text (summary, key points, section bodies), without code."""
    parts = [lesson.summary, *lesson.key_points, *(s.body_markdown for s in lesson.sections)]
    text = "\n".join(
        part if part.rstrip().endswith((".", "!", "?")) else f"{part}." for part in parts
    )
    text = _FENCED_CODE.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    return _MARKUP.sub("", text)


# Languages textstat has its own Flesch formula for; others would be scored as English.
_READABILITY_LANGUAGES = frozenset({"en", "de", "es", "fr", "it", "nl", "ru"})
_WORD = re.compile(r"\w+")
# Words too common to show that a text is about a topic.
_STOPWORDS = frozenset(
    {
        "about",
        "after",
        "also",
        "answer",
        "because",
        "before",
        "from",
        "into",
        "just",
        "lesson",
        "only",
        "that",
        "their",
        "there",
        "these",
        "they",
        "this",
        "what",
        "when",
        "which",
        "while",
        "with",
        "word",
        "your",
    }
)


def has_readability_formula(language: str) -> bool:
    return language in _READABILITY_LANGUAGES


def mentions(topic: str, text: str) -> bool:
    """Whether ``text`` comes back to ``topic``: it holds the topic's head (the part before its
    first comma or colon), or most of the head's meaningful words. Long, descriptive topic
    names are paraphrased, never quoted whole."""
    head = re.split(r"[,:;]", topic, maxsplit=1)[0].casefold().strip()
    folded = text.casefold()
    if head and head in folded:
        return True
    words = {w for w in _WORD.findall(head) if len(w) >= 4 and w not in _STOPWORDS}
    present = set(_WORD.findall(folded))
    return bool(words) and len(words & present) / len(words) >= 0.6


def language_of(locale: str) -> str:
    """The ISO 639-1 language of a BCP 47 locale: "de-AT" -> "de"."""
    return locale.split("-", 1)[0].lower()


def reading_ease(text: str, language: str) -> float:
    """Flesch reading ease with the locale's own formula where textstat has one (de, es, fr,
    it, nl, ru); English constants otherwise."""
    textstat.set_lang(language)
    try:
        return float(textstat.flesch_reading_ease(text))
    finally:
        textstat.set_lang("en_US")


@cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_CANDIDATES).build()


def detected_language(text: str) -> str | None:
    """ISO 639-1 code of the language ``text`` is written in, or None when unsure."""
    found = _detector().detect_language_of(text)
    return None if found is None else found.iso_code_639_1.name.lower()


def is_detectable(language: str) -> bool:
    return any(candidate.iso_code_639_1 == _iso(language) for candidate in _CANDIDATES)


def _iso(language: str) -> IsoCode639_1 | None:
    return getattr(IsoCode639_1, language.upper(), None)
