"""The engine's pure finders, kind by kind, and the Faker benchmark's corpus and leak rule."""

from __future__ import annotations

import pytest

from pipeline.anonymize import patterns
from pipeline.anonymize.checksums import card_issuer_ok, national_id_ok

FINDS = [
    # (finder, text, entity, the exact value it must report)
    (patterns.find_phones, "call +1-202-555-0143x1234 tonight", "PHONE_NUMBER", "+1-202-555-0143x1234"),
    (patterns.find_phones, "desk (030) 6913920 ext 22201.", "PHONE_NUMBER", "(030) 6913920 ext 22201"),
    (patterns.find_phones, "ring +49(0) 915000806 now", "PHONE_NUMBER", "+49(0) 915000806"),
    (patterns.find_phones, "tel (06)11/496-0032 #15922", "PHONE_NUMBER", "(06)11/496-0032 #15922"),
    (patterns.find_phones, "mobile 0388475108", "PHONE_NUMBER", "0388475108"),
    (patterns.find_ibans, "iban de89370400440532013000, ok", "IBAN_CODE", "de89370400440532013000"),
    (
        patterns.find_ibans,
        "IBAN br71 8724 1720 1733 5068 9626 445p x, holder",
        "IBAN_CODE",
        "br71 8724 1720 1733 5068 9626 445p x",
    ),
    (patterns.find_cards, "maestro 501811524492 on file", "CREDIT_CARD", "501811524492"),
    (patterns.find_cards, "visa 4005756682823302522 (19 digits)", "CREDIT_CARD", "4005756682823302522"),
    (patterns.find_national_ids, "My NIR is 268044523412707.", "NATIONAL_ID", "268044523412707"),
    (patterns.find_national_ids, "personnummer: 070101-4268", "NATIONAL_ID", "070101-4268"),
    (patterns.find_national_ids, "DNI 31939071Y", "NATIONAL_ID", "31939071Y"),
    (patterns.find_national_ids, "my National Insurance number is ZZ060483T", "NATIONAL_ID", "ZZ060483T"),
    (patterns.find_national_ids, "my ni number is zz 84 67 98 t.", "NATIONAL_ID", "zz 84 67 98 t"),
    (
        patterns.find_addresses,
        "at 344 Mathis Parkways Suite 907\nLake Laura, MT 87630\n",
        "ADDRESS",
        "344 Mathis Parkways Suite 907\nLake Laura, MT 87630",
    ),
    (
        patterns.find_addresses,
        "Send it to Calle de Alcalá 12, 28014 Madrid.",
        "ADDRESS",
        "Calle de Alcalá 12, 28014 Madrid",
    ),
    (
        patterns.find_addresses,
        "Rua Augusta, 25, 1100-048 Lisboa",
        "ADDRESS",
        "Rua Augusta, 25, 1100-048 Lisboa",
    ),
    (
        patterns.find_addresses,
        "Flat 41T, Howarth River\nWhitefurt W2 9NF",
        "ADDRESS",
        "Flat 41T, Howarth River\nWhitefurt W2 9NF",
    ),
    (patterns.find_addresses, "Ängstorget 3\n74978 Skellefteå", "ADDRESS", "Ängstorget 3\n74978 Skellefteå"),
    (
        patterns.find_addresses,
        "office: Kerkstraat 12, 1234 AB Amsterdam",
        "ADDRESS",
        "Kerkstraat 12, 1234 AB Amsterdam",
    ),
    # Spanish types of vía and Brazilian types of logradouro, abbreviated types, no number (S/N)
    (patterns.find_addresses, "Passarela Rodrigo Machado, 48", "ADDRESS", "Passarela Rodrigo Machado, 48"),
    (
        patterns.find_addresses,
        "Pasadizo de Dan Izquierdo 69 Puerta 2\n28331 Navarra",
        "ADDRESS",
        "Pasadizo de Dan Izquierdo 69 Puerta 2\n28331 Navarra",
    ),
    (
        patterns.find_addresses,
        "deliver to condomínio moura, 639 in silveira.",
        "ADDRESS",
        "condomínio moura, 639",
    ),
    (patterns.find_addresses, "Our office is at R. Mota, 65 in Olhão.", "ADDRESS", "R. Mota, 65"),
    (patterns.find_addresses, "C. RODOLFO MOLINA 51 PUERTA 6", "ADDRESS", "C. RODOLFO MOLINA 51 PUERTA 6"),
    (
        patterns.find_addresses,
        "Rua Garcia de Orta, S/N\n3591-146 Matosinhos",
        "ADDRESS",
        "Rua Garcia de Orta, S/N\n3591-146 Matosinhos",
    ),
    (
        patterns.find_addresses,
        "Recanto Marina, 9\n28548321 Santos",
        "ADDRESS",
        "Recanto Marina, 9\n28548321 Santos",
    ),
    (
        patterns.find_addresses,
        "Evieboulevard 986\n4248FO Santpoort",
        "ADDRESS",
        "Evieboulevard 986\n4248FO Santpoort",
    ),
    # after an address cue: abbreviations with a full stop, the number after a comma, "i" (and) in the name
    (
        patterns.find_addresses,
        "i live at pl. moniuszki 32/85 in legionowo.",
        "ADDRESS",
        "pl. moniuszki 32/85",
    ),
    (patterns.find_addresses, "deliver to pl. mieszka i 623 in łódź.", "ADDRESS", "pl. mieszka i 623"),
    (
        patterns.find_addresses,
        "our office is at r. de d. afonso henriques, 14 in vila nova.",
        "ADDRESS",
        "r. de d. afonso henriques, 14",
    ),
    (
        patterns.find_addresses,
        "Our office is at Aeroporto Melina Barros, 87 in Ribeiro.",
        "ADDRESS",
        "Aeroporto Melina Barros, 87",
    ),
    # a unit first, in lower case
    (
        patterns.find_addresses,
        "our office is at flat 3, helen gateway in x",
        "ADDRESS",
        "flat 3, helen gateway",
    ),
    (patterns.find_addresses, "it is studio 15, kieran terrace now", "ADDRESS", "studio 15, kieran terrace"),
    # a block: the line above a postcode + town line is the street, whatever its words
    (
        patterns.find_addresses,
        "Ship to:\nMARIANA MONTEIRO\nVIELA ALBUQUERQUE\n97588-713 CARVALHO DE GOIÁS\nBrasil",
        "ADDRESS",
        "VIELA ALBUQUERQUE\n97588-713 CARVALHO DE GOIÁS",
    ),
    (
        patterns.find_addresses,
        "Jan Jansen\nAchter de Kerk 7\n8783LT Lollum",
        "ADDRESS",
        "Achter de Kerk 7\n8783LT Lollum",
    ),
    # German streets named by a preposition: with house number, postcode and town
    (patterns.find_addresses, "Wir sind Am Markt 111, 50667 Köln.", "ADDRESS", "Am Markt 111, 50667 Köln"),
    (patterns.find_addresses, "see An der Alster 12, 20099 Hamburg soon", "ADDRESS", "An der Alster 12, 20099 Hamburg"),
    (patterns.find_key_values, 'event=x name="Maren Holt" ip=1.2.3.4', "PERSON", "Maren Holt"),
    (
        patterns.find_key_values,
        "address: ul. Jadwigi 978, 51-604 Lublin msg=ok",
        "ADDRESS",
        "ul. Jadwigi 978, 51-604 Lublin",
    ),
]


@pytest.mark.parametrize("finder,text,entity,value", FINDS, ids=[f"{f.__name__}:{v}" for f, _, _, v in FINDS])
def test_finder_reports_the_whole_value(finder, text, entity, value):
    assert (entity, value) in [(e, text[s:t]) for e, s, t, _ in finder(text)]


NOT_FOUND = [
    (patterns.find_phones, "released 2026-03-15 at 10:30, version 2.4.1, 192.168.0.1"),
    (patterns.find_cards, "order 4111 1111 1111 1112 is a typo"),
    (patterns.find_cards, "serial 999999999999 and 012345678912"),
    (patterns.find_ibans, "DE88 3704 0044 0532 0130 00 has a wrong check digit"),
    (patterns.find_addresses, "I have 3 dogs in the park and live at the end of the road."),
    (patterns.find_addresses, "Send it via email 5 times."),
    (patterns.find_addresses, "The order:\n3 boxes\n12 chairs\n"),
    (patterns.find_addresses, "Totals\nSummer sale\n2024 Results\n"),  # no street, and no name above it
    (patterns.find_addresses, "I moved it to the park in 2024, c. 1900 houses."),
    (patterns.find_key_values, "note: remember the launch, level=info"),
    (patterns.find_addresses, "Im Jahr 2020 waren es 12000 Leute, am Ende 3 Tage."),
]


@pytest.mark.parametrize("finder,text", NOT_FOUND)
def test_finder_leaves_ordinary_text(finder, text):
    assert list(finder(text)) == []


def test_cued_and_table_names():
    text = 'name,email\n"Barna Dániel",bd@example.org\n'
    assert [text[s:e] for _, s, e, _ in patterns.find_table_cells(text)] == ["Barna Dániel", "bd@example.org"]
    stop = frozenset({"at", "the", "and", "was", "my"})
    for cue_text, name in [
        ("ask for thorsen at reception", "thorsen"),
        ("account holder felipe rocha.", "felipe rocha"),
        ("account holder leonor cardoso de carvalho. my", "leonor cardoso de carvalho"),
        ("my colleague raymond-marissa white was there", "raymond-marissa white"),
    ]:
        assert [cue_text[s:e] for _, s, e, _ in patterns.find_cued_names(cue_text, stop)] == [name]


INTRODUCED = [
    # (text, the names the introduction finder must report, exactly)
    ("this is marliese liebelt speaking. the export", ["marliese liebelt"]),
    ("hey it's jesper willems. the booking", ["jesper willems"]),
    ("hi, i'm Christoffer Friis. Please", ["Christoffer Friis"]),
    ("please put echeverría cámara as the contact.", ["echeverría cámara"]),
    ("the account is under macedo de lima and the email", ["macedo de lima"]),
    ("hey it's lone-frode e. andresen. nobody", ["lone-frode e. andresen"]),
    ("User: oláh klaudia here. i think", ["oláh klaudia"]),
    ("Sure, Christoffer, i think", ["Christoffer"]),
    ("this is paul smith speaking", ["paul smith"]),  # a listed first name, then any rare-enough word
    # ordinary words after the same cues are not names
    ("i'm happy to help, this is great. thanks everyone. hey there", []),
    ("the account is under review. Click here to see. We are here.", []),
]


@pytest.mark.parametrize("text,names", INTRODUCED)
def test_introduced_names_any_case(text, names):
    from pipeline.anonymize.recognizers import _LOWER_FIRST_NAMES, STOP_WORDS

    found = patterns.find_introduced_names(text, _LOWER_FIRST_NAMES, STOP_WORDS)
    assert sorted({text[s:e] for _, s, e, _ in found}) == sorted(names)


@pytest.mark.parametrize("text, names", [
    ("[84:38] Ingrid Fernández: Battery prices fell.", ["Ingrid Fernández"]),
    ("[1:02:07] Oluwaseun Adeyemi-Cole: we meet twice a year", ["Oluwaseun Adeyemi-Cole"]),
    ("[12:00] Note: nothing said", []),  # one word after a timestamp is no speaker
    ("Ingrid Fernández: no timestamp, no label", []),
    ("[12:00] the host: lower case is no name", []),
])
def test_speaker_labels_of_timestamped_transcripts(text, names):
    assert [text[s:e] for _, s, e, _ in patterns.find_speaker_labels(text)] == names


def test_checksums_for_cards_and_ids():
    assert card_issuer_ok("501811524492") and not card_issuer_ok("912345678903")
    assert national_id_ok("31939071Y") and not national_id_ok("31939071Z")  # DNI letter
    assert national_id_ok("93090881248") and not national_id_ok("93090881249")  # PESEL
    assert national_id_ok("CSNMRN92T57M126I")  # codice fiscale shape


# ---------------------------------------------------------------- the benchmark corpus

faker_corpus = pytest.importorskip("pipeline.synth.faker_corpus", reason="Faker is in the dev extra")


def test_corpus_is_deterministic_with_exact_spans_and_disjoint_splits():
    dev, again, held = (
        faker_corpus.build("dev", 60),
        faker_corpus.build("dev", 60),
        faker_corpus.build("heldout", 60),
    )
    assert [i.text for i in dev] == [i.text for i in again]
    assert not {i.text for i in dev} & {i.text for i in held}
    dev_values = {s.text for i in dev for s in i.spans}
    assert len(dev_values & {s.text for i in held for s in i.spans}) < 0.05 * len(dev_values)
    assert {i.locale for i in dev} == set(faker_corpus.LOCALES)  # 13 locales, one item each first
    assert {i.carrier for i in dev} == set(faker_corpus.CARRIERS)
    for item in dev:
        for span in item.spans:
            assert item.text[span.start : span.end] == span.text


def test_leak_rule_counts_any_surviving_part():
    item = faker_corpus.Item("Ask Maren Holt at Kerkstraat 12 today.", "chat", "nl_NL")
    item.spans = [
        faker_corpus.Span("person", 4, 14, "Maren Holt", faker_corpus.name_needles("Maren Holt")),
        faker_corpus.Span("address", 18, 31, "Kerkstraat 12", faker_corpus.street_needles("Kerkstraat 12")),
    ]
    assert faker_corpus.leaked(item, "Ask [PERSON_NAME] at [ADDRESS] today.") == []
    assert [s.kind for s in faker_corpus.leaked(item, "Ask [PERSON_NAME] holt at [ADDRESS] today.")] == [
        "person"
    ]
    assert [
        s.kind for s in faker_corpus.leaked(item, "Ask [PERSON_NAME] at Kerkstraat [ADDRESS] today.")
    ] == ["address"]
    assert faker_corpus.lost_words(item, "Ask [PERSON_NAME] at [ADDRESS].") == (1, 1)  # "today" lost, of one


def test_street_type_tries_match_what_the_plain_alternation_matches():
    import re

    words = ["av", "ave", "avenue", "avda.", "r.", "rue", "rua", "straße", "str.", "pasaje", "pasadizo", "paseo"]
    trie = re.compile(r"(?i:" + patterns._alt(words) + r")\b")
    plain = re.compile(r"(?i:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b")
    probes = "Av. ave AVENUE avda. avenu r. Mota rue rua Straße str. 5 pasaje pasadizo paseo pase avx"
    assert [m.span() for m in trie.finditer(probes)] == [m.span() for m in plain.finditer(probes)]
    assert {m.group(0).lower() for m in trie.finditer(probes)} >= {"avenue", "pasadizo", "straße", "rua"}
