"""What a stored value is when it has to travel inside a JSON document: the JSON it holds, text,
or bytes, told from its bytes and its Content-Type.

Every surface that carries values in JSON uses this one reading, so that a value reads the same
whichever surface wrote it.
"""

import base64
import binascii
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


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def is_json_type(content_type: str) -> bool:
    """`application/json` or `application/<anything>+json`, with any parameters."""
    return _is_json_media(_media_type(content_type))


def refuse_json_constant(name: str) -> None:
    """The `parse_constant` of json.loads for RFC 8259 JSON: NaN and Infinity are not JSON."""
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
        return type(json.loads(bytes(value).decode("utf-8"), parse_constant=refuse_json_constant))
    except RecursionError as err:
        raise ValueError("JSON nested too deeply") from err


def encoding_of(value: bytes, content_type: str) -> Encoding:
    """How the value is carried in JSON: its JSON when its type is JSON and it parses, text
    when its type is `text/*` and it is UTF-8, else base64."""
    media = _media_type(content_type)
    if _is_json_media(media):
        try:
            kind = json_type(value)
        except ValueError:
            return Encoding.BASE64
        return Encoding.OBJECT if kind is dict else Encoding.JSON
    if media.startswith("text/"):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return Encoding.BASE64
        return Encoding.TEXT
    return Encoding.BASE64


# What a value written in JSON is stored as when no content type is given with it.
DEFAULT_CONTENT_TYPES = {
    Encoding.JSON: "application/json",
    Encoding.TEXT: "text/plain; charset=utf-8",
    Encoding.BASE64: "application/octet-stream",
}


def carried(value: bytes, content_type: str) -> tuple[Encoding, object]:
    """The value as it travels in a JSON document: its encoding (`json`, `text` or `base64`)
    and its data. JSON is the stored bytes themselves (an orjson.Fragment), so that it reads
    back exactly as written, whatever its spacing or number spelling."""
    encoding = encoding_of(value, content_type)
    if encoding is Encoding.OBJECT or encoding is Encoding.JSON:
        return Encoding.JSON, orjson.Fragment(bytes(value))
    if encoding is Encoding.TEXT:
        return encoding, bytes(value).decode("utf-8")
    return encoding, binascii.b2a_base64(value, newline=False).decode("ascii")


class NotStorable(ValueError):
    """A value carried in JSON that cannot be stored as given; `field` is what is wrong with
    it (`encoding`, `content_type` or `data`), the message one sentence for a person."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def stored(encoding: object, data: object, content_type: str | None) -> tuple[bytes, str]:
    """The bytes and content type that a value carried in JSON stands for, such that
    `carried` gives the same encoding and data back; NotStorable when it cannot be stored
    that way.

    `data` is as the standard library's json module parsed it (so that integers keep every
    digit); JSON is stored in its compact form."""
    if encoding not in (Encoding.JSON, Encoding.TEXT, Encoding.BASE64):
        raise NotStorable("'encoding' must be one of json, text, base64.", "encoding")
    encoding = Encoding(encoding)
    content_type = DEFAULT_CONTENT_TYPES[encoding] if content_type is None else content_type
    if encoding is Encoding.JSON:
        if not is_json_type(content_type):
            raise NotStorable(
                "A json value needs a JSON content type (application/json).", "content_type"
            )
        try:
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            return text.encode("utf-8"), content_type
        except (ValueError, RecursionError) as err:  # a number beyond a double, a lone surrogate
            raise NotStorable("'data' is not JSON that can be stored exactly.", "data") from err
    if not isinstance(data, str):
        raise NotStorable(f"A {encoding.value} value's 'data' must be a string.", "data")
    if encoding is Encoding.TEXT:
        if not _media_type(content_type).startswith("text/"):
            raise NotStorable("A text value needs a text/* content type.", "content_type")
        try:
            return data.encode("utf-8"), content_type
        except UnicodeEncodeError as err:
            raise NotStorable("'data' holds a lone surrogate, which is not text.", "data") from err
    try:
        return base64.b64decode(data, validate=True), content_type
    except ValueError as err:
        raise NotStorable("'data' is not standard base64.", "data") from err
