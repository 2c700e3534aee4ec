"""Strict JSON for untrusted text, with the verdicts of nlohmann::json (the C++ parser): UTF-8 only,
no NaN/Infinity literals, no number overflow, no unpaired surrogates, no duplicate keys, and a
nesting bound checked by a linear scan before the (recursive) parser runs. Every failure is a
ValueError subclass (JsonError)."""
import json
import re

# Integers nlohmann stores as int64 / uint64; others become doubles (and overflow is an error).
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
# A string runs to its closing quote or, unterminated, to the end of the text (so that the scan stays
# linear on hostile text; the parser refuses such text afterwards).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.|\\\Z)*(?:"|\Z)|[\[\]{}]', re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")
_BOM = "\ufeff"


class JsonError(ValueError):
    pass


def _pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise JsonError(f"duplicate key {k[:200]!r}")
        out[k] = v
    return out


def _int(s):
    try:
        v = int(s)
    except ValueError:  # more digits than int() takes (Python >= 3.11): a double, as in nlohmann
        v = None
    if v is not None and INT64_MIN <= v <= UINT64_MAX:
        return v
    return _float(s)


def _float(s):
    f = float(s)
    if f in (float("inf"), float("-inf")):
        raise JsonError(f"number overflow parsing '{s[:60]}'")
    return f


def _constant(s):
    raise JsonError(f"'{s}' is not JSON")


def nesting_depth(text, limit):
    """The bracket nesting of `text` outside strings, stopping once it exceeds `limit`."""
    depth = 0
    for m in _TOKEN.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > limit:
                return depth
        elif c in "]}":
            depth -= 1
    return max(depth, 0)


def _check_strings(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                raise JsonError("a string holds an unpaired UTF-16 surrogate escape")
        elif isinstance(v, dict):
            for k, x in v.items():
                if _SURROGATE.search(k):
                    raise JsonError("a key holds an unpaired UTF-16 surrogate escape")
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)


def loads(data, max_depth):
    """Parses `data` (bytes: UTF-8; or str) strictly; raises JsonError on anything nlohmann refuses,
    on duplicate keys, and on nesting deeper than `max_depth`."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError(f"invalid UTF-8: {e}") from None
    if data.startswith(_BOM):  # nlohmann skips a leading UTF-8 byte order mark
        data = data[1:]
    if nesting_depth(data, max_depth) > max_depth:
        raise JsonError(f"nests deeper than {max_depth} levels")
    try:
        value = json.loads(data, object_pairs_hook=_pairs, parse_int=_int, parse_float=_float,
                           parse_constant=_constant)
    except JsonError:
        raise
    except (ValueError, RecursionError) as e:
        raise JsonError(str(e)[:300]) from None
    _check_strings(value)
    return value


def is_int(v):
    """A JSON integer (nlohmann is_number_integer): int, not bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def as_int64(v):
    """nlohmann's get<int64_t>() of an integer: uint64 values above INT64_MAX wrap to negative."""
    return v - (1 << 64) if v > INT64_MAX else v
