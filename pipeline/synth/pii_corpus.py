"""A labelled PII corpus (the project's own, the recognizers were developed on it): ~100-word user messages with the exact character span of every entity.

Used by the benchmark and the tests to measure per-entity recall. Messages read like what users
type into the seed products (page builder requests, support notes, avatar chats, reviews), mix
several PII kinds in varied formats, and are generated deterministically from a seed.

Name pools deliberately include names that are *not* in the engine's first-name list (e.g.
Siobhan, Oluwaseun), so recall on names measures NER and cue patterns, not the list alone.

Recall (`recall`) is strict and type-agnostic: a gold entity counts as caught only when the
detected spans together cover every letter and digit of it (a surname left behind is a miss).
"""

from __future__ import annotations

import random
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.synth.pii import credit_card, iban

#: Entity kinds in the corpus; the structured ones must reach 100% recall.
KINDS = ("person", "first_name", "business", "email", "phone", "address", "card", "ip", "national_id", "iban")
STRUCTURED = ("email", "phone", "card", "ip", "national_id", "iban")


@dataclass(frozen=True)
class Entity:
    kind: str
    start: int
    end: int
    text: str


@dataclass
class Message:
    text: str
    entities: list[Entity] = field(default_factory=list)

    @property
    def words(self) -> int:
        return len(self.text.split())


FIRST = [
    "Maria",
    "John",
    "Aisha",
    "Daniel",
    "Priya",
    "Lucas",
    "Emma",
    "Hiroshi",
    "Fatima",
    "Carlos",
    "Sophie",
    "Omar",
    "Elena",
    "James",
    "Mei",
    "Rahul",
    "Olivia",
    "Ahmed",
    "Sarah",
    "Kenji",
    "Siobhan",
    "Oluwaseun",
    "Thandiwe",
    "Bartholomew",
    "Xiomara",
    "Ngozi",
    "Kwame",
    "Anneliese",
    "Rohan",
    "Ingrid",
    "Tariq",
    "Saoirse",
    "Leilani",
    "Mateus",
    "Yusuf",
    "Astrid",
    "Dario",
    "Esperanza",
    "Finnegan",
    "Wojciech",
    "Björn",
    "Chiamaka",
    "Declan",
    "Imogen",
    "Rafferty",
]
LAST = [
    "Lopez",
    "Smith",
    "Okafor",
    "Nguyen",
    "Patel",
    "Kowalski",
    "Schmidt",
    "Rossi",
    "Tanaka",
    "Haddad",
    "Johansson",
    "O'Brien",
    "Garcia",
    "Müller",
    "Dubois",
    "Ivanova",
    "Mensah",
    "Kim",
    "Novak",
    "Fitzgerald",
    "Adeyemi",
    "Castellanos",
    "Whitfield",
    "Abernathy",
    "Lindqvist",
    "Moreau",
    "Takahashi",
    "Oyelaran",
]
BUSINESS_A = [
    "Bluebird",
    "Northwind",
    "Harbor",
    "Copperleaf",
    "Pinecrest",
    "Silverline",
    "Redwood",
    "Maple",
    "Lakeside",
    "Sunrise",
    "Ironbark",
    "Kestrel",
]
BUSINESS_B = [
    "Bakery",
    "Dental",
    "Studio",
    "Realty",
    "Consulting",
    "Coffee Roasters",
    "Fitness",
    "Bistro",
    "Landscaping",
    "Plumbing",
    "Labs",
    "Traders LLC",
    "Media Group",
    "Designs Inc",
    "Yoga",
    "Bikes",
]
BUSINESS_BARE = (
    "Acme",
    "Brightwave",
    "Zephyrly",
    "Kestrel & Finch",
    "Lumina Health",
    "Orbitly",
    "Tandem Works",
)
DOMAINS = (
    "gmail.com",
    "outlook.com",
    "acme.io",
    "bluebird-bakery.com",
    "mail.example.org",
    "posteo.de",
    "company.co.uk",
)
STREETS = (
    "Elm",
    "Oak",
    "Maple",
    "Sunset",
    "Mission",
    "Baker",
    "Market",
    "Lincoln",
    "Cedar Hill",
    "Harbor View",
)
SUFFIXES = ("Street", "St", "Avenue", "Ave", "Road", "Blvd", "Lane", "Drive", "Court", "Way", "Place")
CITIES = (
    ("Austin", "TX"),
    ("Portland", "OR"),
    ("Denver", "CO"),
    ("Boston", "MA"),
    ("Chicago", "IL"),
    ("Seattle", "WA"),
)

FILLER = (
    "We are redesigning the homepage before the spring launch and want it to feel warmer.",
    "The hero section should lead with the seasonal menu and a clear call to action.",
    "Please keep the tone friendly but not too casual, our customers are mostly families.",
    "Last time the testimonials block looked cramped on mobile, so give it more room.",
    "I would also like a pricing table with three tiers and a short FAQ underneath.",
    "Can you make the footer simpler and move the newsletter signup above it?",
    "Our brand colours are navy and a soft yellow, and we use rounded buttons everywhere.",
    "The previous version was fine overall but the copy felt generic and a bit long.",
    "It would help to show opening hours near the top because people keep asking.",
    "We just opened a second location and want both shops on the same page.",
    "Honestly the last draft was great, just a few tweaks to the wording needed.",
    "Add a gallery with six photos of the shop and the team at work.",
    "Our audience is small business owners who are busy and skim everything.",
    "Make sure the contact form only asks for the essentials, nobody likes long forms.",
    "I saved the earlier version but the colours clashed with our logo.",
    "The podcast episode covered pricing strategy and how to talk to first customers.",
)

PII_SENTENCES = (
    "Hi, my name is {person} and I run {business} downtown.",
    "You can reach me at {email} if anything is unclear.",
    "Call me on {phone} any weekday after ten.",
    "Our shop is at {address} if you want to mention the location.",
    "I spoke with {person} yesterday and {first} agreed with the new layout.",
    "Please send the invoice to {email} and copy {first} on it.",
    "The billing card on file is {card}, please update the receipt footer.",
    "Our office moved to {address} last month.",
    "For the wire transfer use IBAN {iban} with the order number as reference.",
    "My SSN is {ssn} for the payroll form, do not publish it obviously.",
    "The staging server is at {ip} and the admin panel only allows that address.",
    "Thanks for the help, {first} from {business}.",
    "{person} will review it, you can also text {phone}.",
    "Ask for {first} at the front desk, or call {phone}.",
    "We partner with {business} for catering, contact {person} at {email}.",
    "Ship the samples to {address}, attention {person}.",
    "Login attempts came from {ip} so we blocked it.",
    "My colleague {first} handles payments, the card ending list shows {card}.",
    "Regards,\n{person}",
    "Dr. {last} recommended we add a booking widget.",
    "Please use tax id {ssn} on the contract for {business}.",
    "Refunds go to {iban}, account holder {person}.",
)


def _phone(rng: random.Random) -> str:
    def d(n: int) -> str:
        return "".join(rng.choice(string.digits) for _ in range(n))

    area = str(rng.randint(201, 989))
    line = f"01{d(2)}"
    return rng.choice(
        (
            f"({area}) 555-{line}",
            f"{area}-555-{line}",
            f"{area}.555.{line}",
            f"+1 {area} 555 {line}",
            f"+1-{area}-555-{line}",
            f"555-{line}",
            f"+44 20 {d(4)} {d(4)}",
            f"+44 7700 {d(6)}",
            f"020 {d(4)} {d(4)}",
            f"+49 30 {d(8)}",
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+91 9{d(4)} {d(5)}",
            f"+61 2 {d(4)} {d(4)}",
            f"+55 11 9{d(4)}-{d(4)}",
            f"{area}555{line}",
        )
    )


def _address(rng: random.Random) -> str:
    number = rng.randint(1, 9999)
    street = f"{number}{rng.choice(('', '', '', 'B'))} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    city, state = rng.choice(CITIES)
    return rng.choice(
        (
            street,
            f"{street}, Apt {rng.randint(1, 40)}",
            f"{street}, {city}, {state} {rng.randint(10000, 99999)}",
            f"{street}, Suite {rng.randint(100, 900)}, {city}, {state} {rng.randint(10000, 99999)}",
            f"{rng.randint(1, 300)} Baker Street, London NW1 6XE",
            f"{rng.choice(('Haupt', 'Linden', 'Garten', 'Berg'))}straße {rng.randint(1, 120)}, {rng.randint(10000, 99999)} Berlin",
            f"{rng.randint(1, 80)} rue de Rivoli, 75001 Paris",
            f"P.O. Box {rng.randint(100, 9999)}",
        )
    )


def _ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    digits = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    return digits if rng.random() < 0.8 else digits.replace("-", "")


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    if rng.random() < 0.5:
        return "2001:db8::" + ":".join(groups[:3])
    return ":".join(groups)


def make_message(rng: random.Random, target_words: int = 100) -> Message:
    """One ~`target_words`-word message with 2..5 PII sentences mixed into filler."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    person = f"{first} {last}"
    if rng.random() < 0.75:
        business = f"{rng.choice(BUSINESS_A)} {rng.choice(BUSINESS_B)}"
    else:
        business = rng.choice(BUSINESS_BARE)
    values = {
        "person": ("person", person),
        "first": ("first_name", first),
        "last": ("person", last),
        "business": ("business", business),
        "email": (
            "email",
            f"{first.lower()}.{last.lower().replace(chr(39), '')}{rng.choice(('', '', rng.randint(1, 99)))}@{rng.choice(DOMAINS)}",
        ),
        "phone": ("phone", _phone(rng)),
        "address": ("address", _address(rng)),
        "card": ("card", credit_card(rng)),
        "iban": ("iban", iban(rng)),
        "ssn": ("national_id", _ssn(rng)),
        "ip": ("ip", _ip(rng)),
    }
    pii = rng.sample(PII_SENTENCES, rng.randint(2, 5))
    filler = rng.sample(FILLER, len(FILLER))
    order: list[str] = []
    while filler and sum(len(s.split()) for s in order + pii) < target_words:
        order.append(filler.pop())
    for sentence in pii:
        order.insert(rng.randint(0, len(order)), sentence)
    text, entities = "", []
    for sentence in order:
        if text:
            text += " "
        pos = 0
        while True:
            open_ = sentence.find("{", pos)
            if open_ < 0:
                text += sentence[pos:]
                break
            close = sentence.index("}", open_)
            text += sentence[pos:open_]
            kind, value = values[sentence[open_ + 1 : close]]
            entities.append(Entity(kind, len(text), len(text) + len(value), value))
            text += value
            pos = close + 1
    return Message(text, entities)


def build_corpus(n: int = 1000, seed: int = 7, target_words: int = 100) -> list[Message]:
    """`n` labelled messages, the same for the same seed."""
    rng = random.Random(seed)
    return [make_message(rng, target_words) for _ in range(n)]


def covered(entity: Entity, spans: Iterable[tuple[int, int]]) -> bool:
    """Whether the spans cover every letter and digit of the entity."""
    hit = [False] * (entity.end - entity.start)
    for start, end in spans:
        for i in range(max(start, entity.start), min(end, entity.end)):
            hit[i - entity.start] = True
    return all(h or not entity.text[i].isalnum() for i, h in enumerate(hit))


def recall(
    corpus: Sequence[Message], spans: Sequence[Iterable[tuple[int, int]]]
) -> dict[str, dict[str, float | int]]:
    """Per-kind recall: {kind: {"found", "total", "recall"}} from each message's detected spans."""
    found: Counter = Counter()
    total: Counter = Counter()
    missed: dict[str, list[str]] = defaultdict(list)
    for message, detected in zip(corpus, spans, strict=True):
        detected = list(detected)
        for entity in message.entities:
            total[entity.kind] += 1
            if covered(entity, detected):
                found[entity.kind] += 1
            elif len(missed[entity.kind]) < 5:
                missed[entity.kind].append(entity.text)
    return {
        kind: {
            "found": found[kind],
            "total": total[kind],
            "recall": found[kind] / total[kind],
            "missed": missed[kind],
        }
        for kind in KINDS
        if total[kind]
    }
