"""Redocly's order of array keys, and the contract's key names written out bit by bit: the
references the Python client's codec is tested against."""

from kvs_client.keys import ALPHABET, js_number_text

TYPE_RANK = {str: 0, float: 1, int: 1, bool: 2}


def reference_name(key: list) -> str:
    """The contract's encoding written out bit by bit, independently of the client's use of
    the base64 module."""
    name = ""
    for part in key:
        if isinstance(part, bool):
            text, mark = ("true" if part else "false"), "/"
        elif isinstance(part, int | float):
            text, mark = js_number_text(part), "."
        else:
            text, mark = part, "-"
        bits = "".join(f"{byte:08b}" for byte in text.encode("utf-8"))
        bits += "0" * (-len(bits) % 6)
        chars = "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))
        name += (chars or "0") + mark
    return name


def redocly_compare(a, b) -> int:
    """Redocly's key order: part by part by text (code point order), at equal text
    string < number < boolean; a key before the longer keys it is a prefix of."""
    for x, y in zip(a, b, strict=False):
        tx, ty = part_text(x), part_text(y)
        if tx != ty:
            return -1 if tx < ty else 1
        rx, ry = TYPE_RANK[type(x)], TYPE_RANK[type(y)]
        if rx != ry:
            return -1 if rx < ry else 1
    return (len(a) > len(b)) - (len(a) < len(b))


def part_text(part) -> str:
    if isinstance(part, bool):
        return "true" if part else "false"
    if isinstance(part, int | float):
        return js_number_text(part)
    return part
