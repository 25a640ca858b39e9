"""Interoperability check: files written by `sensorlake` are read by pyarrow, DuckDB and
Polars exactly as written.

Drives the `sensorlake` binary to write files (`demo` in the Hive layout, the
OpenSensor.Space layout and the IMU profiles; `encode` of data/basicmotions.csv for every
codec x float encoding x timestamp encoding x statistics level, and of integer CSVs),
then checks with each reader: column types (UTC timestamp; float32, or int16/int32/int64
for integer channels), row counts, values equal to the source (the CSV text parsed as
float32), key-value metadata, Hive partition columns, and aggregates equal to the
source's computed here in Python. It also reads files of the preset together with files
written by Polars the way the OpenSensor.Space network writes them, in one DuckDB query.

    python python/interop_check.py --bin target/debug/sensorlake

Prints one line per failed check and `N passed, M failed`; exits 1 on any failure. A
missing package is an ImportError: the check fails, it never skips.
"""

import argparse
import csv
import datetime as dt
import io
import json
import math
import struct
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
CODECS = ["none", "snappy", "lz4", "gzip", "zstd"]
FLOAT_ENCODINGS = ["plain", "dictionary", "byte-stream-split"]
TS_ENCODINGS = ["plain", "delta"]
STATISTICS = ["none", "timestamp", "chunk", "page"]
# pyarrow's names: it calls Parquet's LZ4_RAW "LZ4" (and the legacy Hadoop LZ4 "LZ4_HADOOP").
PARQUET_CODEC = {"none": "UNCOMPRESSED", "snappy": "SNAPPY", "lz4": "LZ4", "gzip": "GZIP", "zstd": "ZSTD"}
ENVIRO_CHANNELS = [
    "temperature", "raw_temperature", "pressure", "humidity", "raw_humidity", "oxidised",
    "reducing", "nh3", "lux", "proximity", "pm1", "pm25", "pm10", "particles_03um",
    "particles_05um", "particles_10um", "particles_25um", "particles_50um", "particles_100um",
]


class Checks:
    """Counts checks; records failures instead of stopping at the first."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def that(self, condition: bool, what: str) -> bool:
        if condition:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"FAIL: {what}", flush=True)
        return condition

    def equal(self, actual, expected, what: str) -> bool:
        return self.that(actual == expected, f"{what}: got {actual!r}, expected {expected!r}")


def f32(text: str) -> float:
    """The CSV text as the nearest float32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", float(text)))[0]


def parse_ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def run(binary: Path, *args: str) -> str:
    result = subprocess.run([str(binary), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"sensorlake {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [r for r in rows[1:] if r]


def kv(path: Path) -> dict[str, str]:
    meta = pq.ParquetFile(path).metadata.metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}


# --- encode: every codec x encoding x statistics level, three readers ----------------


def check_encode_matrix(c: Checks, binary: Path, data: Path, out: Path) -> None:
    header, rows = read_csv(data)
    channels = header[1:]
    expected_ts = [parse_ts(r[0]) for r in rows]
    expected = {name: [f32(r[i + 1]) for r in rows] for i, name in enumerate(channels)}
    n = 0
    for codec in CODECS:
        for fenc in FLOAT_ENCODINGS:
            for tenc in TS_ENCODINGS:
                for stats in STATISTICS:
                    name = f"{codec}-{fenc}-{tenc}-{stats}"
                    path = out / f"{name}.parquet"
                    run(binary, "encode", "--input", str(data), "--output", str(path),
                        "--device-id", "watch-1", "--codec", codec, "--float-encoding", fenc,
                        "--ts-encoding", tenc, "--statistics", stats)
                    check_float_file(c, path, name, channels, expected_ts, expected)
                    check_file_layout(c, path, name, codec, fenc, tenc, stats)
                    n += 1
    print(f"encode: {n} configurations of {data.name} read by pyarrow, DuckDB and Polars", flush=True)


def check_float_file(c, path, name, channels, expected_ts, expected) -> None:
    table = pq.read_table(path)
    c.equal(table.num_rows, len(expected_ts), f"{name}: pyarrow rows")
    c.equal(table.schema.field("ts").type, pa.timestamp("us", tz="UTC"), f"{name}: ts type")
    c.equal(table.column("ts").to_pylist(), expected_ts, f"{name}: pyarrow timestamps")
    for ch in channels:
        c.equal(table.schema.field(ch).type, pa.float32(), f"{name}: {ch} type")
        c.that(table.column(ch).to_pylist() == expected[ch], f"{name}: pyarrow {ch} values")
    meta = kv(path)
    c.equal(meta.get("sensorlake.device_id"), "watch-1", f"{name}: device_id metadata")
    c.that(meta.get("sensorlake.object_key", "").startswith("device_id=watch-1/dt=2024-03-01/hour=08/"),
           f"{name}: object_key metadata {meta.get('sensorlake.object_key')!r}")
    c.equal(meta.get("sensorlake.schema_version"), "1", f"{name}: schema_version metadata")
    c.that(bool(meta.get("sensorlake.library_version")), f"{name}: library_version metadata")

    con = duckdb.connect()
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}
    c.equal(types["ts"], "TIMESTAMP WITH TIME ZONE", f"{name}: DuckDB ts type")
    for ch in channels:
        c.equal(types[ch], "FLOAT", f"{name}: DuckDB {ch} type")
    got = con.execute(f"SELECT {', '.join(channels)} FROM read_parquet('{path}')").fetchall()
    for i, ch in enumerate(channels):
        c.that([row[i] for row in got] == expected[ch], f"{name}: DuckDB {ch} values")
    epoch = con.execute(f"SELECT epoch_us(ts) FROM read_parquet('{path}')").fetchall()
    c.that([e[0] for e in epoch] == [int(t.timestamp() * 1_000_000) for t in expected_ts],
           f"{name}: DuckDB timestamps")

    df = pl.read_parquet(path)
    c.equal(df.schema["ts"], pl.Datetime("us", "UTC"), f"{name}: Polars ts type")
    for ch in channels:
        c.equal(df.schema[ch], pl.Float32, f"{name}: Polars {ch} type")
        c.that(df[ch].to_list() == expected[ch], f"{name}: Polars {ch} values")


def check_file_layout(c, path, name, codec, fenc, tenc, stats) -> None:
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    ts = group.column(0)
    c.equal(ts.compression, PARQUET_CODEC[codec], f"{name}: codec")
    c.that(("DELTA_BINARY_PACKED" if tenc == "delta" else "PLAIN") in ts.encodings,
           f"{name}: ts encoding {ts.encodings}")
    want = {"plain": "PLAIN", "dictionary": "RLE_DICTIONARY", "byte-stream-split": "BYTE_STREAM_SPLIT"}[fenc]
    c.that(want in group.column(1).encodings, f"{name}: float encoding {group.column(1).encodings}")
    has_ts_stats = ts.is_stats_set and ts.statistics.has_min_max
    c.equal(has_ts_stats, stats != "none", f"{name}: timestamp min/max present")
    if has_ts_stats:
        c.equal(ts.statistics.min, pq.read_table(path).column("ts")[0].as_py(), f"{name}: ts min")
    channel_stats = group.column(1).is_stats_set and group.column(1).statistics.has_min_max
    c.equal(channel_stats, stats in ("chunk", "page"), f"{name}: channel min/max present")
    c.equal(group.column(1).has_column_index, stats == "page", f"{name}: column index")


# --- encode: integer channels ---------------------------------------------------------


def check_integer_encode(c: Checks, binary: Path, data: Path, out: Path) -> None:
    header, rows = read_csv(data)
    # Raw counts as a 16-bit accelerometer delivers them, a wider counter, a 64-bit value
    # and a column with gaps.
    lines = ["timestamp,acc_x,acc_y,steps,energy_uj,gap"]
    for i, r in enumerate(rows):
        gap = "" if i % 17 == 0 else str(i - 500)
        lines.append(f"{r[0]},{round(float(r[1]) * 1000)},{round(float(r[2]) * 1000)},"
                     f"{100_000 * i},{3_000_000_000 + i * 7_919},{gap}")
    src = out / "integers.csv"
    src.write_text("\n".join(lines) + "\n")
    expected = {name: [] for name in ["acc_x", "acc_y", "steps", "energy_uj", "gap"]}
    for line in lines[1:]:
        cells = line.split(",")
        for name, cell in zip(expected, cells[1:]):
            expected[name].append(int(cell) if cell else None)
    for types, want in [
        ("", {"acc_x": pa.int32(), "steps": pa.int32(), "energy_uj": pa.int64(), "gap": pa.int32()}),
        ("acc_x=i16,acc_y=i16", {"acc_x": pa.int16(), "acc_y": pa.int16(), "energy_uj": pa.int64()}),
    ]:
        for codec in CODECS:
            for enc in ["plain", "delta"]:
                name = f"integers-{'i16' if types else 'inferred'}-{codec}-{enc}"
                path = out / f"{name}.parquet"
                run(binary, "encode", "--input", str(src), "--output", str(path), "--types", types,
                    "--codec", codec, "--int-encoding", enc, "--ts-encoding", enc)
                table = pq.read_table(path)
                for col, ty in want.items():
                    c.equal(table.schema.field(col).type, ty, f"{name}: {col} type")
                c.equal(table.schema.field("gap").nullable, True, f"{name}: gap nullable")
                df = pl.read_parquet(path)
                con = duckdb.connect()
                for col, values in expected.items():
                    c.that(table.column(col).to_pylist() == values, f"{name}: pyarrow {col} values")
                    c.that(df[col].to_list() == values, f"{name}: Polars {col} values")
                    got = [r[0] for r in con.execute(f"SELECT {col} FROM read_parquet('{path}')").fetchall()]
                    c.that(got == values, f"{name}: DuckDB {col} values")
    print("encode: integer channels (inferred INT32/INT64, --types i16, nulls) read by all three", flush=True)


# --- encode into the Hive layout: partitions and an aggregate -----------------------------


def check_hive_encode(c: Checks, binary: Path, data: Path, out: Path) -> None:
    header, rows = read_csv(data)
    lake = out / "hive"
    run(binary, "encode", "--input", str(data), "--output-dir", str(lake), "--rows-per-file", "178",
        "--device-id", "watch-1", "--prefix", "raw")
    files = sorted(lake.glob("raw/**/*.parquet"))
    c.equal(len(files), math.ceil(len(rows) / 178), "hive encode: files")
    for f in files:
        c.equal(kv(f).get("sensorlake.object_key"), str(f.relative_to(lake)), f"{f.name}: object_key = path")
    con = duckdb.connect()
    glob = f"{lake}/raw/**/*.parquet"
    cols = [d[0] for d in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()]
    for part in ["device_id", "dt", "hour"]:
        c.that(part in cols, f"hive encode: DuckDB exposes {part} ({cols})")
    got = con.execute(
        f"SELECT device_id, dt::VARCHAR, hour::INTEGER, count(*), min(acc_x), max(acc_x), sum(acc_x::DOUBLE), "
        f"sum(gyr_z::DOUBLE) FROM read_parquet('{glob}', hive_partitioning = true) "
        f"GROUP BY ALL ORDER BY ALL").fetchall()
    groups = defaultdict(list)
    for r in rows:
        t = parse_ts(r[0])
        groups[("watch-1", t.strftime("%Y-%m-%d"), t.hour)].append((f32(r[1]), f32(r[6])))
    want = [(*k, len(v), min(a for a, _ in v), max(a for a, _ in v), math.fsum(a for a, _ in v),
             math.fsum(g for _, g in v)) for k, v in sorted(groups.items())]
    c.equal(len(got), len(want), "hive encode: groups")
    for g, w in zip(got, want):
        c.equal(g[:6], w[:6], "hive encode: device/dt/hour/count/min/max")
        c.that(math.isclose(g[6], w[6], rel_tol=1e-12) and math.isclose(g[7], w[7], rel_tol=1e-12),
               f"hive encode: sums {g[6:]} vs {w[6:]}")
    check_duckdb_ddl(c, binary, f"{lake}/raw", "hive", len(rows))
    print(f"encode --output-dir: {len(files)} Hive-keyed files, partitions and aggregates match the CSV", flush=True)


def check_duckdb_ddl(c: Checks, binary: Path, location: str, layout: str, rows: int) -> None:
    ddl = run(binary, "ddl", "--duckdb", "--bucket", "lake", "--layout", layout, "--table", "readings",
              "--location", location)
    con = duckdb.connect()
    con.execute(ddl)
    c.equal(con.execute("SELECT count(*) FROM readings").fetchone()[0], rows, f"ddl {layout}: view rows")
    part = "dt" if layout == "hive" else "day"
    c.that(con.execute(f"SELECT count(DISTINCT {part}) FROM readings").fetchone()[0] >= 1,
           f"ddl {layout}: partition column {part}")


# --- demo: Hive layout, IMU profiles --------------------------------------------------------


def check_demo(c: Checks, binary: Path, out: Path, profile: str, duration: str, devices: int,
               interval_s: float, ints: bool) -> None:
    d = out / f"demo-{profile}"
    run(binary, "demo", "--dir", str(d), "--devices", str(devices), "--duration", duration,
        "--profile", profile)
    glob = f"{d}/lake/raw/**/*.parquet"
    con = duckdb.connect()
    seconds = {"h": 3600, "min": 60}
    unit = "min" if duration.endswith("min") else "h"
    expected_rows = devices * int(int(duration[: -len(unit)]) * seconds[unit] / interval_s)
    total, bad_hour, bad_day = con.execute(
        f"SELECT count(*), count(*) FILTER (hour(ts AT TIME ZONE 'UTC') != hour), "
        f"count(*) FILTER ((ts AT TIME ZONE 'UTC')::DATE != dt) "
        f"FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{'dt': DATE, 'hour': INTEGER}})"
    ).fetchone()
    c.equal(total, expected_rows, f"demo {profile}: rows")
    c.equal((bad_hour, bad_day), (0, 0), f"demo {profile}: every row in its dt/hour partition")
    devices_seen = con.execute(
        f"SELECT DISTINCT device_id FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY 1").fetchall()
    c.equal([x[0] for x in devices_seen], [f"{profile}-{i:02}" for i in range(1, devices + 1)],
            f"demo {profile}: device_id partitions")
    files = sorted((d / "lake").glob("raw/**/*.parquet"))
    schema = pq.read_schema(files[0])
    want = pa.int16() if ints else pa.float32()
    c.that(all(schema.field(n).type == want for n in schema.names[1:]), f"demo {profile}: channel types {schema}")
    c.equal(schema.field("ts").type, pa.timestamp("us", tz="UTC"), f"demo {profile}: ts type")
    for f in files:
        meta = kv(f)
        c.equal(meta.get("sensorlake.object_key"), str(f.relative_to(d / "lake")), f"{f.name}: object_key")
        c.that(f"device_id={meta.get('sensorlake.device_id')}/" in str(f), f"{f.name}: device_id metadata")
        if ints:
            c.that("sensorlake.scale.acc_x" in meta, f"{f.name}: channel scales in metadata")
    # Polars reads the whole lake too, with the partition columns.
    df = pl.read_parquet(glob, hive_partitioning=True)
    c.equal(df.height, expected_rows, f"demo {profile}: Polars rows")
    c.that("device_id" in df.columns, f"demo {profile}: Polars device_id partition column")
    print(f"demo --profile {profile}: {len(files)} files, {total} rows, partitions consistent", flush=True)


# --- OpenSensor.Space: the preset read together with the network's own files ---------------


def polars_station_file(path: Path, station: str, start: dt.datetime, rows: int, old_style: bool) -> None:
    """A 15-minute batch written the way the network's collector writes it (Polars, float32
    channels, ms UTC timestamp): older versions kept `station_id` and wrote Snappy with
    Polars' own writer; newer ones drop `station_id` and write Zstd through pyarrow."""
    data = {"timestamp": [start + dt.timedelta(seconds=5 * i) for i in range(rows)],
            "station_id": [station] * rows}
    for j, name in enumerate(ENVIRO_CHANNELS):
        data[name] = [None if (name.startswith(("pm", "particles")) and i == 7) else 10.0 * j + i / 8
                      for i in range(rows)]
    df = pl.DataFrame(data).with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms", "UTC")),
        *[pl.col(n).cast(pl.Float32) for n in ENVIRO_CHANNELS],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if old_style:
        df.write_parquet(path, compression="snappy", statistics=True)
    else:
        df.drop("station_id").write_parquet(path, compression="zstd", statistics=True, use_pyarrow=True)


def check_opensensor(c: Checks, binary: Path, out: Path) -> None:
    d = out / "demo-opensensor"
    run(binary, "demo", "--dir", str(d), "--devices", "2", "--duration", "2h", "--layout", "opensensor")
    root = d / "lake" / "raw"
    ours = sorted(root.glob("station=*/year=*/month=*/day=*/data_*.parquet"))
    c.that(len(ours) >= 2 * 8, f"opensensor: one file per 15-min window ({len(ours)} files)")
    schema = pq.read_schema(ours[0])
    c.equal(schema.names, ["timestamp", "station_id", *ENVIRO_CHANNELS], "opensensor: columns, in order")
    c.equal(schema.field("timestamp").type, pa.timestamp("ms", tz="UTC"), "opensensor: timestamp type")
    c.equal(schema.field("station_id").type, pa.string(), "opensensor: station_id type")
    c.that(all(schema.field(n).type == pa.float32() for n in ENVIRO_CHANNELS), "opensensor: float32 channels")
    c.that(schema.field("pm25").nullable and not schema.field("temperature").nullable,
           "opensensor: PM fields nullable, the rest required")
    for f in ours:
        table = pq.read_table(f)
        stamps = table.column("timestamp").to_pylist()
        name = f.stem
        hhmm = name.split("_")[1]
        end = max(stamps).replace(second=0, microsecond=0)
        end = end + dt.timedelta(minutes=15 - end.minute % 15)
        c.equal(hhmm, end.strftime("%H%M"), f"{f.relative_to(root)}: named by its window's end")
        first = min(stamps)
        c.that(f"/year={first.year}/month={first.month:02}/day={first.day:02}/" in str(f),
               f"{f.relative_to(root)}: year/month/day of its rows")
        station = f.relative_to(root).parts[0].split("=", 1)[1]
        c.that(set(table.column("station_id").to_pylist()) == {station}, f"{f.name}: station_id = station")
    # Files written by Polars as the network writes them, next to ours.
    start = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.timezone.utc)
    net_rows = 180
    for station, old in [("0195ae3c-43e0-7624-8c5c-7424adbcc30d", True), ("019ab390-f291-7a30-bca8-381286e4c2aa", False)]:
        for w in range(2):
            t0 = start + dt.timedelta(minutes=15 * w)
            path = root / f"station={station}" / "year=2024" / "month=03" / "day=01" / f"data_{(t0 + dt.timedelta(minutes=15)).strftime('%H%M')}.parquet"
            polars_station_file(path, station, t0, net_rows, old)
    ours_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in ours)
    con = duckdb.connect()
    got = con.execute(
        f"SELECT station, count(*), count(station_id), count(pm25), "
        f"min(timestamp) IS NOT NULL, typeof(any_value(temperature)), typeof(any_value(timestamp)) "
        f"FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true, union_by_name = true) "
        f"GROUP BY station ORDER BY station").fetchall()
    stations = {g[0]: g for g in got}
    c.equal(len(stations), 4, "opensensor + network files: stations in one query")
    old = stations.get("0195ae3c-43e0-7624-8c5c-7424adbcc30d")
    new = stations.get("019ab390-f291-7a30-bca8-381286e4c2aa")
    c.that(old is not None and old[1:4] == (2 * net_rows, 2 * net_rows, 2 * (net_rows - 1)),
           f"old-style network files: rows, station_id, PM nulls ({old})")
    c.that(new is not None and new[1:4] == (2 * net_rows, 0, 2 * (net_rows - 1)),
           f"new-style network files (no station_id column): rows ({new})")
    c.equal(sum(g[1] for k, g in stations.items() if k.startswith("enviro-")), ours_rows,
            "preset files: rows in the joint query")
    c.that(all(g[5] == "FLOAT" and g[6] == "TIMESTAMP WITH TIME ZONE" for g in got),
           f"one type per column across both writers ({[g[5:] for g in got]})")
    hourly = con.execute(
        f"SELECT station, date_trunc('hour', timestamp) AS h, avg(temperature), count(*) "
        f"FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true, union_by_name = true) "
        f"GROUP BY ALL ORDER BY ALL").fetchall()
    c.that(len(hourly) >= 4, "the network's hourly-average query runs over both kinds of files")
    check_duckdb_ddl(c, binary, str(root), "opensensor", ours_rows + 4 * net_rows)
    print(f"opensensor: {len(ours)} preset files + 4 Polars network files in one DuckDB query", flush=True)


# --- Spark (optional: needs Java) ------------------------------------------------------------


def check_spark(c: Checks, data: Path, out: Path) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql import types as T

    spark = (SparkSession.builder.master("local[1]").appName("sensorlake-interop")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        header, rows = read_csv(data)
        lake = str(out / "hive" / "raw")
        df = spark.read.option("basePath", lake).parquet(lake)
        fields = {f.name: f.dataType for f in df.schema.fields}
        c.equal(fields.get("ts"), T.TimestampType(), "Spark: ts type")
        c.equal(fields.get("acc_x"), T.FloatType(), "Spark: acc_x type")
        c.equal((fields.get("device_id"), fields.get("dt"), fields.get("hour")),
                (T.StringType(), T.DateType(), T.IntegerType()), "Spark: partition columns")
        got = [r["acc_x"] for r in df.orderBy("ts").select("acc_x").collect()]
        c.that(got == [f32(r[1]) for r in rows], "Spark: acc_x values of the Hive lake")
        c.equal(df.count(), len(rows), "Spark: rows of the Hive lake")

        ints = spark.read.parquet(str(out / "integers-i16-lz4-delta.parquet"))
        fields = {f.name: f.dataType for f in ints.schema.fields}
        c.equal((fields["acc_x"], fields["steps"], fields["energy_uj"]),
                (T.ShortType(), T.IntegerType(), T.LongType()), "Spark: integer channel types")
        src = [line.split(",") for line in (out / "integers.csv").read_text().splitlines()[1:]]
        got = [(r["acc_x"], r["gap"]) for r in ints.orderBy("ts").collect()]
        c.that(got == [(int(x[1]), int(x[5]) if x[5] else None) for x in src], "Spark: integer values and nulls")

        root = out / "demo-opensensor" / "lake" / "raw"
        ours = sorted(str(p) for p in root.glob("station=enviro-*"))
        osdf = spark.read.option("basePath", str(root)).parquet(*ours)
        fields = {f.name: f.dataType for f in osdf.schema.fields}
        c.equal((fields["timestamp"], fields["station_id"], fields["pm25"]),
                (T.TimestampType(), T.StringType(), T.FloatType()), "Spark: OpenSensor column types")
        want = sum(pq.ParquetFile(f).metadata.num_rows for f in root.glob("station=enviro-*/**/*.parquet"))
        c.equal(osdf.count(), want, "Spark: OpenSensor rows")
        print(f"Spark {spark.version}: Hive lake, integer channels and OpenSensor files read", flush=True)
    finally:
        spark.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, type=Path, help="the sensorlake binary")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "basicmotions.csv")
    parser.add_argument("--spark", action="store_true", help="also read with pyspark (needs Java)")
    args = parser.parse_args()
    print(f"pyarrow {pa.__version__}, duckdb {duckdb.__version__}, polars {pl.__version__}", flush=True)
    c = Checks()
    with tempfile.TemporaryDirectory(prefix="sensorlake-interop-") as tmp:
        out = Path(tmp)
        check_encode_matrix(c, args.bin, args.data, out)
        check_integer_encode(c, args.bin, args.data, out)
        check_hive_encode(c, args.bin, args.data, out)
        check_demo(c, args.bin, out, "enviro", "2h", 2, 5, False)
        check_demo(c, args.bin, out, "imu", "2min", 2, 1 / 64, False)
        check_demo(c, args.bin, out, "imu-raw", "2min", 1, 1 / 64, True)
        check_opensensor(c, args.bin, out)
        if args.spark:
            check_spark(c, args.data, out)
    print(f"interop: {c.passed} passed, {len(c.failed)} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
