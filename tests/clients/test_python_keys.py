"""The Python client's array-key codec (clients/python/src/kvs_client/keys.py) against the
contract (/v2 key names, order-preserving base64 with type marks), the golden vectors it
shares with the JS client, and JavaScript itself where node is installed."""

import json
import math
import random
import shutil
import struct
import subprocess
from functools import cmp_to_key
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from kvs_client import decode_key, encode_key
from kvs_client.keys import ALPHABET, js_number_text

from tests.clients.key_order import TYPE_RANK, redocly_compare, reference_name

GOLDEN = Path(__file__).resolve().parents[2] / "clients" / "keys-golden.json"


def typed(key) -> list:
    """The key with each part's type rank, so that True and 1 (equal in Python) differ."""
    return [(TYPE_RANK[type(part)], part) for part in key]


def sign(n: int) -> int:
    return (n > 0) - (n < 0)


# -- JavaScript's String(n) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (-0.0, "0"),
        (1, "1"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (0.1, "0.1"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (123.456, "123.456"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1.2345678901234568e20, "123456789012345680000"),
        (1e21, "1e+21"),
        (10**21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_numbers_print_as_javascript_prints_them(number, text):
    assert js_number_text(number) == text


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf, 2**53 + 1, 10**400])
def test_numbers_javascript_cannot_hold_are_refused(number):
    with pytest.raises(ValueError):
        encode_key(["n", number])


def test_booleans_are_not_numbers():
    assert encode_key([True]) != encode_key([1])
    assert decode_key(encode_key([True])) == (True,)
    assert type(decode_key(encode_key([1]))[0]) is int


@pytest.mark.parametrize(
    ("number", "decoded"),
    [(1.0, 1), (-0.0, 0), (42, 42), (1.5, 1.5), (1e21, 1e21), (2**53, 2**53), (1e20, 1e20)],
)
def test_decoded_numbers_are_int_when_integral_and_safe(number, decoded):
    (part,) = decode_key(encode_key([number]))
    assert part == decoded
    assert type(part) is type(decoded)


def test_an_integral_name_past_safe_integers_decodes_to_the_double_javascript_reads():
    (part,) = decode_key(encode_key([1.2345678901234568e20]))
    assert part == 1.2345678901234568e20
    assert type(part) is float
    assert encode_key([part]) == encode_key([1.2345678901234568e20])


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_number_texts_match_node():
    rng = random.Random(16)
    numbers = [0.5, 1e21, 1e-7, 999999999999999900000.0, 1e-6, 1.1e-6, 123e-20, 2**63, -(2**70)]
    numbers += [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(3000)]
    numbers += [rng.uniform(-1e6, 1e6) for _ in range(1000)]
    numbers += [rng.randint(-(2**53), 2**53) for _ in range(1000)]
    numbers += [10.0**e for e in range(-30, 30)] + [1.5 * 10.0**e for e in range(-30, 30)]
    numbers = [n for n in numbers if math.isfinite(n)]
    script = (
        "const ns = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(ns.map(n => String(n))));"
    )
    out = subprocess.run(
        [NODE, "-e", script], input=json.dumps(numbers), capture_output=True, text=True, check=True
    )
    expected = json.loads(out.stdout)
    assert [js_number_text(n) for n in numbers] == expected


# -- encoding -------------------------------------------------------------------------------


def test_the_alphabet_is_in_ascending_byte_order_above_the_marks():
    assert list(ALPHABET) == sorted(ALPHABET) and len(set(ALPHABET)) == 64
    assert max("-./") < min(ALPHABET)


@pytest.mark.parametrize(
    "key",
    [
        ["settings"],
        ["users", "john", "preferences"],
        ["items", 42, True],
        [""],
        ["", 0, False],
        ["日本語", "🎉", "a\x00b"],
        [-1.5, 1e21, 1e-7],
    ],
)
def test_names_follow_the_contract_bit_by_bit(key):
    name = encode_key(key)
    assert name == reference_name(key)
    assert decode_key(name) == tuple(key)


def test_tuples_and_lists_give_the_same_name():
    assert encode_key(("a", 1)) == encode_key(["a", 1])


def test_an_empty_part_is_a_single_zero():
    assert encode_key([""]) == "0-"
    assert encode_key(["", ""]) == "0-0-"


def test_the_name_budget_is_256_characters():
    # 191 bytes take ceil(8 * 191 / 6) = 255 characters, plus the mark.
    assert len(encode_key(["x" * 191])) == 256
    with pytest.raises(ValueError, match="over the limit of 256"):
        encode_key(["x" * 192])
    with pytest.raises(ValueError, match="over the limit of 256"):
        encode_key([""] * 129)
    assert len(encode_key([""] * 128)) == 256


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ([], ValueError),
        ((), ValueError),
        ("abc", TypeError),
        (b"abc", TypeError),
        ({"a": 1}, TypeError),
        (["a", None], TypeError),
        (["a", b"b"], TypeError),
        (["a", ["b"]], TypeError),
        (["\ud800"], ValueError),
    ],
)
def test_keys_that_are_not_array_keys_are_refused(key, error):
    with pytest.raises(error):
        encode_key(key)


def test_an_encoded_name_never_starts_with_an_underscore():
    # `_` would be the server's reserved start; it encodes bits 100101, only ever the start
    # of a UTF-8 continuation byte.
    # A UTF-8 lead byte changes at most every 64 code points: this meets each of them.
    for first in [*range(0x80), *range(0x80, 0x110000, 64)]:
        if not 0xD800 <= first < 0xE000:
            assert not encode_key([chr(first)]).startswith("_")


# -- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "0",
        "-",
        "abc",
        "BF",  # no mark
        "A-",  # one character is no byte
        "BG-",  # padding bits set
        "00000-",  # five characters are no whole bytes either
        "BF/",  # "1" is no boolean
        "SMC_RbB.",  # "users" is no number
        "BHsk.",  # "1.0" is not how String(n) prints 1
        "B34.",  # "01"
        "user/1",
        "config.json",
        "_private",
        "x" * 300 + "-",
    ],
)
def test_names_that_are_not_encodings_are_refused(name):
    with pytest.raises(ValueError):
        decode_key(name)


def test_a_name_over_the_budget_is_not_a_key():
    with pytest.raises(ValueError):
        decode_key(reference_name(["x" * 192]))


# -- properties -----------------------------------------------------------------------------

parts = st.one_of(
    st.text(alphabet="ab\x00é1", max_size=3),
    st.text(st.characters(exclude_categories=("Cs",))),
    st.sampled_from(["1", "10", "2", "true", "false", "", "1e+21", "-1"]),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 1.0, -0.0, 10, 2, 1e21, 1e-7, -1]),
    st.booleans(),
)
keys = st.lists(parts, min_size=1, max_size=4)


def encodable(key) -> str:
    try:
        return encode_key(key)
    except ValueError:
        assume(False)
        raise


@settings(max_examples=1000)
@given(keys, keys)
@example(["a"], ["a", "b"])
@example(["1"], [1])
@example([1], [True])
@example(["true"], [True])
@example([""], ["\x00"])
@example(["a\x00"], ["a"])
@example([10], [2])
def test_byte_order_of_names_is_redoclys_key_order(a, b):
    name_a, name_b = encodable(a), encodable(b)
    expected = sign(redocly_compare(a, b))
    assert sign((name_a > name_b) - (name_a < name_b)) == expected
    # Python compares str by code point, which is the byte order of these ASCII names.
    bytes_a, bytes_b = name_a.encode(), name_b.encode()
    assert sign((bytes_a > bytes_b) - (bytes_a < bytes_b)) == expected


@settings(max_examples=1000)
@given(keys)
def test_decoding_inverts_encoding(key):
    name = encodable(key)
    assert typed(decode_key(name)) == typed(key)
    assert encode_key(decode_key(name)) == name


def test_a_sorted_list_of_names_is_the_sorted_list_of_keys():
    rng = random.Random(7)
    pool = ["a", "apple", "b", "banana", "", "1", "10", "2", 1, 10, 2, -1, 0.5, True, False]
    sample = [[rng.choice(pool) for _ in range(rng.randint(1, 3))] for _ in range(500)]
    by_name = sorted(sample, key=encode_key)
    by_redocly = sorted(sample, key=cmp_to_key(redocly_compare))
    assert [encode_key(k) for k in by_name] == [encode_key(k) for k in by_redocly]


# -- the vectors shared with clients/js -----------------------------------------------------


def golden():
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", golden()["keys"], ids=lambda v: v["name"])
def test_golden_names(vector):
    assert encode_key(vector["key"]) == vector["name"]
    assert reference_name(vector["key"]) == vector["name"]
    assert typed(decode_key(vector["name"])) == typed(vector["key"])


@pytest.mark.parametrize("vector", golden()["refused_keys"], ids=repr)
def test_golden_refused_keys(vector):
    with pytest.raises((ValueError, TypeError)):
        encode_key(vector)


@pytest.mark.parametrize("name", golden()["not_names_of_keys"])
def test_golden_names_that_are_not_keys(name):
    with pytest.raises(ValueError):
        decode_key(name)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_golden_names_match_a_javascript_rendering_of_the_contract():
    """JavaScript's own String(n) and UTF-8, so that the names do not rest on this client's
    imitation of them."""
    script = r"""
const A = "0123456789=ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
const S = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const part = p => {
  const mark = typeof p === "string" ? "-" : typeof p === "number" ? "." : "/";
  const text = String(p);
  const b64 = Buffer.from(text, "utf8").toString("base64").replace(/=/g, "");
  return (b64 ? [...b64].map(c => A[S.indexOf(c)]).join("") : "0") + mark;
};
const vs = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(vs.map(v => v.key.map(part).join(""))));
"""
    vectors = golden()["keys"]
    out = subprocess.run(
        [NODE, "-e", script], input=json.dumps(vectors), capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [v["name"] for v in vectors]
