"""Random differential check: every CSV `sensorlake encode` accepts is stored exactly.

Generates random CSVs (seeded; the seed is printed, `SENSORLAKE_DIFF_SEED` or `--seed`
changes it) with 1-40 integer and float channels, NaN, +-Inf, -0.0, subnormals, f32/i64
extremes, values that need f64, nulls (empty cells), 0/1/many rows, unordered and
duplicate timestamps, timestamps at both ends of the accepted range
(1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999Z) as integer microseconds and as
RFC 3339 with mixed offsets, quoted and padded cells, blank lines, CRLF, and column names
that the schema refuses (quotes, commas, unicode, ...). Some inputs are built invalid on
purpose (one or more bad lines of one kind: a cell that is not a number, beyond f64's range,
or a nonzero that underflows to 0; NaN/Inf in a non-nullable channel; a timestamp that is
empty, malformed, finer than a microsecond, before 1970 or after 9999, with a +-24:00 offset or second 60 where no
leap second is; a wrong cell count, an unterminated quote, junk after a closing quote; a
column name the schema refuses; or values the specification allows to be widened or
refused: integers beyond i64, decimals beyond f64's precision).

Each CSV goes through the real `sensorlake encode` (`--output FILE`, or `--output-dir`
with `--rows-per-file`). Then:

* built valid: it must be accepted, and pyarrow, DuckDB and Polars must each read back the
  rows in CSV order (`--output`; with `--output-dir` the same multiset of rows, every file
  under the `dt=`/`hour=` of its rows), every cell exactly: integers equal; a float cell
  equal (exact Decimal comparison) to the stored value printed as the shortest decimal
  that round-trips for its stored type (f32 or f64), -0.0 with its sign; empty cells and
  NaN/+-Inf in a nullable channel as null; timestamps equal in microseconds.
* built invalid: if refused, the message must name the file and the line of the first
  bad line; if the kind must be refused (everything but values the specification allows
  to be widened, e.g. integers beyond i64), being accepted is a failure.
* a header-only CSV (0 rows) may be read back as 0 rows or refused naming the file.
* never a panic.

Prints how many inputs it tried, counts per category, and fails if any check failed or a
category was never generated.

    python python/differential_check.py --bin target/debug/sensorlake [--count 240] [--seed N]
"""

import argparse
import functools
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DEFAULT_SEED = 20261202
MAX_TS_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
F32_MAX = "3.4028235e38"
NAN_SPELLINGS = ["NaN", "nan", "NAN"]
INF_SPELLINGS = ["inf", "-inf", "+inf", "Infinity", "-Infinity", "INF"]
OFFSETS = ["Z", "+00:00", "-00:00", "+01:00", "-05:00", "+05:30", "-08:00", "+14:00", "-12:00", "+23:59", "-23:59"]

# Every category must be generated at least once per run.
CATEGORIES = [
    # shape
    "rows:0", "rows:1", "rows:many", "channels:1", "channels:2-9", "channels:10-40",
    "output:file", "output:dir",
    # values
    "int:i32", "int:i32-extreme", "int:i64-extreme", "int:plus-sign", "float:f32", "float:f32-extreme",
    "float:subnormal-f32", "float:subnormal-f64", "float:needs-f64", "float:beyond-f32-range",
    "float:int-in-float-column", "float:trailing-zeros", "float:exponent-form", "float:-0.0",
    "null:empty-cell", "null:blank-cell", "nan:nullable", "inf:nullable",
    "cell:quoted", "cell:padded", "cell:space-after-quote",
    # timestamps
    "ts:integer-us", "ts:rfc3339", "ts:mixed-offsets", "ts:min-end", "ts:max-end", "ts:unordered",
    "ts:duplicate", "ts:fraction-digits",
    # file shape
    "file:crlf", "file:blank-lines", "file:bom", "file:no-final-newline", "header:ts", "header:quoted-name",
    # built invalid
    "bad:not-a-number", "bad:not-a-timestamp", "bad:ts-before-1970", "bad:ts-after-9999", "bad:ts-offset-24",
    "bad:ts-leap-second", "bad:ts-empty", "bad:ts-sub-microsecond", "bad:nan-not-nullable", "bad:inf-not-nullable",
    "bad:float-overflow", "bad:float-underflow", "bad:cell-count", "bad:unterminated-quote",
    "bad:junk-after-quote", "bad:odd-name", "bad:several-lines", "wide:int-beyond-i64", "wide:beyond-f64-precision",
]


# ---------------------------------------------------------------- shortest decimals

# struct formats, most significant digits, bits of +inf, log2 of the smallest subnormal.
FORMATS = {"f32": ("<f", "<I", 9, 0x7F800000, 149), "f64": ("<d", "<Q", 17, 0x7FF0000000000000, 1074)}


def to_bits(x: float, kind: str) -> int:
    f, i, *_ = FORMATS[kind]
    return struct.unpack(i, struct.pack(f, x))[0]


def from_bits(b: int, kind: str) -> float:
    f, i, *_ = FORMATS[kind]
    return struct.unpack(f, struct.pack(i, b))[0]


def shortest(x: float, kind: str) -> Decimal:
    """The shortest decimal that parses back to `x` (exactly an f32 or f64, finite), the
    closest to `x` among equally short ones: what Rust, Ryu and Python's repr print."""
    if x == 0:
        return Decimal("-0") if math.copysign(1, x) < 0 else Decimal("0")
    if kind == "f64":
        return Decimal(repr(x))  # checked against shortest_exact by self_test_shortest
    return shortest_exact(x, kind)


def shortest_exact(x: float, kind: str) -> Decimal:
    """[`shortest`] by search, in exact integer arithmetic (x nonzero)."""
    return shortest_candidates(x, kind)[0]


@functools.lru_cache(maxsize=1 << 16)
def shortest_candidates(x: float, kind: str) -> tuple:
    """The shortest decimals that parse back to `x` (nonzero) and are closest to it: one,
    or two on an exact tie (Python's repr picks the even last digit, Rust's printing the
    one away from zero), the round-half-even one first."""
    _, _, max_digits, inf_bits, tiny = FORMATS[kind]
    sign, a = (-1 if x < 0 else 1), abs(x)
    bits = to_bits(a, kind)
    # Everything in units of half the smallest subnormal: integers.
    unit = 2 ** (tiny + 1)

    def scaled(v: float) -> int:
        n, d = v.as_integer_ratio()
        return n * (unit // d)

    exact, below = scaled(a), scaled(from_bits(bits - 1, kind))
    above = scaled(from_bits(bits + 1, kind)) if bits + 1 < inf_bits else 2 * exact - below
    lo2, hi2 = exact + below, exact + above  # twice the rounding interval's ends
    even = bits % 2 == 0
    for p in range(1, max_digits + 1):
        mantissa, exponent = (f"%.{p - 1}e" % a).split("e")
        digits, scale = int(mantissa.replace(".", "")), int(exponent) - (p - 1)
        found = []
        for d in (digits - 1, digits, digits + 1):
            if d <= 0:
                continue
            # Compare 2 * d * 10^scale * unit with lo2, exact and hi2, as integers.
            if scale >= 0:
                c2, k = 2 * d * 10**scale * unit, 1
            else:
                c2, k = 2 * d * unit, 10**-scale
            if lo2 * k < c2 < hi2 * k or (even and c2 in (lo2 * k, hi2 * k)):
                found.append((abs(c2 - 2 * exact * k), d % 2, d))
        if found:
            found.sort()
            closest = [d for dist, _, d in found if dist == found[0][0]]
            return tuple(Decimal(sign * d).scaleb(scale) for d in closest)
    raise AssertionError(f"no shortest decimal for {x!r}")


def self_test_shortest(rng: random.Random) -> None:
    """The exact search agrees with Python's repr (David Gay's shortest round trip) on
    f64, and with known f32 cases."""
    for _ in range(300):
        x = from_bits(rng.getrandbits(63), "f64")
        if math.isfinite(x) and x != 0:
            assert shortest_exact(x, "f64") == Decimal(repr(x)), x
            assert shortest_exact(-x, "f64") == Decimal(repr(-x)), x
    for x in (5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 789290036190861.8, 0.1):
        assert shortest_exact(x, "f64") == Decimal(repr(x)), x
    assert shortest_candidates(1459657240294353.2, "f64") == (Decimal("1459657240294353.2"), Decimal("1459657240294353.3"))
    assert shortest(from_bits(1, "f32"), "f32") == Decimal("1e-45")
    assert shortest(16777216.0, "f32") == Decimal("16777216")
    assert shortest(float(struct.unpack("<f", struct.pack("<f", 21.3))[0]), "f32") == Decimal("21.3")
    assert shortest(from_bits(0x7F7FFFFF, "f32"), "f32") == Decimal("3.4028235e38")
    assert shortest(from_bits(0x00800000, "f32"), "f32") == Decimal("1.1754944e-38")


def nearest_f32(x: float):
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return None


# ---------------------------------------------------------------- cell generation


class Gen:
    """Random cells, counting what was generated."""

    def __init__(self, rng: random.Random, counts: Counter):
        self.rng = rng
        self.counts = counts
        self.trace: list = []

    def hit(self, category: str) -> None:
        self.counts[category] += 1
        self.trace.append(category)

    def traced(self, make):
        """`make()` and the categories it generated (a cell's tags)."""
        self.trace = []
        value = make()
        return value, list(self.trace)

    def f32_value(self) -> Decimal:
        r = self.rng.random()
        if r < 0.5:  # a short decimal in the normal f32 range (<= 6 digits round-trip)
            digits = self.rng.randint(1, 6)
            n = self.rng.randint(10 ** (digits - 1), 10**digits - 1) * self.rng.choice([1, -1])
            return Decimal(n).scaleb(self.rng.randint(-36, 32))
        while True:  # any finite f32 bit pattern
            x = from_bits(self.rng.getrandbits(32), "f32")
            # Not an exact tie between two shortest decimals (printers disagree there).
            if math.isfinite(x) and x != 0 and len(shortest_candidates(x, "f32")) == 1:
                return shortest(x, "f32")

    def spell_float(self, d: Decimal) -> str:
        """A decimal as a CSV float cell: plain, with trailing zeros, or in exponent form."""
        r = self.rng.random()
        if r < 0.15:
            self.hit("float:exponent-form")
            sign, digits, exp = d.as_tuple()
            mant = "".join(map(str, digits))
            e = exp + len(mant) - 1
            text = f"{'-' if sign else ''}{mant[0]}.{mant[1:] or '0'}{self.rng.choice('eE')}{self.rng.choice(['', '+']) if e >= 0 else ''}{e}"
            return text
        text = f"{d:f}" if -30 < d.adjusted() < 30 else f"{d:e}"
        if "." not in text and "e" not in text:
            text += ".0"
        if r < 0.3 and "e" not in text:
            self.hit("float:trailing-zeros")
            text += "0" * self.rng.randint(1, 3)
        return text

    def int_cell(self, column_kind: str) -> str:
        r = self.rng.random()
        if column_kind == "i64" and r < 0.3:
            self.hit("int:i64-extreme")
            return str(self.rng.choice([I64_MIN, I64_MAX, I64_MAX - 1, I64_MIN + 1, 2**53 + 1]))
        if r < 0.1:
            self.hit("int:i32-extreme")
            return str(self.rng.choice([I32_MIN, I32_MAX, 0, -1, 16777217, 16777219]))
        if r < 0.15:
            self.hit("int:plus-sign")
            return "+" + str(self.rng.randint(0, 10**6))
        self.hit("int:i32")
        hi = I64_MAX if column_kind == "i64" else 10 ** self.rng.randint(1, 9)
        return str(self.rng.randint(-hi, hi))

    def float_cell(self, column_kind: str) -> str:
        r = self.rng.random()
        if column_kind == "f64":
            choice = self.rng.random()
            if choice < 0.15:
                self.hit("float:beyond-f32-range")
                return self.rng.choice(["1e39", "-1e39", "3.4028236e38", "-3.4028236e38", "1.7976931348623157e308"])
            if choice < 0.25:
                self.hit("float:subnormal-f64")
                return self.rng.choice(["5e-324", "-5e-324", "2.225073858507201e-308", "1e-46"])
            if choice < 0.35:
                self.hit("float:int-in-float-column")
                return self.rng.choice(["16777217", "16777219", "9007199254740992", "-2147483649"])
            self.hit("float:needs-f64")
            while True:
                x = from_bits(self.rng.getrandbits(64), "f64") if self.rng.random() < 0.5 else self.rng.uniform(-1e6, 1e6)
                if math.isfinite(x) and (x == 0 or len(shortest_candidates(x, "f64")) == 1):
                    return self.spell_float(shortest(x, "f64"))
        if r < 0.08:
            self.hit("float:f32-extreme")
            return self.rng.choice([F32_MAX, "-" + F32_MAX, "1.1754944e-38", "-1.1754944e-38", "16777216", "0.1"])
        if r < 0.14:
            self.hit("float:subnormal-f32")
            return self.rng.choice(["1e-45", "-1e-45", "1.4e-45", "1.1754942e-38", "5.877472e-39"])
        if r < 0.2:
            self.hit("float:-0.0")
            return self.rng.choice(["-0.0", "-0", "-0e0", "-0.000", "0.0"])
        if r < 0.25:
            self.hit("float:int-in-float-column")
            return str(self.rng.randint(-16777216, 16777216))
        self.hit("float:f32")
        return self.spell_float(self.f32_value())


def ts_text(gen: Gen, us: int) -> str:
    """A timestamp as integer microseconds or RFC 3339 with a random offset."""
    if gen.rng.random() < 0.4:
        gen.hit("ts:integer-us")
        return str(us)
    gen.hit("ts:rfc3339")
    utc = EPOCH + timedelta(microseconds=us)
    offsets = OFFSETS
    if us > MAX_TS_US - 86_400_000_000:  # local time must stay within year 9999
        offsets = [o for o in OFFSETS if o == "Z" or o.startswith("-")]
    off = gen.rng.choice(offsets)
    if off == "Z":
        local, suffix = utc, "Z"
    else:
        minutes = (int(off[1:3]) * 60 + int(off[4:6])) * (1 if off[0] == "+" else -1)
        local, suffix = utc + timedelta(minutes=minutes), off
    frac = local.microsecond
    if frac or gen.rng.random() < 0.3:
        digits = gen.rng.choice([6, 7, 9]) if frac % 1000 else gen.rng.choice([3, 6, 9])
        if frac % 10**5 == 0 and gen.rng.random() < 0.5:
            digits = 1
        text = f"{frac:06d}{'0' * 3}"[:digits]
        gen.hit("ts:fraction-digits")
        fraction = "." + text
    else:
        fraction = ""
    return local.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + fraction + suffix


def random_us(gen: Gen) -> int:
    r = gen.rng.random()
    if r < 0.05:
        gen.hit("ts:min-end")
        return gen.rng.randint(0, 2)
    if r < 0.1:
        gen.hit("ts:max-end")
        return gen.rng.randint(MAX_TS_US - 2, MAX_TS_US)
    return gen.rng.randint(0, MAX_TS_US)


# ---------------------------------------------------------------- one input


class Case:
    """One generated CSV and what must come of it."""

    def __init__(self, index: int):
        self.index = index
        self.names: list[str] = []
        self.ts_us: list[int] = []
        self.cells: list[list[str]] = []  # [row][channel], the cell text as parsed (trimmed, unquoted)
        self.lines: list[str] = []
        self.bad_lines: list[int] = []  # 1-based line numbers of lines built invalid
        self.must_refuse = False
        self.categories: list[str] = []
        self.output_dir = False
        self.header_only = False
        self.bad_column = None  # the channel (0-based) of the bad cells, if one
        self.text = ""


def quote(gen: Gen, cell: str, styles: set) -> str:
    """The cell as written: as is, quoted, padded with spaces, or quoted then spaces."""
    style = gen.rng.choice(sorted(styles)) if styles and gen.rng.random() < 0.15 else None
    if style == "cell:quoted" and cell.strip():
        gen.hit(style)
        return '"' + cell.replace('"', '""') + '"'
    if style == "cell:space-after-quote" and cell.strip():
        gen.hit(style)
        return '"' + cell + '"' + " " * gen.rng.randint(1, 2)
    if style == "cell:padded":
        gen.hit(style)
        return " " * gen.rng.randint(0, 2) + cell + " " * gen.rng.randint(1, 2)
    return cell


def channel_name(gen: Gen, used: set) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz_"
    while True:
        n = gen.rng.choice([1, 2, 5, 10, 64]) if gen.rng.random() < 0.3 else gen.rng.randint(1, 12)
        name = gen.rng.choice(alphabet + alphabet.upper()) + "".join(
            gen.rng.choice(alphabet + alphabet.upper() + "0123456789") for _ in range(n - 1)
        )
        # DuckDB compares identifiers case-insensitively; "ts" is the timestamp column.
        if name.lower() not in used and name.lower() != "ts":
            used.add(name.lower())
            return name


ODD_NAMES = ['a"b', "a,b", "tempé", "温度", "a b", "1abc", "x" * 65, "", "a-b", "ts", "dup"]


FLOAT_BAD_KINDS = {"bad:nan-not-nullable", "bad:inf-not-nullable", "bad:not-a-number", "bad:float-overflow",
                   "bad:float-underflow", "wide:beyond-f64-precision"}
BAD_KINDS = [
    "bad:not-a-number", "bad:not-a-timestamp", "bad:ts-before-1970", "bad:ts-after-9999", "bad:ts-offset-24",
    "bad:ts-leap-second", "bad:ts-empty", "bad:ts-sub-microsecond", "bad:nan-not-nullable", "bad:inf-not-nullable",
    "bad:float-overflow", "bad:float-underflow", "bad:cell-count", "bad:unterminated-quote", "bad:junk-after-quote",
    "bad:odd-name", "wide:int-beyond-i64", "wide:beyond-f64-precision",
]


def build_case(gen: Gen, index: int, focus: str) -> Case:
    rng = gen.rng
    case = Case(index)
    before = Counter(gen.counts)
    # Shape.
    if focus == "rows:0":
        n_rows = 0
    elif focus == "rows:1":
        n_rows = 1
    else:
        n_rows = rng.choice([1, 2, 3, 10, 50, 200]) if rng.random() < 0.5 else rng.randint(1, 120)
    gen.hit("rows:0" if n_rows == 0 else "rows:1" if n_rows == 1 else "rows:many")
    n_ch = rng.choice([1, 2, 3, 5]) if rng.random() < 0.6 else rng.randint(1, 40)
    if focus == "channels:10-40":
        n_ch = rng.randint(10, 40)
    gen.hit("channels:1" if n_ch == 1 else "channels:2-9" if n_ch < 10 else "channels:10-40")
    force_several = focus == "bad:several-lines"
    bad = focus if focus.startswith(("bad:", "wide:")) and not force_several else None
    if force_several or (bad is None and rng.random() < 0.25):
        bad = rng.choice(BAD_KINDS[:-3] if force_several else BAD_KINDS)
    if force_several:
        n_rows = max(n_rows, 3)
    if bad in ("bad:not-a-number", "bad:float-overflow", "bad:float-underflow", "bad:nan-not-nullable",
               "bad:inf-not-nullable", "bad:cell-count", "bad:unterminated-quote",
               "bad:junk-after-quote", "wide:int-beyond-i64", "wide:beyond-f64-precision", "bad:not-a-timestamp",
               "bad:ts-before-1970", "bad:ts-after-9999", "bad:ts-offset-24", "bad:ts-leap-second",
               "bad:ts-empty") and n_rows == 0:
        n_rows = rng.randint(1, 30)
    # `encode --output-dir` writes identical batches to one key (one object): give the
    # rows distinct timestamps there, so that every batch differs.
    case.output_dir = bad is None and n_rows > 0 and (focus == "output:dir" or rng.random() < 0.2)
    # Channels.
    used: set = set()
    names = [channel_name(gen, used) for _ in range(n_ch)]
    kinds = [rng.choice(["i32", "i32", "i64", "f32", "f32", "f32", "f64"]) for _ in range(n_ch)]
    nullable = [rng.random() < 0.35 for _ in range(n_ch)]
    if focus in ("nan:nullable", "inf:nullable", "null:empty-cell", "null:blank-cell"):
        nullable[0] = True
        kinds[0] = rng.choice(["f32", "f64"]) if focus[:3] in ("nan", "inf") else kinds[0]
    if focus.startswith("float:") or focus in ("cell:quoted", "cell:space-after-quote", "cell:padded"):
        kinds[0] = "f64" if focus in ("float:needs-f64", "float:beyond-f32-range", "float:subnormal-f64") else "f32"
    if focus.startswith("int:"):
        kinds[0] = "i64" if focus == "int:i64-extreme" else "i32"
    # Timestamps.
    order = rng.choice(["sorted", "sorted", "unordered", "duplicates"])
    if focus in ("ts:unordered", "ts:duplicate"):
        order = "unordered" if focus == "ts:unordered" else "duplicates"
    span = rng.choice([10**6, 3_600 * 10**6, 10**12, MAX_TS_US])
    start = rng.randint(0, MAX_TS_US - min(span, MAX_TS_US))
    ts = sorted(rng.randint(start, start + min(span, MAX_TS_US - start)) for _ in range(n_rows))
    if case.output_dir:
        order = "unordered" if order == "duplicates" else order
        ts = sorted(set(ts))
        n_rows = len(ts)
    if n_rows and (focus in ("ts:min-end", "ts:max-end") or rng.random() < 0.2):
        end = focus if focus in ("ts:min-end", "ts:max-end") else rng.choice(["ts:min-end", "ts:max-end"])
        gen.hit(end)
        if end == "ts:min-end":
            ts[0] = rng.choice([0, 0, 1])
        else:
            ts[-1] = rng.choice([MAX_TS_US, MAX_TS_US, MAX_TS_US - 1])
        ts = sorted(set(ts)) if case.output_dir else sorted(ts)
        n_rows = len(ts)
    if order == "unordered" and n_rows > 1:
        rng.shuffle(ts)
        gen.hit("ts:unordered")
    if order == "duplicates" and n_rows > 1:
        for _ in range(rng.randint(1, n_rows)):
            i, j = rng.randrange(n_rows), rng.randrange(n_rows)
            ts[j] = ts[i]
        gen.hit("ts:duplicate")
    tags: dict = {}  # (data row, CSV column) -> categories of that cell
    ts_cells = []
    for i, t in enumerate(ts):
        text, tags[(i, 0)] = gen.traced(lambda: ts_text(gen, t))
        ts_cells.append(text)
        tags[(i, 0)] += (["ts:min-end"] if t <= 2 else []) + (["ts:max-end"] if t >= MAX_TS_US - 2 else [])
    if len({"Z" if c.endswith("Z") else c[-6:] for c in ts_cells if not c.isdigit()}) > 1:
        gen.hit("ts:mixed-offsets")
    # Cells.
    def make_cell(j: int) -> str:
        if nullable[j] and rng.random() < 0.3:
            r = rng.random()
            if r < 0.2 and kinds[j] in ("f32", "f64"):
                gen.hit("nan:nullable")
                return rng.choice(NAN_SPELLINGS)
            elif r < 0.4 and kinds[j] in ("f32", "f64"):
                gen.hit("inf:nullable")
                return rng.choice(INF_SPELLINGS)
            elif r < 0.55:
                gen.hit("null:blank-cell")
                return " " * rng.randint(1, 3)
            else:
                gen.hit("null:empty-cell")
                return ""
        elif kinds[j] in ("i32", "i64"):
            return gen.int_cell(kinds[j])
        return gen.float_cell(kinds[j])

    rows = []
    for i in range(n_rows):
        row = []
        for j in range(n_ch):
            text, tags[(i, j + 1)] = gen.traced(lambda: make_cell(j))
            row.append(text)
        rows.append(row)
    # A nullable channel has an empty cell somewhere (that is what makes it nullable).
    for j in range(n_ch):
        if nullable[j] and n_rows and not any(r[j].strip() == "" for r in rows):
            i = rng.randrange(n_rows)
            rows[i][j] = ""
            gen.hit("null:empty-cell")
            tags[(i, j + 1)] = ["null:empty-cell"]
        if focus in ("nan:nullable", "inf:nullable") and j == 0 and n_rows:
            i = rng.randrange(n_rows)
            if rows[i][0].strip() == "" and sum(r[0].strip() == "" for r in rows) == 1:
                continue
            rows[i][0] = rng.choice(NAN_SPELLINGS if focus == "nan:nullable" else INF_SPELLINGS)
            gen.hit(focus)
            tags[(i, 1)] = [focus]
    nullable = [any(r[j].strip() == "" for r in rows) for j in range(n_ch)]
    # Header.
    header_cells = ["ts" if rng.random() < 0.15 else "timestamp"]
    if header_cells[0] == "ts":
        gen.hit("header:ts")
    for name in names:
        if rng.random() < 0.1:
            gen.hit("header:quoted-name")
            header_cells.append(f'"{name}"')
        else:
            header_cells.append(name)
    case.names = names
    # Make invalid, deliberately.
    bad_rows: list[int] = []  # 0-based data row indexes
    header_bad = False
    if bad:
        case.must_refuse = not bad.startswith("wide:")
        several = (force_several or rng.random() < 0.2) and n_rows > 2
        count = rng.randint(2, 3) if several else 1
        if bad == "bad:odd-name":
            header_bad = True
            odd = rng.choice(ODD_NAMES)
            k = rng.randrange(n_ch)
            if odd == "dup":
                odd = names[0]
                if n_ch == 1:
                    header_cells.append(odd)
                    rows = [r + [r[0]] for r in rows]
                    nullable.append(nullable[0])
                    kinds.append(kinds[0])
                else:
                    header_cells[1 + k if k else 2] = odd
            else:
                header_cells[1 + k] = '"' + odd.replace('"', '""') + '"' if any(c in odd for c in '",') else odd
        else:
            bad_rows = sorted(rng.sample(range(n_rows), min(count, n_rows)))
            if bad in FLOAT_BAD_KINDS:
                # A float column (non-nullable for NaN/Inf): in an integer column the bad
                # cell would turn the column into floats, which may make an earlier cell
                # (an i64 beyond 2^53) the first that cannot be stored.
                candidates = [j for j in range(n_ch) if kinds[j] in ("f32", "f64") and not nullable[j]]
                if not candidates:
                    kinds[0], nullable[0] = "f32", False
                    for i, r in enumerate(rows):
                        r[0], tags[(i, 1)] = gen.traced(lambda: gen.float_cell("f32"))
                    candidates = [0]
                j = rng.choice(candidates)
            elif bad == "wide:int-beyond-i64":
                j = rng.randrange(n_ch)
                if kinds[j] in ("f32", "f64"):
                    kinds[j] = "i64"
                    for i, r in enumerate(rows):
                        if r[j].strip():
                            r[j], tags[(i, j + 1)] = gen.traced(lambda: gen.int_cell("i64"))
            else:
                j = rng.randrange(n_ch)
            case.bad_column = j
            for i in bad_rows:
                if bad == "bad:nan-not-nullable":
                    rows[i][j] = rng.choice(NAN_SPELLINGS)
                elif bad == "bad:inf-not-nullable":
                    rows[i][j] = rng.choice(INF_SPELLINGS)
                elif bad == "bad:not-a-number":
                    rows[i][j] = rng.choice(["abc", "1.2.3", "0x10", "1e", "--5", "-", "1_000", "١٢"])
                elif bad == "bad:float-overflow":
                    rows[i][j] = rng.choice(["1e400", "-1e400", "1.8e308", "-1.7976931348623159e308"])
                elif bad == "bad:float-underflow":
                    rows[i][j] = rng.choice(["1e-400", "-2e-330", "2e-324"])
                elif bad == "bad:cell-count":
                    rows[i] = rows[i] + ["1"] if rng.random() < 0.5 else rows[i][:-1]
                elif bad == "bad:unterminated-quote":
                    rows[i][j] = '"12'
                elif bad == "bad:junk-after-quote":
                    rows[i][j] = '"12"x'
                elif bad == "wide:int-beyond-i64":
                    rows[i][j] = rng.choice(["99999999999999999999", "-9223372036854775809", "9223372036854775808"])
                elif bad == "wide:beyond-f64-precision":
                    rows[i][j] = rng.choice(["0.10000000000000000001", "9007199254740993.5", "1.00000000000000000000001"])
                elif bad == "bad:not-a-timestamp":
                    ts_cells[i] = rng.choice(["-", "--5", "x", "2024-01-01", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "12:00:00Z"])
                elif bad == "bad:ts-before-1970":
                    ts_cells[i] = rng.choice(["-1", "1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00+00:01", str(I64_MIN)])
                elif bad == "bad:ts-after-9999":
                    ts_cells[i] = rng.choice([str(MAX_TS_US + 1), "9999-12-31T23:59:59.999999-00:01", str(I64_MAX)])
                elif bad == "bad:ts-offset-24":
                    ts_cells[i] = rng.choice(["2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00-24:00"])
                elif bad == "bad:ts-leap-second":
                    # Not 23:59:60Z of a real leap second, which RFC 3339 allows handling.
                    ts_cells[i] = rng.choice(["2024-03-01T08:15:60Z", "2024-01-01T12:30:60+01:00", "2023-06-30T23:59:60Z"])
                elif bad == "bad:ts-empty":
                    ts_cells[i] = ""
                elif bad == "bad:ts-sub-microsecond":
                    ts_cells[i] = rng.choice(["2024-03-01T08:00:00.1234567Z", "1999-12-31T23:59:59.000000001+01:00"])
        gen.hit(bad)
        if count > 1 and len(bad_rows) > 1:
            gen.hit("bad:several-lines")
    # Lines.
    # Each input uses some ways of writing a cell (so that one kind of failure does not
    # hide the others).
    styles = {c for c, p in (("cell:quoted", 0.3), ("cell:padded", 0.3), ("cell:space-after-quote", 0.12)) if rng.random() < p}
    if focus.startswith("cell:"):
        styles.add(focus)
    crlf = focus == "file:crlf" or rng.random() < 0.1
    lines = []
    bom = focus == "file:bom" or rng.random() < 0.05
    lines.append(("\ufeff" if bom else "") + ",".join(header_cells))
    data_line_numbers = []
    for i in range(n_rows):
        while rng.random() < 0.03:
            lines.append(rng.choice(["", "   "]))
            gen.hit("file:blank-lines")
        cells = [ts_cells[i]] + rows[i]
        if bad in ("bad:unterminated-quote", "bad:junk-after-quote") and i in bad_rows:
            text = ",".join(cells)
        else:
            written = []
            for k, c in enumerate(cells):
                text, style = gen.traced(lambda: quote(gen, c, styles))
                tags.setdefault((i, k), []).extend(style)
                written.append(text)
            text = ",".join(written)
        lines.append(text)
        data_line_numbers.append(len(lines))
    if bom:
        gen.hit("file:bom")
    if crlf:
        gen.hit("file:crlf")
    final_newline = focus != "file:no-final-newline" and rng.random() > 0.1
    if not final_newline:
        gen.hit("file:no-final-newline")
    case.text = ("\r\n" if crlf else "\n").join(lines) + (("\r\n" if crlf else "\n") if final_newline else "")
    case.ts_us = ts
    case.tags = tags
    case.row_of_line = {line: i for i, line in enumerate(data_line_numbers)}
    case.data_lines = data_line_numbers
    case.order_tags = [c for c in ("ts:unordered", "ts:duplicate") if gen.counts[c] > before.get(c, 0)]
    case.cells = [[c.strip() for c in r] for r in rows]
    case.nullable = nullable
    if header_bad:
        case.bad_lines = [1]
    else:
        case.bad_lines = [data_line_numbers[i] for i in bad_rows]
    case.bad = bad
    case.header_only = n_rows == 0
    gen.hit("output:dir" if case.output_dir else "output:file")
    case.categories = sorted(k for k in gen.counts if gen.counts[k] > before.get(k, 0))
    return case


# ---------------------------------------------------------------- reading back


def kind_of(type_name: str) -> str:
    t = type_name.lower()
    if t in ("float", "float32", "real"):
        return "f32"
    if t in ("double", "float64"):
        return "f64"
    if t.startswith("decimal"):
        return "decimal"
    if "int" in t:
        return "int"
    if "timestamp" in t or "datetime" in t:
        return "ts"
    return t


def read_pyarrow(path: Path):
    table = pq.read_table(path)
    columns = []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_timestamp(field.type):
            columns.append((field.name, f"ts:{field.type.unit}:{field.type.tz}", pc.cast(column, pa.int64()).to_pylist()))
        else:
            columns.append((field.name, kind_of(str(field.type)), column.to_pylist()))
    return columns


def read_duckdb(con, path: Path):
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(path)]).fetchall()
    select = []
    for name, type_name, *_ in described:
        ident = '"' + name.replace('"', '""') + '"'
        select.append(f"epoch_us({ident})" if "TIMESTAMP" in type_name else ident)
    rows = con.execute(f"SELECT {', '.join(select)} FROM read_parquet(?, hive_partitioning = false)", [str(path)]).fetchall()
    columns = []
    for k, (name, type_name, *_) in enumerate(described):
        kind = "ts:us:UTC" if type_name == "TIMESTAMP WITH TIME ZONE" else kind_of(type_name)
        columns.append((name, kind, [r[k] for r in rows]))
    return columns


def read_polars(path: Path):
    df = pl.read_parquet(path)
    columns = []
    for name, dtype in df.schema.items():
        s = df[name]
        if isinstance(dtype, pl.Datetime):
            columns.append((name, f"ts:{dtype.time_unit}:{dtype.time_zone}", s.dt.epoch("us").to_list()))
        else:
            columns.append((name, kind_of(str(dtype).split("(")[0]), s.to_list()))
    return columns


def is_special(cell: str) -> bool:
    return cell.lower().lstrip("+-") in ("nan", "inf", "infinity")


def cell_matches(cell: str, kind: str, value) -> bool:
    """Whether a stored value is exactly the CSV cell (see the module docstring)."""
    if cell == "" or is_special(cell):
        return value is None
    if value is None:
        return False
    number = Decimal(cell)
    if kind == "int":
        return isinstance(value, int) and Decimal(value) == number
    if kind == "decimal":
        return Decimal(value) == number
    if kind in ("f32", "f64"):
        if not isinstance(value, float) or not math.isfinite(value):
            return False
        if kind == "f32" and nearest_f32(value) != value:
            return False
        negative = cell.lstrip().startswith("-")
        if (math.copysign(1, value) < 0) != negative:
            return False
        # On an exact tie either of the two shortest decimals is the stored number.
        return shortest(value, kind) == number or (value != 0 and number in shortest_candidates(value, kind))
    return False


def check_columns(case: Case, reader: str, columns, rows_expected, fail) -> None:
    """`columns` = [(name, kind, values)] from one reader vs the expected rows."""
    names = [c[0] for c in columns]
    if names != ["ts"] + case.names:
        fail(f"{reader}: columns {names!r}, expected {['ts'] + case.names!r}")
        return
    if columns[0][1] != "ts:us:UTC":
        fail(f"{reader}: ts column is {columns[0][1]}, expected a UTC microsecond timestamp")
    got_rows = list(zip(*[c[2] for c in columns])) if columns[0][2] else []
    if len(got_rows) != len(rows_expected):
        fail(f"{reader}: {len(got_rows)} rows, expected {len(rows_expected)}")
        return
    kinds = [c[1] for c in columns[1:]]
    for r, (got, (ts, cells, line)) in enumerate(zip(got_rows, rows_expected)):
        if got[0] != ts:
            fail(f"{reader}: data row {r}: ts {got[0]} µs, expected {ts}", case.tags.get((r, 0), []) + case.order_tags)
            return
        for j, (cell, kind, value) in enumerate(zip(cells, kinds, got[1:])):
            if not cell_matches(cell, kind, value):
                fail(f"{reader}: data row {r}, column {case.names[j]!r} ({kind}): stored {value!r}, cell {cell!r}", case.tags.get((r, j + 1)))
                return


LINE_RE = r":(?:line )?(\d+)"


def first_inexact_in_f64(case: Case):
    """For an input with values beyond i64 or f64's precision: the line of the first cell
    of that column that f64 cannot hold either (a refusal may name it: the column needs
    f64 or wider), else None."""
    if not (case.bad or "").startswith("wide:") or case.bad_column is None:
        return None
    for i, cells in enumerate(case.cells):
        cell = cells[case.bad_column] if case.bad_column < len(cells) else ""
        if cell and not is_special(cell):
            x = float(cell)
            if not math.isfinite(x) or shortest(x, "f64") != Decimal(cell):
                return case.data_lines[i]
    return None


# Ways of writing a value; a failure is attributed to them only when nothing else is tagged.
SECONDARY = {"ts:fraction-digits", "ts:rfc3339", "ts:integer-us", "float:trailing-zeros", "float:exponent-form",
             "cell:quoted", "cell:padded"}


def primary(tags: list) -> list:
    """The categories a cell's failure is attributed to."""
    if "cell:space-after-quote" in tags:
        return ["cell:space-after-quote"]
    return [t for t in tags if t not in SECONDARY] or tags


def check_case(case: Case, binary: Path, work: Path, con, failures: list) -> str:
    """Runs one case; returns its outcome: accepted, refused."""
    def fail(message: str, tags=None) -> None:
        """Records a failure with the categories it is attributed to."""
        if case.bad:
            tags = [case.bad]
        elif tags is None:
            cell = re.search(r":(?:line )?(\d+)(?:, column |:)(\d+)", message)
            row = case.row_of_line.get(int(cell.group(1))) if cell else None
            if row is not None:
                tags = case.tags.get((row, int(cell.group(2)) - 1), ["unattributed"])
            elif re.search(re.escape(str(csv_path)) + LINE_RE, message) is None:
                tags = ["refused without a line"]
            else:
                tags = ["unattributed"]
        failures.append((case, message, primary(tags or ["unattributed"])))

    csv_path = work / f"in{case.index}.csv"
    csv_path.write_bytes(case.text.encode("utf-8"))
    out = work / f"out{case.index}"
    if case.output_dir:
        args = ["--output-dir", str(out), "--rows-per-file", str(case.rows_per_file)]
    else:
        args = ["--output", str(out) + ".parquet"]
    result = subprocess.run([str(binary), "encode", "--input", str(csv_path), *args], capture_output=True, text=True)
    if "panicked" in result.stderr:
        fail(f"panic: {result.stderr.strip()[-400:]}")
        return "panic"
    if result.returncode != 0:
        message = result.stderr.strip()
        if case.header_only and not case.bad:
            if str(csv_path) not in message:
                fail(f"header-only input refused without naming the file: {message!r}")
            return "refused"
        if not case.bad:
            fail(f"valid input refused: {message!r}")
            return "refused"
        found = re.search(re.escape(str(csv_path)) + LINE_RE, message)
        if not found:
            fail(f"refused without naming the file and line (expected line {case.bad_lines[0]}): {message!r}")
        elif int(found.group(1)) != case.bad_lines[0] and int(found.group(1)) != first_inexact_in_f64(case):
            fail(f"refused at line {found.group(1)}, the first bad line is {case.bad_lines[0]}: {message!r}")
        return "refused"
    if case.bad and case.must_refuse:
        fail(f"input with a bad line ({case.bad}, line {case.bad_lines[0]}) accepted")
        return "accepted"
    expected = [(t, cells, i) for i, (t, cells) in enumerate(zip(case.ts_us, case.cells))]
    if case.output_dir:
        files = sorted(out.rglob("*.parquet"))
        found_rows = {"pyarrow": [], "duckdb": [], "polars": []}
        kinds: list = []
        for f in files:
            m = re.search(r"dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/", f.as_posix())
            for reader, columns in (("pyarrow", read_pyarrow(f)), ("duckdb", read_duckdb(con, f)), ("polars", read_polars(f))):
                rows = list(zip(*[c[2] for c in columns]))
                found_rows[reader].extend(rows)
                for row in rows:
                    t = EPOCH + timedelta(microseconds=row[0])
                    if not m or (m.group(1), m.group(2)) != (t.strftime("%Y-%m-%d").rjust(10, "0"), f"{t.hour:02d}"):
                        fail(f"{reader}: a row at {row[0]} µs is in {f.relative_to(out)}",
                             case.tags.get((case.ts_us.index(row[0]), 0)) if row[0] in case.ts_us else None)
                        break
                if [c[0] for c in columns] != ["ts"] + case.names:
                    fail(f"{reader}: columns {[c[0] for c in columns]!r} in {f.name}")
                    return "accepted"
                kinds = [c[1] for c in columns]
        for reader, rows in found_rows.items():
            if len(rows) != len(expected):
                fail(f"{reader}: {len(rows)} rows in {len(files)} files, expected {len(expected)}")
                continue
            # Same multiset: match every expected row to a stored row with its timestamp.
            remaining = sorted(rows, key=lambda r: r[0])
            by_ts: dict = {}
            for r in remaining:
                by_ts.setdefault(r[0], []).append(r)
            for ts, cells, i in expected:
                candidates = by_ts.get(ts, [])
                match = next((r for r in candidates if all(cell_matches(c, k, v) for c, k, v in zip(cells, kinds[1:], r[1:]))), None)
                if match is None:
                    bad_cells = [
                        (j, f"column {case.names[j]!r} ({k}): stored {v!r}, cell {c!r}")
                        for r in candidates[:1]
                        for j, (c, k, v) in enumerate(zip(cells, kinds[1:], r[1:]))
                        if not cell_matches(c, k, v)
                    ]
                    detail = bad_cells[0][1] if bad_cells else "no row with that timestamp"
                    tags = case.tags.get((i, bad_cells[0][0] + 1)) if bad_cells else case.tags.get((i, 0))
                    fail(f"{reader}: data row {i} (ts {ts}) not found exactly: {detail}", tags)
                    break
                candidates.remove(match)
        return "accepted"
    path = Path(str(out) + ".parquet")
    check_columns(case, "pyarrow", read_pyarrow(path), expected, fail)
    check_columns(case, "duckdb", read_duckdb(con, path), expected, fail)
    check_columns(case, "polars", read_polars(path), expected, fail)
    return "accepted"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, type=Path, help="the sensorlake binary")
    parser.add_argument("--count", type=int, default=int(os.environ.get("SENSORLAKE_DIFF_COUNT", "240")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SENSORLAKE_DIFF_SEED", DEFAULT_SEED)))
    parser.add_argument("--keep", action="store_true", help="keep the generated files (path printed)")
    args = parser.parse_args()
    print(f"differential check: seed {args.seed} (SENSORLAKE_DIFF_SEED=N or --seed N to change), {args.count} inputs", flush=True)
    rng = random.Random(args.seed)
    self_test_shortest(random.Random(args.seed))
    counts: Counter = Counter()
    gen = Gen(rng, counts)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    work = Path(tempfile.mkdtemp(prefix="sensorlake-diff-"))
    failures: list = []
    outcomes: Counter = Counter()
    per_category_fail: Counter = Counter()
    started = time.monotonic()
    for i in range(args.count):
        focus = CATEGORIES[i % len(CATEGORIES)]
        case = build_case(gen, i, focus)
        case.rows_per_file = rng.choice([1, 7, 50, 1000])
        before = len(failures)
        outcome = check_case(case, args.bin, work, con, failures)
        outcomes[outcome] += 1
        outcomes[f"{outcome}:{'failed' if len(failures) > before else 'ok'}"] += 1
        if len(failures) > before:
            for c in case.categories:
                per_category_fail[c] += 1
    elapsed = time.monotonic() - started
    print(f"tried {args.count} inputs in {elapsed:.1f} s: {outcomes['accepted']} accepted "
          f"({outcomes['accepted:ok']} read back exactly by all three readers), {outcomes['refused']} refused "
          f"({outcomes['refused:ok']} as specified), {outcomes['panic']} panics")
    print("category                        generated  inputs-failing")
    for c in CATEGORIES:
        print(f"  {c:30} {counts[c]:9}  {per_category_fail[c]:5}")
    missing = [c for c in CATEGORIES if counts[c] == 0]
    kinds_of_failure: Counter = Counter()
    example: dict = {}
    by_category: dict = {}
    for case, message, tags in failures:
        for tag in tags or ["unattributed"]:
            by_category.setdefault(tag, {}).setdefault(case.index, message)
    for case, message, _ in failures:
        signature = re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "…", message.replace(str(work), "<dir>")))
        signature = f"{case.bad or 'valid'}: {signature[:150]}"
        kinds_of_failure[signature] += 1
        example.setdefault(signature, case.index)
    if failures:
        print("categories of the cells (or bad inputs) that failed: inputs, an example")
        for tag, cases in sorted(by_category.items(), key=lambda kv: -len(kv[1])):
            index, message = next(iter(cases.items()))
            print(f"  {tag:30} {len(cases):4}  in{index}.csv: {message[:240]}")
        print("failures by kind (count, an input):")
        for signature, n in kinds_of_failure.most_common():
            print(f"  {n:4}  in{example[signature]}.csv  {signature}")
    limit = int(os.environ.get("SENSORLAKE_DIFF_SHOW", "40"))
    for case, message, _ in failures[:limit]:
        print(f"FAIL input {case.index} ({case.bad or 'valid'}; {work / f'in{case.index}.csv'}): {message}")
    if len(failures) > limit:
        print(f"... and {len(failures) - limit} more failures")
    if missing:
        print(f"FAIL: categories never generated: {', '.join(missing)}")
    ok = not failures and not missing
    if ok and not args.keep:
        shutil.rmtree(work)
    else:
        print(f"inputs kept in {work}")
    print(f"{len(failures)} failed checks; {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
