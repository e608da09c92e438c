"""Resource quantities (`100m`, `1.5Gi`, `1e3`, `128974848`): one grammar for the API server's
validation and the scheduler's arithmetic.

The grammar is apimachinery's `resource.Quantity`:

    quantity ::= [sign] number suffix
    number   ::= digits | digits "." [digits] | "." digits
    suffix   ::= "" | binarySI | decimalSI | ("e" | "E") [sign] digits
    binarySI ::= Ki | Mi | Gi | Ti | Pi | Ei
    decimalSI::= n | u | m | k | M | G | T | P | E

so `1E` is one exa (a suffix), `1e3` is a thousand (an exponent), `1K` and `1e` are errors.
Values are exact (`Fraction`): `0.1` CPU is 100 millicores, never 99 from a float rounding.
Why one module: the validator and the scheduler used two regular expressions that disagreed
(`1e3Mi` passed one and not the other), so a pod could be admitted and then be unschedulable
for a reason no one printed.
"""

from __future__ import annotations

import re
from fractions import Fraction

# the message upstream's decoder gives for a malformed quantity
FORMAT_MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

BINARY_SI = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL_SI = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
              "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                       r"(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?")


def parse_quantity(q) -> Fraction:
    """A quantity (string, or a JSON number) as an exact number; ValueError with upstream's
    message when it is not one."""
    if isinstance(q, bool):
        raise ValueError(FORMAT_MESSAGE)
    if isinstance(q, int):
        return Fraction(q)
    if isinstance(q, float):
        return Fraction(repr(q))
    if not isinstance(q, str):
        raise ValueError(FORMAT_MESSAGE)
    m = _QUANTITY.fullmatch(q)
    if not m:
        raise ValueError(FORMAT_MESSAGE)
    sign, number, suffix = m.group(1), m.group(2), m.group(3) or ""
    value = Fraction(number.rstrip(".") if not number.endswith(".") else number[:-1])
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        value *= Fraction(10) ** int(suffix[1:])
    else:
        value *= BINARY_SI.get(suffix) or DECIMAL_SI[suffix]
    return -value if sign == "-" else value


def is_quantity(q) -> bool:
    try:
        parse_quantity(q)
    except ValueError:
        return False
    return True


def milli_value(q) -> int:
    """The value in thousandths rounded up, as Quantity.MilliValue (CPU in millicores)."""
    v = parse_quantity(q) * 1000
    return -((-v.numerator) // v.denominator)


def value(q) -> int:
    """The value rounded up to an integer, as Quantity.Value (bytes, pods)."""
    v = parse_quantity(q)
    return -((-v.numerator) // v.denominator)
