"""Whether a word is ordinary English vocabulary: how names are told from words without their capital.

In lower-case text ("hey it's jesper willems", "the account is under macedo de lima") the only
sign of a name is that it is not a word of the language around it. `common` asks wordfreq (its
English Zipf frequency, 0..8: 6 is "the"-like, 3 is once per million words) whether a word is
frequent enough to be vocabulary; the name finders take the words after a cue that are not.
Listed first names (`names.FIRST_NAMES`) are names whatever their frequency ("paul", "maria").

wordfreq is imported on first use (it loads its English table, about 0.2 s, once per process).

`country_names`: the names of countries and territories in the languages the benchmark's
locales write (CLDR, through Babel), so a country line of an address block is kept.
"""

from __future__ import annotations

from functools import lru_cache

#: Zipf frequency from which a word is English vocabulary rather than a name ("happy" 5.4,
#: "reception" 4.2, "lopez" 3.8, "morales" 3.3, "freitas" 2.3, "geneart" 0).
COMMON = 4.0


@lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en")


def common(word: str, threshold: float = COMMON) -> bool:
    """Whether `word` is frequent enough in English to be vocabulary, not a name."""
    return zipf(word) >= threshold


#: Languages whose country names are kept (those of the locales the anonymizer is measured on).
COUNTRY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "sv", "hu", "pt", "da")


@lru_cache(maxsize=1)
def country_names() -> frozenset[str]:
    """Every country's and territory's name in `COUNTRY_LANGUAGES`, lower case, without accents."""
    import unicodedata

    from babel import Locale

    names = set()
    for language in COUNTRY_LANGUAGES:
        for code, name in Locale.parse(language).territories.items():
            if code.isalpha():  # countries, not the numbered regions ("150": Europe)
                folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
                names.add(folded.lower())
    return frozenset(names)


def load() -> None:
    """Load the word frequencies and the country names (the engine calls it while it starts)."""
    zipf("the")
    country_names()
