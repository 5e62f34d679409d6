"""Array keys (Redocly's KvKey) to the server's key names and back.

Each part becomes text (a number as JavaScript's `String(n)`), the text's UTF-8 bytes an
order-preserving base64 (alphabet in ascending byte order, no padding, `0` for no bytes), then
a mark for the part's type. The names sort, byte by byte, as Redocly compares keys: part by
part as strings, a key before the longer keys it is a prefix of, and at equal text
string < number < boolean. The JavaScript client (clients/js) makes the same names.
"""

import base64
import math
import re
from collections.abc import Sequence

KvKeyPart = str | int | float | bool
KvKey = Sequence[KvKeyPart]

MAX_NAME_LENGTH = 256
ALPHABET = "0123456789=ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
STRING_MARK, NUMBER_MARK, BOOLEAN_MARK = "-", ".", "/"
_MARKS = STRING_MARK + NUMBER_MARK + BOOLEAN_MARK

_STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_ORDERED = str.maketrans(_STANDARD, ALPHABET, "=")
_TO_STANDARD = str.maketrans(ALPHABET, _STANDARD)
_PART = re.compile(rf"([{re.escape(ALPHABET)}]+)([{re.escape(_MARKS)}])")
# What String(n) can print; anything else (`1.0`, `01`, `Infinity`) is not a number's text.
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:e[+-][1-9][0-9]*)?")
# JavaScript's safe integers: integral text within them decodes to an int, beyond to a float,
# the value Number(text) has (a larger int may not be a double, and would not encode back).
_MAX_SAFE_INTEGER = 2**53


def js_number_text(n: int | float) -> str:
    """`String(n)` as JavaScript prints the number n (a double): `1` for 1.0, `0` for -0.0,
    `1e+21`, `1e-7`, `0.000001`. ValueError for NaN, the infinities and an int that is no
    double (over 2**53 and not exactly representable, or out of range)."""
    if isinstance(n, int):
        try:
            value = float(n)
        except OverflowError:
            raise ValueError(f"The number {n} is too large for a key.") from None
        if value != n:
            raise ValueError(
                f"The integer {n} is not exactly a JavaScript number (a double); "
                "two keys would share its name."
            )
    else:
        value = n
    if not math.isfinite(value):
        raise ValueError(f"A key's number must be finite, not {value!r}.")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that read back as the same double, as String(n) does;
    # only where the decimal point goes differs between the two.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    # ECMA-262 Number::toString: the value is 0.digits * 10**point.
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    shown = point - 1
    exp = f"e{'+' if shown >= 0 else '-'}{abs(shown)}"
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + exp


def _text_and_mark(part: object) -> tuple[str, str]:
    # bool first: True is also an int.
    if isinstance(part, bool):
        return ("true" if part else "false"), BOOLEAN_MARK
    if isinstance(part, int | float):
        return js_number_text(part), NUMBER_MARK
    if isinstance(part, str):
        return part, STRING_MARK
    raise TypeError(
        f"A key part is a str, int, float or bool, not {type(part).__name__} ({part!r})."
    )


def _encode_part(part: object) -> str:
    text, mark = _text_and_mark(part)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"A key part is text without lone surrogates: {text!r}.") from None
    if not data:
        return "0" + mark
    return base64.b64encode(data).decode("ascii").translate(_TO_ORDERED) + mark


def encode_key(key: KvKey) -> str:
    """The key name of an array key: the parts' encodings concatenated. TypeError for a key
    that is not a list or tuple of str, int, float and bool; ValueError for an empty key, a
    number that is not finite (or an int that is no double), a lone surrogate, or a name over
    256 characters (a part of n UTF-8 bytes takes ceil(8n/6) characters, at least 1, plus 1)."""
    if not isinstance(key, list | tuple):
        raise TypeError(f"A key is a list or tuple of parts, not {type(key).__name__}.")
    if not key:
        raise ValueError("A key has at least one part.")
    name = "".join(_encode_part(part) for part in key)
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"The key {list(key)!r} takes {len(name)} characters, over the limit of "
            f"{MAX_NAME_LENGTH} (a part of n UTF-8 bytes takes ceil(8n/6) characters, "
            "at least 1, plus 1)."
        )
    return name


def _decode_number(text: str) -> int | float:
    if not _NUMBER_TEXT.fullmatch(text):
        raise ValueError(f"{text!r} is not a number's text.")
    value = float(text)
    # Only String(n)'s own output is a number part: any other spelling would be a second
    # name for the same key.
    if js_number_text(value) != text:
        raise ValueError(f"{text!r} is not how JavaScript prints {value!r}.")
    if "." not in text and "e" not in text and abs(value) <= _MAX_SAFE_INTEGER:
        return int(text)
    return value


def _decode_part(encoded: str, mark: str) -> KvKeyPart:
    if encoded == "0":
        text = ""
    else:
        standard = encoded.translate(_TO_STANDARD)
        try:
            data = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except ValueError:
            raise ValueError(f"{encoded!r} is not an encoded part.") from None
        # The encoding of those bytes, or the name was not made by encode_key (padding bits
        # set, a stray character): refused, so that each key has one name.
        if not data or _encode_part(data.decode("utf-8")) != encoded + STRING_MARK:
            raise ValueError(f"{encoded!r} is not an encoded part.")
        text = data.decode("utf-8")
    if mark == STRING_MARK:
        return text
    if mark == NUMBER_MARK:
        return _decode_number(text)
    if text not in ("true", "false"):
        raise ValueError(f"{text!r} is not a boolean's text.")
    return text == "true"


def decode_key(name: str) -> tuple[KvKeyPart, ...]:
    """The array key whose name is `name` (encode_key's inverse), as a tuple. Numbers come
    back as int when their text is integral (no `.` or `e`) within ±2**53, else as float.
    ValueError for a name that encode_key does not make."""
    parts: list[KvKeyPart] = []
    position = 0
    while position < len(name):
        match = _PART.match(name, position)
        if match is None:
            raise ValueError(f"{name!r} is not an encoded key.")
        try:
            parts.append(_decode_part(match[1], match[2]))
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"{name!r} is not an encoded key.") from None
        position = match.end()
    if not parts or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{name!r} is not an encoded key.")
    return tuple(parts)


def is_key_name(name: str) -> bool:
    """Whether `name` is the encoding of an array key."""
    try:
        decode_key(name)
    except ValueError:
        return False
    return True
