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
    text = "\n".join(part if part.rstrip().endswith((".", "!", "?")) else f"{part}." for part in parts)
    text = _FENCED_CODE.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    return _MARKUP.sub("", text)


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
