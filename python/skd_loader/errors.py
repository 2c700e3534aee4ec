"""The loader's error types. Every refusal of a malformed or hostile file is a FormatError (a
ValueError) that names the file and, where there is one, the key; no TypeError, KeyError,
struct.error, json or Unicode error escapes for any file content."""


class SkdLoaderError(ValueError):
    """Base of every error the loader raises on its own."""


class FormatError(SkdLoaderError):
    """A file the loader refuses (the same set the C++ readers refuse). `path` is the file, `key` the
    tensor key or manifest key at fault (or None)."""

    def __init__(self, path, message, key=None):
        self.path = str(path)
        self.key = key
        super().__init__(f"{_printable(self.path, 1000)}: {message}")


class SafetensorsError(FormatError):
    """Not valid safetensors (src/io/safetensors.cpp refuses it too)."""


class ArtifactError(FormatError):
    """Valid safetensors, but not a usable SKD artifact: manifest, config, mask table or weights."""


def _printable(s, limit=200):
    """Keys and values come from untrusted files: bounded, one line (mirrors printable() in
    src/io/safetensors.cpp)."""
    s = str(s)
    out = "".join(c if (0x20 <= ord(c) != 0x7F) else f"\\x{ord(c):02x}" for c in s[:limit])
    return out + (f"...({len(s)} chars)" if len(s) > limit else "")


printable = _printable
