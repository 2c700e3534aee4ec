"""A minimal safetensors reader and writer (standard library + torch; no `safetensors` package).

File layout: an 8-byte little-endian header length N, N bytes of JSON ({key: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {str: str}}), then the raw little-endian tensor bytes.
"""
import json
import os
import struct
import tempfile

import torch

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
# A header larger than this is refused before it is read (safetensors' own limit is 100 MB).
MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A file that is not valid safetensors; the message names the file and the key."""


def read_header(path):
    """The parsed JSON header (tensor entries and "__metadata__") and the byte offset of the data."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise SafetensorsError(f"{path}: too short for a safetensors file ({len(head)} bytes)")
        n = struct.unpack("<Q", head)[0]
        size = os.fstat(f.fileno()).st_size
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} does not fit the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    return header, 8 + n


def load_file(path):
    """(tensors, metadata): every tensor of the file (a copy, writable) and the "__metadata__" strings."""
    header, base = read_header(path)
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    data_len = len(blob) - base
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype_name, shape, (begin, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: entry '{key}' lacks dtype/shape/data_offsets") from None
        if dtype_name not in _DTYPES:
            raise SafetensorsError(f"{path}: key '{key}' has unsupported dtype {dtype_name!r}")
        numel = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                raise SafetensorsError(f"{path}: key '{key}' has an invalid shape {shape}")
            numel *= d
        if not (0 <= begin <= end <= data_len) or end - begin != numel * _ITEMSIZE[dtype_name]:
            raise SafetensorsError(f"{path}: key '{key}' data_offsets [{begin}, {end}] do not fit "
                                   f"shape {shape} x {dtype_name} inside {data_len} data bytes")
        if numel == 0:
            tensors[key] = torch.empty(shape, dtype=_DTYPES[dtype_name])
            continue
        t = torch.frombuffer(blob, dtype=_DTYPES[dtype_name], count=numel, offset=base + begin)
        tensors[key] = t.reshape(shape).clone()
    meta = header.get("__metadata__", {}) or {}
    return tensors, dict(meta)


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
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
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
