"""Personal data for synthetic text: small generators, one per kind, in the formats real users type.

Every generator takes a `random.Random` and returns a string, so output is deterministic in the
seed. Card numbers pass the Luhn check and IBANs their mod-97 check, because recognizers validate
them; SSNs avoid the area numbers the SSA never issues. `PiiSource` wraps them and logs each value
it hands out, so tests and the anonymization stage can check that none of them survive.
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Jane",
    "Carlos",
    "Priya",
    "Liam",
    "Aisha",
    "Mei",
    "Oluwaseun",
    "Sofia",
    "Jonas",
    "Fatima",
    "Mateo",
    "Hannah",
    "Kenji",
    "Zoe",
    "Tomasz",
    "Amara",
    "Noah",
    "Ingrid",
    "Rahul",
    "Chloé",
    "José",
    "Lena",
    "Dmitri",
    "Grace",
    "Marcus",
    "Yuki",
    "Elena",
    "Samuel",
    "Nadia",
    "Oscar",
)
LAST_NAMES = (
    "Doe",
    "Martinez",
    "Patel",
    "O'Brien",
    "Okafor",
    "Chen",
    "Adeyemi",
    "Rossi",
    "Müller",
    "Haddad",
    "García",
    "Schmidt",
    "Tanaka",
    "Williams",
    "Kowalski",
    "Nwosu",
    "Johnson",
    "Larsen",
    "Sharma",
    "Dubois",
    "Fernández",
    "Weber",
    "Ivanov",
    "Kim",
    "Nguyen",
    "Brennan",
    "Silva",
    "Novak",
)
MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "fastmail.com", "web.de")
US_CITIES = (
    ("Springfield", "IL", "627"),
    ("Austin", "TX", "787"),
    ("Denver", "CO", "802"),
    ("Portland", "OR", "972"),
    ("Brooklyn", "NY", "112"),
    ("Madison", "WI", "537"),
    ("Savannah", "GA", "314"),
    ("Tucson", "AZ", "857"),
)
US_STREETS = ("Maple", "Oak", "Cedar", "Elm", "Washington", "Lake", "Hillcrest", "Sunset", "Park", "Mill")
US_SUFFIXES = ("Street", "St.", "Avenue", "Ave", "Road", "Rd.", "Boulevard", "Lane", "Drive", "Court")
UK_STREETS = ("Baker Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "Queens Road")
UK_TOWNS = (("London", "NW1 6XE"), ("Manchester", "M4 1HN"), ("Leeds", "LS1 4DY"), ("Bristol", "BS1 5TR"))
DE_STREETS = ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee", "Am Markt")
DE_TOWNS = (("10115", "Berlin"), ("24103", "Kiel"), ("80331", "München"), ("50667", "Köln"))
BUSINESS_ADJ = (
    "Harbor",
    "Blue Fern",
    "Northwind",
    "Copper",
    "Maple",
    "Silverline",
    "Juniper",
    "Red Kite",
    "Golden Hour",
    "Little Owl",
    "Saltwater",
    "Evergreen",
    "Brightside",
    "Kessler",
    "Alder",
)
BUSINESS_KIND = (
    "Bakery",
    "Sailing School",
    "Dental Group",
    "Yoga Studio",
    "Cycles",
    "Law Partners",
    "Coffee Roasters",
    "Realty",
    "Language Academy",
    "Photography",
    "Hair Studio",
    "Labs",
)
BUSINESS_FORM = ("", "", " GmbH", " LLC", " Ltd", " & Co.", " Inc.")


def person_name(rng: random.Random) -> str:
    """A full name, sometimes with a middle initial or a title."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    roll = rng.random()
    if roll < 0.15:
        return f"{first} {rng.choice('ABCDEFGHJKLMNPRST')}. {last}"
    if roll < 0.22:
        return f"{rng.choice(('Dr.', 'Ms.', 'Mr.', 'Prof.'))} {first} {last}"
    return f"{first} {last}"


def _ascii(word: str) -> str:
    table = str.maketrans({"é": "e", "á": "a", "ü": "u", "ö": "o", "ä": "a", "ß": "ss", "'": "", " ": ""})
    return word.translate(table).lower()


def email(rng: random.Random, name: str | None = None) -> str:
    """An address, derived from `name` when given (first.last, flast42, first_l)."""
    parts = (name or person_name(rng)).replace(".", "").split()
    parts = [p for p in parts if p not in ("Dr", "Ms", "Mr", "Prof") and len(p) > 1] or ["info"]
    first, last = _ascii(parts[0]), _ascii(parts[-1])
    local = rng.choice(
        (f"{first}.{last}", f"{first[0]}{last}{rng.randint(1, 99)}", f"{first}_{last[0]}", first)
    )
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def phone_us(rng: random.Random) -> str:
    """A US number in one of the ways people write it."""
    area, exchange, line = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice(
        (
            f"({area}) {exchange}-{line:04d}",
            f"{area}-{exchange}-{line:04d}",
            f"+1 {area} {exchange} {line:04d}",
            f"{area}.{exchange}.{line:04d}",
            f"+1-{area}-{exchange}-{line:04d}",
        )
    )


def phone_intl(rng: random.Random) -> str:
    """A non-US number with its country code: UK, Germany, France, India, Brazil, Australia."""
    d = rng.randint
    return rng.choice(
        (
            f"+44 20 7946 {d(0, 9999):04d}",
            f"+44 7700 {d(100000, 999999)}",
            f"+49 30 {d(1000000, 99999999)}",
            f"+49 (0)151 {d(1000000, 9999999)}",
            f"+33 6 {d(10, 99)} {d(10, 99)} {d(10, 99)} {d(10, 99)}",
            f"+91 98{d(100, 999)} {d(10000, 99999)}",
            f"+55 11 9{d(1000, 9999)}-{d(1000, 9999)}",
            f"+61 4{d(10, 99)} {d(100, 999)} {d(100, 999)}",
        )
    )


def phone(rng: random.Random) -> str:
    return phone_us(rng) if rng.random() < 0.6 else phone_intl(rng)


def street_address(rng: random.Random) -> str:
    """A postal address: US (most), UK or German style."""
    roll = rng.random()
    if roll < 0.6:
        city, state, zip3 = rng.choice(US_CITIES)
        unit = f" Apt {rng.randint(1, 40)}{rng.choice('ABCD')}" if rng.random() < 0.25 else ""
        street = f"{rng.randint(1, 9899)} {rng.choice(US_STREETS)} {rng.choice(US_SUFFIXES)}"
        return f"{street}{unit}, {city}, {state} {zip3}{rng.randint(0, 99):02d}"
    if roll < 0.8:
        town, postcode = rng.choice(UK_TOWNS)
        flat = f"Flat {rng.randint(1, 12)}, " if rng.random() < 0.4 else ""
        return f"{flat}{rng.randint(1, 220)} {rng.choice(UK_STREETS)}, {town} {postcode}"
    postcode, town = rng.choice(DE_TOWNS)
    return f"{rng.choice(DE_STREETS)} {rng.randint(1, 120)}, {postcode} {town}"


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def luhn_check_digit(digits: str) -> int:
    """The digit that makes `digits + it` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return (10 - total % 10) % 10



def credit_card(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, grouped with spaces, dashes or not at all."""
    brand = rng.random()
    if brand < 0.5:
        body = "4" + _digits(rng, 14)
    elif brand < 0.85:
        body = str(rng.randint(51, 55)) + _digits(rng, 13)
    else:
        body = rng.choice(("34", "37")) + _digits(rng, 12)
    number = body + str(luhn_check_digit(body))
    style = rng.random()
    if style < 0.3:
        return number
    sep = " " if style < 0.75 else "-"
    if len(number) == 15:
        return sep.join((number[:4], number[4:10], number[10:]))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def ipv4(rng: random.Random) -> str:
    """A routable-looking IPv4 address."""
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ssn(rng: random.Random) -> str:
    """A US Social Security number with an issuable area (not 000, 666 or 9xx)."""
    area = rng.randint(1, 898)
    area = 667 if area == 666 else area
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    sep = "-" if rng.random() < 0.8 else " "
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


#: country -> (bank codes that lead the BBAN, or none; digits after them)
_IBAN_LAYOUTS = {
    "DE": ((), 18),
    "FR": ((), 23),
    "ES": ((), 20),
    "GB": (("NWBK", "BARC", "MIDL", "LOYD"), 14),
    "NL": (("ABNA", "INGB", "RABO"), 10),
}


def iban_check_digits(country: str, bban: str) -> str:
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"



def iban(rng: random.Random) -> str:
    """An IBAN with correct check digits (DE, GB, FR, NL, ES), printed compact or in groups of four."""
    country = rng.choice(tuple(_IBAN_LAYOUTS))
    banks, digits = _IBAN_LAYOUTS[country]
    bban = (rng.choice(banks) if banks else "") + _digits(rng, digits)
    value = country + iban_check_digits(country, bban) + bban
    if rng.random() < 0.6:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def business_name(rng: random.Random, kind: str | None = None) -> str:
    """A small business's name, e.g. `Blue Fern Yoga Studio` or `Kessler Dental Group GmbH`."""
    kind = kind.title() if kind else rng.choice(BUSINESS_KIND)
    return f"{rng.choice(BUSINESS_ADJ)} {kind}{rng.choice(BUSINESS_FORM)}"


GENERATORS = {
    "person": person_name,
    "email": email,
    "phone": phone,
    "address": street_address,
    "credit_card": credit_card,
    "ip": ipv4,
    "ssn": ssn,
    "iban": iban,
    "business": business_name,
}
PII_KINDS = tuple(GENERATORS)


class PiiSource:
    """Hands out personal data and remembers every value, as `(kind, value)` pairs in `log`."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.log: list[tuple[str, str]] = []

    def __call__(self, kind: str) -> str:
        value = GENERATORS[kind](self.rng)
        self.log.append((kind, value))
        return value

    def email_for(self, name: str) -> str:
        value = email(self.rng, name)
        self.log.append(("email", value))
        return value

    def business_for(self, kind: str) -> str:
        value = business_name(self.rng, kind)
        self.log.append(("business", value))
        return value

    def take(self) -> tuple[tuple[str, str], ...]:
        """The values handed out since the last call, and forget them."""
        out = tuple(self.log)
        self.log.clear()
        return out
