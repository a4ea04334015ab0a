"""Checksums that tell a real card number or IBAN from a random run of digits."""

from __future__ import annotations


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check that every payment card number passes."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """An IBAN of a country in the IBAN registry, with that country's length and BBAN layout and the
    ISO 13616 mod-97 check, written with or without spaces (python-stdnum's registry).

    The mod-97 check alone passes about 1 random alphanumeric run in 97, so a 16-character hex
    hash such as an anonymized user id would pass it once in ~1,900; the country's length and
    BBAN layout (Belgium: 16 characters, all digits after the check) turn those away. National
    check digits inside the BBAN (Spain's, France's) are not required: an IBAN with a typo in
    them is still somebody's account number.
    """
    from stdnum import iban as stdnum_iban
    from stdnum.exceptions import ValidationError

    compact = "".join(iban.split()).upper()
    if not compact.isalnum():
        return False
    try:
        stdnum_iban.validate(compact, check_country=False)
    except ValidationError:
        return False
    return True


#: Leading digits of the card networks (IIN ranges): Visa 4; Mastercard 51-55 and 2221-2720; Amex
#: 34, 37; Discover 6011, 644-649, 65; Diners 300-305, 36, 38, 39; JCB 3528-3589, 3088, 3096, 3112,
#: 3158, 3337, 2131, 1800; Maestro 50, 56-69 and 0604; UnionPay 62; RuPay 60, 65, 81, 82; Mir 2200-2204.
def card_issuer_ok(digits: str) -> bool:
    """Whether `digits` start like a payment card of a known network (any length 12..19)."""
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    first, two, four = digits[0], int(digits[:2]), int(digits[:4])
    if first in "456":
        return True
    if first == "3":  # Amex, Diners and JCB share the 3s
        return True
    if first == "2":
        return 2221 <= four <= 2720 or 2200 <= four <= 2204 or four == 2131
    if first == "1":
        return four == 1800
    if first == "8":
        return two in (81, 82)
    return four == 604  # UK Maestro 0604


def card_ok(digits: str) -> bool:
    """A payment card number: 12..19 digits, a known network's prefix, the Luhn check, not one repeated digit."""
    return card_issuer_ok(digits) and luhn_ok(digits) and len(set(digits)) > 1


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def national_id_ok(value: str) -> bool:
    """Checksummed national ids that are safe to take without a label: Spanish DNI/NIE, French NIR,
    Polish PESEL, Swedish personnummer (with its dash), Italian codice fiscale (its format).

    Dutch BSNs pass their eleven-test for one random 9-digit number in eleven: only taken after a label.
    """
    compact = "".join(ch for ch in value if ch.isalnum()).upper()
    if len(compact) == 9 and compact[:8].isdigit() and compact[8].isalpha():  # DNI
        return _DNI_LETTERS[int(compact[:8]) % 23] == compact[8]
    if len(compact) == 9 and compact[0] in "XYZ" and compact[1:8].isdigit() and compact[8].isalpha():  # NIE
        return _DNI_LETTERS[int(str("XYZ".index(compact[0])) + compact[1:8]) % 23] == compact[8]
    if len(compact) == 15 and compact[0] in "12" and compact[5:7] in ("2A", "2B"):  # NIR, Corsica
        compact = compact[:5] + ("19" if compact[6] == "A" else "18") + compact[7:]
    if not compact.isdigit():
        return len(compact) == 16 and _codice_fiscale_shape(compact)
    if len(compact) == 15 and compact[0] in "12":  # NIR: key = 97 - (13 digits mod 97)
        return 97 - int(compact[:13]) % 97 == int(compact[13:])
    if len(compact) == 11:  # PESEL
        weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
        return (10 - sum(int(d) * w for d, w in zip(compact, weights, strict=False)) % 10) % 10 == int(
            compact[10]
        )
    if len(compact) in (10, 12) and any(ch in value for ch in "-+"):  # personnummer YYMMDD-XXXX
        return luhn_ok(compact[-10:])
    return False


def _codice_fiscale_shape(code: str) -> bool:
    return (
        code[:6].isalpha()
        and code[6:8].isdigit()
        and code[8] in "ABCDEHLMPRST"
        and code[9:11].isdigit()
        and code[11].isalpha()
        and code[12:15].isdigit()
        and code[15].isalpha()
    )
