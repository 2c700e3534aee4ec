"""A super-network's mask table and cost table from its manifest, checked as the C++ does
(MaskTable::from_json and check_op_codes in src/models/mask_table.cpp)."""
from .config import ConfigError, macs_count
from .strict_json import as_int64, is_int


def table_from_json(j, full):
    """[widths of code 0, code 1, ...] (each [[a, m], ...] per block) of a "mask_table" object, for a
    model whose stored widths are `full`. Raises ConfigError on anything MaskTable::from_json refuses."""
    if not isinstance(j, dict):
        raise ConfigError('expected a JSON object of modules ("0.attn", ...)')
    blocks = len(full)
    modules = [f"{b}.{kind}" for b in range(blocks) for kind in ("attn", "mlp")]
    known = set(modules)
    for key in j:
        if key not in known:
            raise ConfigError(f"unexpected key '{key[:200]}' (the model has {blocks} blocks: \"0.attn\" ... "
                              f"\"{blocks - 1}.mlp\")")
    last = -1
    columns = []
    for i, key in enumerate(modules):
        if key not in j:
            raise ConfigError(f"module '{key}' is missing")
        m = j[key]
        if not isinstance(m, dict) or not m:
            raise ConfigError(f"'{key}' must map op codes to widths")
        widths = {}
        for code_s, w in m.items():
            code = _canonical_code(code_s)
            if code is None:
                raise ConfigError(f"'{key}' has op code '{code_s[:60]}' (expected -1, 0, 1, ...)")
            if not is_int(w):
                raise ConfigError(f"'{key}'[\"{code_s}\"] is not an integer width")
            widths[code] = as_int64(w)
        k = max(widths)
        if k < 0:  # only "-1"
            raise ConfigError(f"'{key}' lacks op code 0")
        if columns and k != last:
            raise ConfigError(f"'{key}' has {k + 1} codes where module '{modules[0]}' has {last + 1} "
                              f"(every module lists codes 0..K)")
        last = k
        limit = full[i // 2][i % 2]
        col = []
        for c in range(k + 1):
            if c not in widths:
                raise ConfigError(f"'{key}' lacks op code {c}")
            w = widths[c]
            if not 0 <= w <= limit:
                raise ConfigError(f"'{key}'[\"{c}\"] = {w} is outside [0, {limit}]")
            if c > 0 and w > col[-1]:
                raise ConfigError(f"'{key}' grows from {col[-1]} at code {c - 1} to {w} at code {c}")
            col.append(w)
        if -1 in widths and widths[-1] != col[-1]:
            raise ConfigError(f"'{key}'[\"-1\"] = {widths[-1]} but the last code {k} has {col[-1]}")
        columns.append(col)
    return [[[columns[2 * b][c], columns[2 * b + 1][c]] for b in range(blocks)] for c in range(last + 1)]


def _canonical_code(s):
    """The op code of a key spelled exactly as std::to_string(code), code >= -1 (the C++ also needs it
    to fit int64)."""
    if not s or len(s) > 20 or not (s.isascii() and (s.isdigit() or (s[0] == "-" and s[1:].isdigit()))):
        return None
    v = int(s)
    if str(v) != s or v < -1 or v > (1 << 63) - 1:
        return None
    return v


def check_op_codes(op_codes, cfg, table):
    """The manifest's "op_codes" rows equal the costs of the table's codes (check_op_codes); returns
    the costs [{"code", "macs_paper", "macs_full", "params"}, ...]."""
    costs = [dict(code=c, **macs_count(cfg, w)) for c, w in enumerate(table)]
    if not isinstance(op_codes, list) or len(op_codes) != len(costs):
        raise ConfigError(f"op_codes must list the {len(costs)} codes of the mask table (0..{len(costs) - 1})")
    for c, want in enumerate(costs):
        e = op_codes[c]
        for field in ("code", "macs_paper", "macs_full", "params"):
            v = e.get(field) if isinstance(e, dict) else None
            if not is_int(v):
                raise ConfigError(f'op_codes entry {c} has no integer "{field}"')
            if as_int64(v) != want[field]:
                raise ConfigError(f"op_codes code {c}: {field} = {as_int64(v)}, but the mask table and the "
                                  f"architecture give {want[field]}")
    return costs
