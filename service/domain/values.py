"""What a stored value is when it has to travel inside a JSON document: the JSON it holds, text,
or bytes, told from its bytes and its Content-Type.

Every surface that carries values in JSON uses this one reading, so that a value reads the same
whichever surface wrote it.
"""

import json
from enum import StrEnum

import orjson


class Encoding(StrEnum):
    """How a value is carried in JSON: a JSON object as itself (`object`), other JSON as
    itself (`json`), UTF-8 text as a string (`text`), anything else as base64 (`base64`)."""

    OBJECT = "object"
    JSON = "json"
    TEXT = "text"
    BASE64 = "base64"


def is_json_type(content_type: str) -> bool:
    """`application/json` or `application/<anything>+json`, with any parameters."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_type(value: bytes) -> type:
    """The type of the JSON value `value` holds (dict for an object, list, str, int, float,
    bool or NoneType); ValueError unless it is JSON text (RFC 8259: UTF-8 without a BOM, no
    NaN or Infinity)."""
    try:
        return type(orjson.loads(value))
    except orjson.JSONDecodeError:
        pass
    # What orjson refuses and JSON allows: numbers beyond a double, escaped lone surrogates.
    # Nesting deeper than both parsers go (about a thousand levels) is refused.
    try:
        return type(json.loads(bytes(value).decode("utf-8"), parse_constant=_refuse_constant))
    except RecursionError as err:
        raise ValueError("JSON nested too deeply") from err


def encoding_of(value: bytes, content_type: str) -> Encoding:
    """How the value is carried in JSON: its JSON when its type is JSON and it parses, text
    when its type is `text/*` and it is UTF-8, else base64."""
    if is_json_type(content_type):
        try:
            kind = json_type(value)
        except ValueError:
            return Encoding.BASE64
        return Encoding.OBJECT if kind is dict else Encoding.JSON
    if content_type.partition(";")[0].strip().lower().startswith("text/"):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return Encoding.BASE64
        return Encoding.TEXT
    return Encoding.BASE64
