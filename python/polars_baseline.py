"""The Polars baseline of `sensorlake bench`: what environmental stations write today.

Reads CSV files (header `ts_us,<channel>,...`, timestamps in integer microseconds),
stores every channel as float32 and the timestamp as milliseconds UTC, splits the rows
into files of N rows and writes each with `DataFrame.write_parquet(compression="snappy")`
into memory. Prints JSON: {"<csv path>": {"<N>": [total bytes, files], ...}, ...}.

    python polars_baseline.py --rows 178,1024,4096 a.csv b.csv
"""

import argparse
import io
import json

import polars as pl


def sizes(path: str, rows_per_file: list[int]) -> dict[str, list[int]]:
    df = pl.read_csv(path)
    channels = [c for c in df.columns if c != "ts_us"]
    df = df.select(
        pl.from_epoch(pl.col("ts_us"), time_unit="us")
        .dt.cast_time_unit("ms")
        .dt.replace_time_zone("UTC")
        .alias("timestamp"),
        *[pl.col(c).cast(pl.Float32) for c in channels],
    )
    out = {}
    for n in rows_per_file:
        n_eff = min(n, df.height)
        total = files = 0
        for start in range(0, df.height - n_eff + 1, n_eff):
            buf = io.BytesIO()
            df.slice(start, n_eff).write_parquet(buf, compression="snappy")
            total += len(buf.getvalue())
            files += 1
        out[str(n)] = [total, files]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", required=True)
    parser.add_argument("csv", nargs="+")
    args = parser.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    print(json.dumps({path: sizes(path, rows) for path in args.csv}))


if __name__ == "__main__":
    main()
