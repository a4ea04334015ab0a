"""A labelled multi-locale PII benchmark built from Faker, which the recognizers were not written on.

The values (names, streets, postcodes, phones, IBANs, national ids, cards, emails, IPs) come from
Faker's locale providers (`LOCALES`); the text around them is one of several *carriers* a real log
holds: chat turns, e-mail signatures, multi-line address blocks, CSV rows, key=value log lines,
JSON page answers, bank requests and support tickets, some typed all lower case or all upper
case. Every value's span is labelled while the text is assembled, so spans are exact.

Two splits, generated from different seeds with disjoint filler prose (`SPLITS`):

* `dev` — look at it, tune the recognizers on it;
* `heldout` — report on it, never tune on it. Its values, their combinations, the carriers'
  phrasings drawn and the ordinary sentences around them differ from dev's.

Scoring (`score`) works on the *redacted output text*, whatever engine wrote it, so JSON answers
can go through the pipeline's own JSON path. A labelled value leaks when any of its *needles* is
found more often in the output than in the input outside the labelled spans:

* person: every name token of two letters or more (particles such as `de`, `van`, `y` excepted) —
  a surviving surname or lower-case first name is a leak;
* address: every capitalised word of three letters or more of the street line (the street name;
  the postcode and city after it are kept on purpose);
* structured kinds: every run of six consecutive digits of the value, found inside a run of
  digits of the output, plus the e-mail's local part, the phone's extension and the whole value.

Over-redaction is the share of ordinary words (four letters or more, outside every labelled span)
that are missing from the output, counted with their multiplicity.

Faker is a benchmark-only dependency (the `dev` extra); it is imported inside the functions.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

LOCALES = (
    "en_US",
    "en_GB",
    "de_DE",
    "fr_FR",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pl_PL",
    "sv_SE",
    "hu_HU",
    "pt_PT",
    "pt_BR",
    "da_DK",
)
#: Kinds that are scored, in the order the benchmark prints them; the first six must never leak.
KINDS = ("email", "phone", "card", "ip", "national_id", "iban", "person", "address")
STRUCTURED = KINDS[:6]
#: Split name -> seed. The seeds differ, and so do the filler sentences (see `_FILLER`). The first
#: held-out seed (90417) was read once, its leaked values shown, and a fix (national ids spaced
#: and in lower case after their label) followed: it is retired, and a fresh seed reports since.
SPLITS = {"dev": 20260310, "heldout": 48611}

#: Placeholders of Flywheel's table and of default Presidio (`<PERSON>`): not the input's words.
PLACEHOLDER = re.compile(r"\[[A-Z_]+(?:_\d+)?\]|<[A-Z_]+>|contact@example\.com|\+1 \(555\) 000-0000")
_PARTICLES = frozenset(
    "de del della der den di da das do dos du la le van von ter ten y e i und zu af av".split()
)
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_DIGIT_RUN = re.compile(r"\d(?:[\d \t().\-/+]*\d)?")
_WORD4 = re.compile(r"[^\W\d_]{4,}")


@dataclass(frozen=True)
class Span:
    """One labelled value: where it is, and the needles that reveal it if they survive."""

    kind: str
    start: int
    end: int
    text: str
    words: tuple[str, ...] = ()  # matched as whole words, case-insensitively
    digits: tuple[str, ...] = ()  # matched inside the output's digit runs, separators ignored


@dataclass
class Item:
    text: str
    carrier: str
    locale: str
    format: str = "text"  # "json": a page answer whose string values are redacted, not its syntax
    spans: list[Span] = field(default_factory=list)


# ---------------------------------------------------------------- needles


def name_needles(name: str) -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(
            t for t in _TOKEN.findall(name) if len(t) >= 2 and t.lower() not in _PARTICLES and not _title(t)
        )
    )


def _title(token: str) -> bool:
    return token.lower().rstrip(".") in _TITLES


_TITLES = frozenset(
    "mr mrs ms miss dr prof herr frau sr sra srta dott sig ing pan pani mme mlle dhr mevr fru".split()
)


def street_needles(street: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in _TOKEN.findall(street) if len(t) >= 3 and t[0].isupper()))


def digit_windows(value: str, width: int = 6) -> tuple[str, ...]:
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) <= width:
        return (digits,) if digits else ()
    return tuple(dict.fromkeys(digits[i : i + width] for i in range(len(digits) - width + 1)))


# ---------------------------------------------------------------- building text with spans


class _Doc:
    """Text assembled piece by piece; `case` (lower/upper) applies to what is added after it."""

    def __init__(self, json_mode: bool = False):
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []
        self.case: Callable[[str], str] = str
        self.json_mode = json_mode

    def _put(self, piece: str, *, raw: bool = False) -> tuple[int, int]:
        if not raw:
            piece = self.case(piece)
            if self.json_mode:
                piece = json.dumps(piece, ensure_ascii=False)[1:-1]
        start = self.length
        self.parts.append(piece)
        self.length += len(piece)
        return start, self.length

    def add(self, *pieces: str) -> _Doc:
        for piece in pieces:
            self._put(piece)
        return self

    def raw(self, syntax: str) -> _Doc:
        self._put(syntax, raw=True)
        return self

    def value(self, kind: str, text: str, words: Iterable[str] = (), digits: Iterable[str] = ()) -> _Doc:
        start, end = self._put(text)
        shown = "".join(self.parts[-1:])
        self.spans.append(Span(kind, start, end, shown, tuple(self.case(w) for w in words), tuple(digits)))
        return self

    def item(self, carrier: str, locale: str) -> Item:
        return Item("".join(self.parts), carrier, locale, "json" if self.json_mode else "text", self.spans)


# ---------------------------------------------------------------- values from Faker


@dataclass
class Person:
    full: str
    first: str
    last: str  # the family name as it is written (may hold two surnames or a hyphen)


_COUNTRY = {
    "en_US": "USA",
    "en_GB": "United Kingdom",
    "de_DE": "Deutschland",
    "fr_FR": "France",
    "es_ES": "España",
    "it_IT": "Italia",
    "nl_NL": "Nederland",
    "pl_PL": "Polska",
    "sv_SE": "Sverige",
    "hu_HU": "Magyarország",
    "pt_PT": "Portugal",
    "pt_BR": "Brasil",
    "da_DK": "Danmark",
}
_ID_LABELS = {
    "en_US": ("SSN", "social security number", "tax id"),
    "en_GB": ("NI number", "National Insurance number", "NINO"),
    "fr_FR": ("numéro de sécurité sociale", "NIR", "n° sécu"),
    "es_ES": ("DNI", "NIF", "documento"),
    "it_IT": ("codice fiscale", "CF", "cod. fiscale"),
    "nl_NL": ("BSN", "burgerservicenummer", "BSN-nummer"),
    "pl_PL": ("PESEL", "nr PESEL", "pesel"),
    "sv_SE": ("personnummer", "pnr", "personnr"),
    "hu_HU": ("adóazonosító jel", "személyi szám", "adószám"),
}
_SIGN_OFFS = {
    "en_US": ("Best regards", "Thanks", "Cheers", "Sincerely"),
    "en_GB": ("Kind regards", "Many thanks", "Best wishes", "Regards"),
    "de_DE": ("Mit freundlichen Grüßen", "Viele Grüße", "Beste Grüße"),
    "fr_FR": ("Cordialement", "Bien à vous", "Merci"),
    "es_ES": ("Saludos", "Un saludo", "Atentamente"),
    "it_IT": ("Cordiali saluti", "Saluti", "Grazie"),
    "nl_NL": ("Met vriendelijke groet", "Groeten", "Hartelijke groet"),
    "pl_PL": ("Pozdrawiam", "Z poważaniem", "Dziękuję"),
    "sv_SE": ("Med vänliga hälsningar", "Hälsningar", "Tack"),
    "hu_HU": ("Üdvözlettel", "Tisztelettel", "Köszönöm"),
    "pt_PT": ("Cumprimentos", "Obrigado", "Atenciosamente"),
    "pt_BR": ("Atenciosamente", "Abraços", "Obrigada"),
    "da_DK": ("Med venlig hilsen", "Venlig hilsen", "Tak"),
}


class _Values:
    """Faker-drawn personal data for one locale, with a shared `random.Random` for choices."""

    def __init__(self, fakers: dict, locale: str, rng: random.Random):
        self.fake = fakers[locale]
        self.us = fakers["en_US"]
        self.locale = locale
        self.rng = rng

    def person(self) -> Person:
        f, r, loc = self.fake, self.rng, self.locale
        first = f.first_name()
        last = f.last_name()
        if loc in ("es_ES", "pt_PT", "pt_BR") and r.random() < 0.7:
            second = f.last_name()
            joiner = r.choice((" ", " ", " y " if loc == "es_ES" else " da ", " de "))
            last = f"{last}{joiner}{second}"
        if r.random() < 0.15 and loc in ("de_DE", "nl_NL", "sv_SE", "pl_PL", "da_DK", "en_GB"):
            last = f"{last}-{f.last_name()}"  # a double-barrelled surname
        if r.random() < 0.1:
            first = f"{first}-{f.first_name()}"
        if loc == "hu_HU":
            return Person(f"{last} {first}", first, last)
        if r.random() < 0.15:
            return Person(f"{first} {r.choice('ABCDEFGHJKLMNPRST')}. {last}", first, last)
        return Person(f"{first} {last}", first, last)

    def street(self) -> str:
        street = self.fake.street_address().replace("\n", ", ")
        if self.rng.random() < 0.25 and self.locale in ("en_US", "en_GB"):
            unit = self.rng.choice(("Apt", "Apt.", "Suite", "Unit", "Flat", "#"))
            street = f"{street} {unit} {self.rng.randint(1, 40)}{self.rng.choice(('', 'B'))}"
        return street

    def town_line(self) -> str:
        f, loc = self.fake, self.locale
        if loc == "en_US":
            return f"{f.city()}, {f.state_abbr()} {f.postcode()}"
        if loc == "en_GB":
            return f"{f.city()} {f.postcode()}"
        return f"{f.postcode()} {f.city()}"

    def phone(self) -> str:
        number = self.fake.phone_number()
        roll = self.rng.random()
        if roll < 0.12 and "x" not in number:
            number += self.rng.choice((" ext. ", " x", "x", " ext ", " #")) + str(self.rng.randint(10, 99999))
        elif roll < 0.2 and self.locale == "en_US":  # the issue's own example: +1-202-555-0143x1234
            number = (
                self.rng.choice(("+1-", "+1 ", "1-"))
                + self.us.numerify("###-555-0###")
                + f"x{self.rng.randint(1, 9999)}"
            )
        return number

    def email(self, person: Person | None = None) -> str:
        if person and self.rng.random() < 0.4:
            local = (
                re.sub(r"[^a-z]", "", _fold(person.first))
                + "."
                + re.sub(r"[^a-z]", "", _fold(person.last))[:12]
            )
            return f"{local}@{self.fake.free_email_domain()}"
        return self.fake.email()

    def card(self) -> str:
        kind = self.rng.choice(
            (
                "visa",
                "visa13",
                "visa19",
                "mastercard",
                "amex",
                "discover",
                "jcb15",
                "jcb16",
                "diners",
                "maestro",
            )
        )
        number = self.us.credit_card_number(card_type=kind)
        style = self.rng.random()
        if style < 0.4:
            return number
        sep = " " if style < 0.8 else "-"
        return sep.join(number[i : i + 4] for i in range(0, len(number), 4))

    def iban(self) -> str:
        value = self.fake.iban()
        roll = self.rng.random()
        if roll < 0.45:
            value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        if self.rng.random() < 0.25:
            value = value.lower()
        return value

    def national_id(self) -> tuple[str, str]:
        f, loc = self.fake, self.locale
        if loc == "es_ES":
            value = self.rng.choice((f.nif, f.nie))()
        elif loc == "pl_PL":
            value = f.pesel()
        elif loc in _ID_LABELS:
            value = f.ssn()
        else:
            value = self.us.ssn()
        labels = _ID_LABELS.get(loc, _ID_LABELS["en_US"])
        return self.rng.choice(labels), value

    def ip(self) -> str:
        return self.rng.choice((self.fake.ipv4_public, self.fake.ipv4, self.fake.ipv6))()

    def company(self) -> str:
        return self.fake.company()


def _fold(word: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()


# ---------------------------------------------------------------- ordinary prose (disjoint per split)

_FILLER = {
    "dev": (
        "The new landing page loads slowly on older phones.",
        "We would like the pricing section moved above the testimonials.",
        "Could you make the headline shorter and friendlier?",
        "Our customers mostly browse on their lunch break.",
        "The booking form keeps rejecting valid dates.",
        "Please keep the colours close to the printed brochure.",
        "The summer campaign starts next month and needs its own banner.",
        "Nobody reads the long paragraph under the gallery.",
        "Support tickets doubled after the last release.",
        "The export should include every order from last quarter.",
        "I think the newsletter signup is too hidden.",
        "Shipping estimates were wrong for the islands again.",
    ),
    "heldout": (
        "The checkout button disappears when the basket is empty.",
        "Our menu changes every season, so the page should be easy to update.",
        "Several visitors complained about the tiny font in the footer.",
        "We need a short section explaining the refund policy.",
        "The photos look blurry on large monitors.",
        "Please translate the opening hours into plain language.",
        "Reviews from regular guests matter more than discounts.",
        "The invoice template still shows the old logo.",
        "Weekend orders arrive late because the warehouse is closed.",
        "Make the contact details easier to find on mobile.",
        "Our staff wants a calmer colour palette for the dashboard.",
        "The tracking email went out twice yesterday.",
    ),
}


# ---------------------------------------------------------------- carriers


def _person(doc: _Doc, p: Person, text: str | None = None) -> _Doc:
    return doc.value("person", text or p.full, name_needles(text or p.full))


def _address(doc: _Doc, street: str, town: str, sep: str = ", ") -> _Doc:
    return doc.value("address", f"{street}{sep}{town}", street_needles(street))


def _structured(doc: _Doc, kind: str, value: str) -> _Doc:
    words: tuple[str, ...] = (value,)
    if kind == "email":
        local = value.split("@")[0]
        words = (value, local) if len(local) >= 3 else (value,)
    if kind == "phone":
        ext = re.search(r"(?:x|ext\.?|#)\s*(\d+)\s*$", value)
        words = (value, ext.group(1)) if ext else (value,)
    if kind == "email" or (kind == "ip" and ":" in value):
        return doc.value(kind, value, words, ())
    return doc.value(kind, value, words, digit_windows(value))


def chat(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc, p = v.rng, _Doc(), v.person()
    lower = r.random() < 0.35
    upper = not lower and r.random() < 0.1
    user_case = str.lower if lower else str.upper if upper else str
    doc.add("User: ")
    doc.case = user_case
    intro = r.choice(("hi, i'm {}", "Hello, my name is {}", "This is {} speaking", "{} here", "hey it's {}"))
    before, after = intro.split("{}")
    use = p.first if r.random() < 0.3 else p.full
    _person(doc.add(before), p, use).add(after + ". " + r.choice(filler) + " ")
    if r.random() < 0.6:
        _structured(
            doc.add(r.choice(("you can call me on ", "my number is ", "phone: "))), "phone", v.phone()
        )
        doc.add(". ")
    doc.case = str
    doc.add("\nAssistant: ")
    _person(doc.add(r.choice(("Thanks ", "Sure, ", "Hi "))), p, p.first).add(", " + r.choice(filler).lower())
    doc.add("\nUser: ")
    doc.case = user_case
    last_word = p.last.split()[-1] if " " in p.last and r.random() < 0.3 else p.last
    phrase = r.choice(("please put {} as the contact", "the account is under {}", "ask for {} at reception"))
    before, after = phrase.split("{}")
    _person(doc.add(before), p, last_word if r.random() < 0.5 else p.full).add(after)
    if r.random() < 0.5:
        _structured(doc.add(" and the email is "), "email", v.email(p))
    doc.add(". " + r.choice(filler))
    return doc


def signature(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc, p = v.rng, _Doc(), v.person()
    doc.add(" ".join(r.sample(list(filler), 2)) + "\n\n" + r.choice(_SIGN_OFFS[v.locale]) + ",\n")
    _person(doc, p).add("\n")
    if r.random() < 0.6:
        doc.value("business", v.company()).add("\n")
    if r.random() < 0.6:
        _address(doc, v.street(), v.town_line(), "\n").add("\n")
    _structured(doc.add(r.choice(("Tel: ", "Mobile: ", "", "T "))), "phone", v.phone()).add("\n")
    _structured(doc, "email", v.email(p))
    return doc


def address_block(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc, p = v.rng, _Doc(), v.person()
    doc.add(
        r.choice(("Please ship the order to:\n", "Delivery address\n", "Send the invoice to\n", "Ship to:\n"))
    )
    if r.random() < 0.3:
        doc.case = str.upper
    _person(doc, p).add("\n")
    _address(doc, v.street(), v.town_line(), "\n").add("\n" + _COUNTRY[v.locale])
    doc.case = str
    doc.add("\n\n" + r.choice(filler))
    return doc


def csv_rows(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc = v.rng, _Doc()
    columns = ["name", "email", "phone"] + r.sample(["city", "iban", "ip", "street"], 2)
    doc.add(",".join(columns) + "\n")
    for _ in range(r.randint(1, 3)):
        p = v.person()
        for i, column in enumerate(columns):
            if i:
                doc.add(",")
            if column == "name":
                _person(doc.add('"'), p).add('"')
            elif column == "city":
                doc.add(v.fake.city())
            elif column == "street":
                street = v.street()
                doc.add('"').value("address", street, street_needles(street)).add('"')
            else:
                value = {"email": v.email, "phone": v.phone, "iban": v.iban, "ip": v.ip}[column]()
                _structured(doc, column, value)
        doc.add("\n")
    return doc


def log_lines(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc, p = v.rng, _Doc(), v.person()
    stamp = f"2026-03-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:11Z"
    key = r.choice(("name", "user_name", "customer", "full_name", "contact"))
    doc.add(f"{stamp} level=info event=checkout {key}=")
    if r.random() < 0.5:
        _person(doc.add('"'), p).add('"')
    else:
        doc.case = str.lower if r.random() < 0.5 else str
        _person(doc, p, p.full.replace(" ", "_") if r.random() < 0.2 else p.first)
        doc.case = str
    _structured(doc.add(" email="), "email", v.email(p))
    _structured(doc.add(" ip="), "ip", v.ip())
    doc.add(f"\n{stamp} level=warn event=payment_retry card=")
    _structured(doc, "card", v.card().replace(" ", ""))
    doc.add(" phone=")
    _structured(doc, "phone", v.phone().replace(" ", "-"))
    doc.add(
        f"\n{stamp} level=debug event=shipping " + r.choice(("address: ", "address=", "shipping_address: "))
    )
    _address(doc, v.street(), v.town_line())
    doc.add(f' msg="{r.choice(filler)}"')
    return doc


def page_answer(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc, p, q = v.rng, _Doc(json_mode=True), v.person(), v.person()
    doc.raw('{"sections": [{"type": "hero", "headline": "').add(r.choice(filler)).raw('"}, ')
    doc.raw('{"type": "contact", "').raw(r.choice(("name", "owner", "contact_name"))).raw('": "')
    _person(doc, p).raw('", "phone": "')
    _structured(doc, "phone", v.phone()).raw('", "email": "')
    _structured(doc, "email", v.email(p)).raw('", "address": "')
    _address(doc, v.street(), v.town_line()).raw('"}, {"type": "testimonial", "quote": "')
    doc.add(r.choice(filler) + " ")
    _person(doc.add(r.choice(("Thanks to ", "Ask for ", "Booked with "))), q, q.first).add("!")
    doc.raw('", "author": "')
    _person(doc, q).raw('"}]}')
    return doc


def bank_request(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc, p = v.rng, _Doc(), v.person()
    if r.random() < 0.3:
        doc.case = str.lower
    doc.add(r.choice(("Please change my payout account. ", "New bank details below. ", "Refund request. ")))
    _structured(doc.add(r.choice(("New IBAN: ", "IBAN ", "iban: "))), "iban", v.iban())
    _person(doc.add(", account holder "), p).add(". ")
    label, value = v.national_id()
    _structured(doc.add(f"My {label} is "), "national_id", value)
    doc.add(". " + r.choice(filler))
    return doc


def support_ticket(v: _Values, filler: Sequence[str]) -> _Doc:
    r, doc, p = v.rng, _Doc(), v.person()
    if r.random() < 0.25:
        doc.case = str.lower
    doc.add(r.choice(filler) + " ")
    _structured(doc.add("My card "), "card", v.card()).add(" was charged twice. ")
    if r.random() < 0.5:
        _structured(doc.add("The order came from "), "ip", v.ip()).add(". ")
    street = v.street()
    doc.add(r.choice(("I live at ", "Our office is at ", "Deliver to ")))
    doc.value("address", street, street_needles(street)).add(" in " + v.fake.city() + ". ")
    _person(doc.add(r.choice(("My colleague ", "Please tell ", "I spoke with "))), p).add(
        r.choice((" knows about it.", " was there yesterday."))
    )
    _person(doc.add(" "), p, p.last.split()[0]).add(
        r.choice((" said it would be fixed.", " has the receipt."))
    )
    return doc


CARRIERS: dict[str, Callable[[_Values, Sequence[str]], _Doc]] = {
    "chat": chat,
    "signature": signature,
    "address_block": address_block,
    "csv": csv_rows,
    "log": log_lines,
    "page_json": page_answer,
    "bank_request": bank_request,
    "support_ticket": support_ticket,
}


def build(split: str = "dev", n: int = 400) -> list[Item]:
    """`n` labelled items of a split, the same for the same split and n."""
    from faker import Faker

    seed = SPLITS[split]
    rng = random.Random(seed)
    fakers = {}
    for i, locale in enumerate(LOCALES):
        fakers[locale] = Faker(locale)
        fakers[locale].seed_instance(seed * 100 + i)
    carriers = list(CARRIERS)
    items = []
    for k in range(n):
        locale = LOCALES[k % len(LOCALES)] if k < len(LOCALES) else rng.choice(LOCALES)
        carrier = carriers[k % len(carriers)]
        doc = CARRIERS[carrier](_Values(fakers, locale, rng), _FILLER[split])
        items.append(doc.item(carrier, locale))
    return items


# ---------------------------------------------------------------- scoring


def _clean(text: str) -> str:
    return PLACEHOLDER.sub(" \u00a6 ", text)


def _masked(item: Item) -> str:
    chars = list(item.text)
    for span in item.spans:
        chars[span.start : span.end] = " \u00a6 ".ljust(span.end - span.start)[: span.end - span.start]
    return "".join(chars)


def _word_count(text: str, word: str) -> int:
    return len(re.findall(r"(?<![^\W_])" + re.escape(word) + r"(?![^\W_])", text, re.IGNORECASE))


def _digit_count(runs: list[str], needle: str) -> int:
    return sum(run.count(needle) for run in runs)


def leaked(item: Item, output: str) -> list[Span]:
    """The item's labelled values of which some needle survives in `output`."""
    out, before = _clean(output), _masked(item)
    out_runs = ["".join(ch for ch in m.group(0) if ch.isdigit()) for m in _DIGIT_RUN.finditer(out)]
    before_runs = ["".join(ch for ch in m.group(0) if ch.isdigit()) for m in _DIGIT_RUN.finditer(before)]
    leaks = []
    for span in item.spans:
        if any(_word_count(out, w) > _word_count(before, w) for w in span.words) or any(
            _digit_count(out_runs, d) > _digit_count(before_runs, d) for d in span.digits
        ):
            leaks.append(span)
    return leaks


def ordinary_words(item: Item) -> Counter:
    return Counter(_WORD4.findall(_masked(item)))


def lost_words(item: Item, output: str) -> tuple[int, int]:
    """(ordinary words lost, ordinary words in the input)."""
    have, kept = ordinary_words(item), Counter(_WORD4.findall(_clean(output)))
    return sum(max(0, n - kept[w]) for w, n in have.items()), sum(have.values())


@dataclass
class Score:
    total: Counter = field(default_factory=Counter)
    leaks: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    words: int = 0
    words_lost: int = 0
    lost_examples: Counter = field(default_factory=Counter)

    def leak_rate(self, kind: str) -> float:
        return self.leaks[kind] / self.total[kind] if self.total[kind] else 0.0

    @property
    def over_redaction(self) -> float:
        return self.words_lost / self.words if self.words else 0.0


def score(items: Sequence[Item], outputs: Sequence[str], keep_examples: int = 8) -> Score:
    """Per-kind leaks and over-redaction of `outputs` (one redacted text per item)."""
    result = Score()
    for item, output in zip(items, outputs, strict=True):
        result.total.update(s.kind for s in item.spans)
        for span in leaked(item, output):
            result.leaks[span.kind] += 1
            shown = result.examples.setdefault(span.kind, [])
            if len(shown) < keep_examples:
                shown.append(f"{item.carrier}/{item.locale}: {span.text!r}")
        lost, words = lost_words(item, output)
        result.words += words
        result.words_lost += lost
        if lost:
            kept = Counter(_WORD4.findall(_clean(output)))
            result.lost_examples.update(w for w, n in ordinary_words(item).items() if n > kept[w])
    return result
