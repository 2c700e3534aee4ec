"""A minimal safetensors reader and writer (standard library + torch; no `safetensors` package).

File layout: an 8-byte little-endian header length N, N bytes of JSON ({key: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {str: str}}), then the raw little-endian tensor bytes.

The reader refuses exactly what the C++ reader (src/io/safetensors.cpp, parse_safetensors) refuses,
with a SafetensorsError naming the file and the key, and checks every size against the file before
it allocates anything: a file is read once, and the tensors it yields are bounded by its size.
"""
import json
import os
import stat
import struct
import tempfile

import torch

from . import strict_json
from .errors import SafetensorsError, printable

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")

# Limits mirrored from the C++ readers:
MAX_HEADER_BYTES = 100 << 20       # src/io/safetensors.cpp kMaxHeaderBytes (100 MiB)
MAX_HEADER_NESTING = 3             # src/io/safetensors.cpp kMaxNesting: {name: {shape: [...]}}
MAX_FILE_BYTES = 1 << 40           # include/skd/core/fs.h read_file_bytes' default max_bytes
METADATA_KEY = "__metadata__"
_ENTRY_FIELDS = ("dtype", "shape", "data_offsets")
_INT64_MAX = strict_json.INT64_MAX
_UINT64_MAX = strict_json.UINT64_MAX


def read_bytes(path):
    """The whole file (a regular file of at most MAX_FILE_BYTES), as src/core/fs.cpp read_file_bytes."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise SafetensorsError(path, "is not a regular file")
            if st.st_size > MAX_FILE_BYTES:
                raise SafetensorsError(path, f"is {st.st_size} bytes, more than the limit of {MAX_FILE_BYTES}")
            data = f.read(st.st_size + 1)
    except OSError as e:
        raise SafetensorsError(path, f"cannot read: {e.strerror or e}") from None
    if len(data) != st.st_size:
        raise SafetensorsError(path, f"changed while being read ({st.st_size} bytes expected, {len(data)} read)")
    return data


def _non_negative(v):
    """A JSON integer >= 0 that fits uint64 (as_non_negative in safetensors.cpp), else None."""
    return v if strict_json.is_int(v) and 0 <= v <= _UINT64_MAX else None


def _nbytes(shape, dtype):
    """tensor_nbytes(): None when the element count (zero dims left out) exceeds int64 or the byte
    count uint64."""
    product, zero = 1, False
    for d in shape:
        if d == 0:
            zero = True
            continue
        product *= d
        if product > _INT64_MAX:
            return None
    nbytes = product * _ITEMSIZE[dtype]
    if nbytes > _UINT64_MAX:
        return None
    return 0 if zero else nbytes


def _entry(path, key, entry, data_size):
    """(dtype, shape, begin, end) of a tensor entry, checked as parse_entry() in safetensors.cpp."""
    def fail(msg):
        raise SafetensorsError(path, f"tensor '{printable(key)}': {msg}", key=key)
    if not isinstance(entry, dict):
        fail('entry must be an object {"dtype", "shape", "data_offsets"}')
    for field in entry:
        if field not in _ENTRY_FIELDS:
            fail(f"unexpected field '{printable(field)}' (expected only \"dtype\", \"shape\", \"data_offsets\")")
    for field in _ENTRY_FIELDS:
        if field not in entry:
            fail(f'missing field "{field}"')
    dtype = entry["dtype"]
    if not isinstance(dtype, str):
        fail('"dtype" must be a string')
    if dtype not in _DTYPES:
        fail(f"unknown dtype '{printable(dtype)}' (expected one of {', '.join(_DTYPES)})")
    shape = entry["shape"]
    if not isinstance(shape, list):
        fail('"shape" must be an array of non-negative integers')
    for i, d in enumerate(shape):
        if _non_negative(d) is None or d > _INT64_MAX:
            fail(f"shape[{i}] must be a non-negative integer below 2^63, found {printable(repr(d), 60)}")
    nbytes = _nbytes(shape, dtype)
    if nbytes is None:
        fail(f"shape {shape[:16]} with dtype {dtype} is too large (element or byte count overflows)")
    offsets = entry["data_offsets"]
    pair = isinstance(offsets, list) and len(offsets) == 2
    begin = _non_negative(offsets[0]) if pair else None
    end = _non_negative(offsets[1]) if pair else None
    if begin is None or end is None:
        fail('"data_offsets" must be [begin, end] with non-negative integers')
    if begin > end:
        fail(f"data_offsets [{begin}, {end}) have begin after end")
    if end > data_size:
        fail(f"data_offsets [{begin}, {end}) exceed the data block of {data_size} bytes (file truncated or header wrong)")
    if end - begin != nbytes:
        fail(f"data_offsets [{begin}, {end}) hold {end - begin} bytes but dtype {dtype} and shape {shape[:16]} "
             f"need {nbytes}")
    return dtype, shape, begin, end


def parse_header(data, path):
    """(header dict, data block offset) of safetensors bytes; the C++ checks up to the tensor entries."""
    size = len(data)
    if size < 8:
        raise SafetensorsError(path, f"file is {size} bytes, too short for the 8-byte header length")
    n = struct.unpack_from("<Q", data, 0)[0]
    if n > size - 8:
        raise SafetensorsError(path, f"header length {n} exceeds the {size - 8} bytes that follow the length field "
                                     f"(file truncated or not safetensors)")
    if n > MAX_HEADER_BYTES:
        raise SafetensorsError(path, f"header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes (100 MiB)")
    try:
        header = strict_json.loads(memoryview(data)[8:8 + n], MAX_HEADER_NESTING)
    except strict_json.JsonError as e:
        raise SafetensorsError(path, f"header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(path, f"header must be a JSON object, found {type(header).__name__}")
    return header, 8 + n


def parse_safetensors(data, path):
    """(tensors, metadata) of safetensors bytes, with every check of parse_safetensors() in
    src/io/safetensors.cpp; tensors are fresh (writable) copies."""
    header, base = parse_header(data, path)
    data_size = len(data) - base
    meta = {}
    pending = []
    for key, value in header.items():
        if key == METADATA_KEY:
            if not isinstance(value, dict):
                raise SafetensorsError(path, f'"{METADATA_KEY}" must be an object of strings', key=key)
            for k, v in value.items():
                if not isinstance(v, str):
                    raise SafetensorsError(path, f"\"{METADATA_KEY}\" value for '{printable(k)}' must be a string",
                                           key=k)
                meta[k] = v
        else:
            pending.append((key,) + _entry(path, key, value, data_size))
    # Overlaps, before any data is copied (zero-size tensors may sit at the boundary of others).
    furthest = None
    for t in sorted(pending, key=lambda t: (t[3], t[4])):
        if furthest is not None and t[3] < furthest[4]:
            raise SafetensorsError(path, f"tensor '{printable(t[0])}' data_offsets [{t[3]}, {t[4]}) overlap tensor "
                                         f"'{printable(furthest[0])}' data_offsets [{furthest[3]}, {furthest[4]})",
                                   key=t[0])
        if furthest is None or t[4] > furthest[4]:
            furthest = t
    tensors = {}
    view = memoryview(data)
    for key, dtype, shape, begin, end in pending:
        if begin == end:
            tensors[key] = torch.empty(shape, dtype=_DTYPES[dtype])
            continue
        buf = bytearray(view[base + begin:base + end])  # an aligned, writable copy the tensor owns
        tensors[key] = torch.frombuffer(buf, dtype=_DTYPES[dtype]).reshape(shape)
    return tensors, meta


def read_header(path):
    """The parsed JSON header (tensor entries and "__metadata__") and the byte offset of the data."""
    return parse_header(read_bytes(path), path)


def load_file(path):
    """(tensors, metadata): every tensor of the file (a copy, writable) and the "__metadata__" strings."""
    return parse_safetensors(read_bytes(path), path)


def save_file(tensors, path, metadata=None):
    """Writes `tensors` ({name: tensor}) atomically (temp file in the target folder, fsync, rename)."""
    header = {}
    chunks = []
    offset = 0
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        if t.dtype not in _NAMES:
            raise ValueError(f"save_file: key '{key}' has unsupported dtype {t.dtype}")
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[key] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header[METADATA_KEY] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
