#!/usr/bin/env python3
"""Presigned-URL fixtures from botocore, to check sensorlake's signer against.

Purpose
-------
``crates/sensorlake/tests/presign_fixtures.rs`` runs every case of
``crates/sensorlake/tests/fixtures/presign_botocore.json`` through
``sensorlake::presign::Signer`` (rusty-s3 underneath) and compares the URL with
the one botocore, the AWS SDK for Python's core, made from the same inputs: an
independent SigV4 implementation. This script writes that JSON file; the Rust
test only reads it, so neither Python nor the network is needed to run the tests.

How botocore is driven
----------------------
Each URL comes from ``client.generate_presigned_url`` of a botocore S3 client
configured with the case's endpoint, region, addressing style and credentials,
so botocore itself builds the host, encodes the key (its REST serializer
percent-encodes the ``{Key+}`` label with ``/`` and ``~`` left as they are) and
puts ``Content-MD5`` / ``Content-Length`` / ``If-None-Match`` in the request as
headers. With ``signature_version="s3v4"`` the URL is signed by
``botocore.auth.S3SigV4QueryAuth.add_auth``; the script checks that this very
class signed each URL (and fails otherwise, e.g. if awscrt were installed and
botocore switched to its CRT signer).

The signing time is frozen by patching ``botocore.auth.get_current_datetime``:
``SigV4Auth.add_auth`` (inherited by ``S3SigV4QueryAuth``) calls that
module-level name, and nothing else, to take the time it signs with
(``request.context["timestamp"]``). There is no public clock parameter in
botocore 1.44.5; that one patch is the narrowest seam. ``request_checksum_calculation
="when_required"`` keeps botocore from adding its optional flexible-checksum
headers, so the signed headers are exactly the case's ones plus ``host``.

How to run (from the repository root)
-------------------------------------
::

    python3 -m venv .venv-fixtures
    .venv-fixtures/bin/pip install botocore==1.44.5
    .venv-fixtures/bin/python scripts/presign_fixtures.py          # rewrite the JSON
    .venv-fixtures/bin/python scripts/presign_fixtures.py --check  # compare, don't write
    cargo test -p sensorlake --test presign_fixtures

Pinned: botocore 1.44.5 (with its dependencies jmespath 1.1.0,
python-dateutil 2.9.0.post0, urllib3 2.8.0), Python 3.11. ``.venv-fixtures/`` is
git-ignored. The script refuses to run with any other botocore version unless
``--any-botocore`` is given, so the committed fixtures always say which version
made them.

Credentials are AWS's documentation examples (they contain ``EXAMPLE``); they
sign nothing real.

Known divergence (recorded, not hidden)
---------------------------------------
Keys with ``.`` or ``..`` path segments (``raw/../x``) are signed by botocore
literally, as S3 stores them (S3 keys are not paths and the SigV4 canonical URI
for S3 is not normalised). rusty-s3 builds the URL with the ``url`` crate, whose
WHATWG parser removes dot segments (also ``%2E`` ones), so the URL and signature
are for another key. Such cases carry ``"expect": "diverge"`` and a
``divergence`` note; the Rust test asserts that they still differ exactly that
way, so a fix upstream shows up as a failing test to update, not as silence.
sensorlake's own keys never have dot segments (``key.rs`` rejects them in prefixes).

Address styles (``style-*`` cases): botocore's rule for a custom endpoint is what
``sensorlake::addressing`` implements, with one difference left out of the fixtures:
botocore virtual-hosts a dotted bucket on a plain-http IP endpoint
(``http://a.b.c.127.0.0.1:9000``, even ``a.b.c.[::1]``), which names no host;
sensorlake uses path style for every IP endpoint.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import pathlib
import sys
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

PINNED_BOTOCORE = "1.44.5"

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "crates" / "sensorlake" / "tests" / "fixtures" / "presign_botocore.json"

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN"
# Shaped like a real STS token: '/', '+' and '=' must be percent-encoded in the query.
TOKEN_SPECIAL = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQEXAMPLE+TOKEN/abc=="

T_2023 = 1_700_000_000  # 2023-11-14T22:13:20Z
T_LEAP_EOD = 1_709_251_199  # 2024-02-29T23:59:59Z: last second of a leap day
T_AWS_DOC = 1_369_353_600  # 2013-05-24T00:00:00Z, the date of AWS's SigV4 examples

MINIO = "http://127.0.0.1:9000"
HIVE_KEY = "lake/device_id=dev-01/dt=2024-02-29/hour=23/1709251199000000-9f2c1ab4.parquet"
OPENSENSOR_KEY = "osm/station=ab12/year=2024/month=02/day=29/data_2300.parquet"
BODY = "PAR1 sensorlake fixture body PAR1"


def body_headers(body: str) -> dict[str, str]:
    """The three headers `PutRequest::for_body` signs, computed here independently."""
    data = body.encode("utf-8")
    return {
        "content-md5": base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),
        "content-length": str(len(data)),
        "if-none-match": "*",
    }


def case(name, *, endpoint, bucket, region, path_style, key, token=None,
         unix_time=T_2023, expires=300, method="PUT", body=None, headers=None,
         expect="match", divergence=None):
    assert not (body is not None and headers is not None)
    if body is not None:
        headers = body_headers(body)
    c = {
        "name": name,
        "method": method,
        "endpoint": endpoint,
        "bucket": bucket,
        "region": region,
        "path_style": path_style,
        "key": key,
        "access_key_id": ACCESS,
        "secret_access_key": SECRET,
        "session_token": token,
        "unix_time": unix_time,
        "expires": expires,
        "body": body,
        "headers": headers or {},
        "expect": expect,
    }
    if divergence:
        c["divergence"] = divergence
    return c


def cases() -> list[dict]:
    aws = {
        "us-east-1": "https://s3.amazonaws.com",
        "us-east-1-regional": "https://s3.us-east-1.amazonaws.com",
        "eu-west-1": "https://s3.eu-west-1.amazonaws.com",
        "ap-southeast-2": "https://s3.ap-southeast-2.amazonaws.com",
    }
    out = [
        # The AWS documentation's example (a GET), as a sanity anchor for both sides.
        case("aws-doc-get-example", method="GET", endpoint=aws["us-east-1"],
             bucket="examplebucket", region="us-east-1", path_style=False,
             key="test.txt", unix_time=T_AWS_DOC, expires=86400),
        # Local MinIO-style endpoint with a port, path style.
        case("minio-path-hive-body", endpoint=MINIO, bucket="lake", region="us-east-1",
             path_style=True, key=HIVE_KEY, body=BODY),
        case("minio-path-hive-host-only", endpoint=MINIO, bucket="lake", region="us-east-1",
             path_style=True, key=HIVE_KEY),
        case("minio-path-token-week", endpoint=MINIO, bucket="lake", region="us-east-1",
             path_style=True, key=HIVE_KEY, token=TOKEN, expires=604800, body=BODY),
        case("localhost-path-eu-west-1", endpoint="http://localhost:9000", bucket="lake",
             region="eu-west-1", path_style=True, key=OPENSENSOR_KEY, body=BODY),
        # AWS endpoints, virtual-host and path style, three regions.
        case("us-east-1-global-virtual-body", endpoint=aws["us-east-1"], bucket="sensor-lake",
             region="us-east-1", path_style=False, key=HIVE_KEY, body=BODY),
        case("us-east-1-global-path-host-only", endpoint=aws["us-east-1"], bucket="sensor-lake",
             region="us-east-1", path_style=True, key=HIVE_KEY),
        case("us-east-1-regional-virtual-token", endpoint=aws["us-east-1-regional"],
             bucket="sensor-lake", region="us-east-1", path_style=False, key=OPENSENSOR_KEY,
             token=TOKEN, body=BODY),
        case("eu-west-1-virtual-body", endpoint=aws["eu-west-1"], bucket="sensor-lake-eu",
             region="eu-west-1", path_style=False, key=HIVE_KEY, body=BODY),
        case("eu-west-1-virtual-host-only-week", endpoint=aws["eu-west-1"],
             bucket="sensor-lake-eu", region="eu-west-1", path_style=False, key=HIVE_KEY,
             expires=604800),
        case("eu-west-1-path-token-special", endpoint=aws["eu-west-1"], bucket="sensor-lake-eu",
             region="eu-west-1", path_style=True, key=OPENSENSOR_KEY, token=TOKEN_SPECIAL,
             body=BODY),
        case("ap-southeast-2-virtual-token-week", endpoint=aws["ap-southeast-2"],
             bucket="sensor-lake-syd", region="ap-southeast-2", path_style=False, key=HIVE_KEY,
             token=TOKEN, expires=604800, body=BODY, unix_time=T_LEAP_EOD),
        case("ap-southeast-2-path-host-only", endpoint=aws["ap-southeast-2"],
             bucket="sensor-lake-syd", region="ap-southeast-2", path_style=True,
             key=OPENSENSOR_KEY, unix_time=T_LEAP_EOD),
        # A non-AWS endpoint with a port, virtual host (host header carries the port).
        case("custom-port-virtual", endpoint="https://objects.example.com:9443",
             bucket="lake", region="eu-west-1", path_style=False, key=HIVE_KEY, body=BODY),
        # Subsets of the body-bound headers.
        case("headers-content-length-only", endpoint=MINIO, bucket="lake", region="us-east-1",
             path_style=True, key=HIVE_KEY, headers={"content-length": "1048576"}),
        case("headers-md5-and-if-none-match", endpoint=aws["eu-west-1"], bucket="sensor-lake-eu",
             region="eu-west-1", path_style=False, key=HIVE_KEY,
             headers={"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "if-none-match": "*"}),
        # GET URLs (Signer::presign_get).
        case("get-virtual-token", method="GET", endpoint=aws["ap-southeast-2"],
             bucket="sensor-lake-syd", region="ap-southeast-2", path_style=False,
             key=HIVE_KEY, token=TOKEN),
        case("get-minio-path-space", method="GET", endpoint=MINIO, bucket="lake",
             region="us-east-1", path_style=True, key="exports/monthly report 2024.csv"),
    ]

    # Address styles (issue 11 §3), virtual-host asked for each time: botocore falls back
    # to path style for IP endpoints (v4, v6) and, over https, for bucket names with
    # dots or shaped like an IPv4 address; over plain http a dotted bucket stays a
    # virtual host. Default ports written out (:443, :80) are kept in botocore's URL
    # and left out of its signed host.
    for name, endpoint, bucket, region, path_style in [
        ("style-ipv4-virtual", MINIO, "lake", "us-east-1", False),
        ("style-ipv4-no-port-virtual", "http://10.0.0.5", "lake", "us-east-1", False),
        ("style-ipv4-https-443-virtual", "https://10.0.0.5:443", "lake", "us-east-1", False),
        ("style-ipv4-http-80-virtual", "http://127.0.0.1:80", "lake", "us-east-1", False),
        ("style-ipv6-virtual", "http://[::1]:9000", "lake", "us-east-1", False),
        ("style-ipv6-path", "http://[::1]:9000", "lake", "us-east-1", True),
        ("style-ipv6-https-virtual", "https://[2001:db8::1]", "lake", "eu-west-1", False),
        ("style-dotted-https-aws-virtual", "https://s3.eu-central-1.amazonaws.com",
         "my.dotted.bucket", "eu-central-1", False),
        ("style-dotted-https-custom-virtual", "https://objects.example.com",
         "my.dotted.bucket", "eu-west-1", False),
        ("style-dotted-http-custom-virtual", "http://objects.example.com",
         "my.dotted.bucket", "eu-west-1", False),
        ("style-ip-shaped-bucket-virtual", "https://objects.example.com", "1.2.3.4",
         "eu-west-1", False),
        ("style-https-443-virtual", "https://s3.eu-central-1.amazonaws.com:443",
         "sensor-lake", "eu-central-1", False),
        ("style-https-443-path", "https://s3.eu-central-1.amazonaws.com:443",
         "sensor-lake", "eu-central-1", True),
        ("style-http-80-virtual", "http://objects.example.com:80", "lake", "eu-west-1", False),
        ("style-http-443-virtual", "http://objects.example.com:443", "lake", "eu-west-1",
         False),
        ("style-localhost-virtual", "http://localhost:9000", "lake", "us-east-1", False),
    ]:
        out.append(case(name, endpoint=endpoint, bucket=bucket, region=region,
                        path_style=path_style, key=HIVE_KEY, body=BODY))

    # Key encoding: every key signed both ways (path + virtual, host-only + body).
    keys = {
        "space": "raw/a b/sensor readings.parquet",
        "plus": "raw/a+b/c+d=1.parquet",
        "hive-equals-deep": "p/a=1/b=2/c=3/d=4/e=5/f.parquet",
        "nested-slashes": "a/b/c/d/e/f/g/h/i/j.parquet",
        "double-slash": "raw//double//slash.parquet",
        "trailing-slash": "raw/folder/",
        "leading-slash": "/rooted/key.parquet",
        "reserved-ascii": "raw/!$&'()*,;:@[]{}|^`\\\"<>#?%.parquet",
        "unreserved": "raw/AZaz09-_.~.parquet",
        "percent-literal": "raw/100%25/%2F/x.parquet",
        "unicode-nfc": "raw/caf\u00e9/\u00fc\u00f1\u00ee/\u6e29\u5ea6.parquet",
        "unicode-nfd": "raw/cafe\u0301/x.parquet",
        "unicode-astral": "raw/\U0001F321\uFE0F/temp.parquet",
        "dots-in-names": "raw/.hidden/a..b/.../x.parquet",
    }
    for label, key in keys.items():
        out.append(case(f"key-{label}-path-host-only", endpoint=MINIO, bucket="lake",
                        region="us-east-1", path_style=True, key=key))
        out.append(case(f"key-{label}-virtual-body-token", endpoint=aws["eu-west-1"],
                        bucket="sensor-lake-eu", region="eu-west-1", path_style=False,
                        key=key, token=TOKEN, body=BODY))

    dots_note = (
        "botocore signs the key's '.'/'..' segments literally (S3 does not normalise "
        "the path); rusty-s3 builds the URL with the url crate, which removes dot "
        "segments, so it signs and addresses another key"
    )
    for label, key in {
        "dotdot-segment": "raw/../escaped.parquet",
        "dot-segment": "raw/./here.parquet",
    }.items():
        out.append(case(f"key-{label}-path-host-only", endpoint=MINIO, bucket="lake",
                        region="us-east-1", path_style=True, key=key,
                        expect="diverge", divergence=dots_note))
        out.append(case(f"key-{label}-virtual-body", endpoint=aws["eu-west-1"],
                        bucket="sensor-lake-eu", region="eu-west-1", path_style=False,
                        key=key, body=BODY, expect="diverge", divergence=dots_note))
    return out


PARAM_OF_HEADER = {
    "content-md5": ("ContentMD5", str),
    "content-length": ("ContentLength", int),
    "if-none-match": ("IfNoneMatch", str),
}


def presign(c: dict) -> str:
    import botocore.auth
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    client = session.create_client(
        "s3",
        region_name=c["region"],
        endpoint_url=c["endpoint"],
        aws_access_key_id=c["access_key_id"],
        aws_secret_access_key=c["secret_access_key"],
        aws_session_token=c["session_token"],
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if c["path_style"] else "virtual"},
            request_checksum_calculation="when_required",
            retries={"total_max_attempts": 1},
        ),
    )
    params = {"Bucket": c["bucket"], "Key": c["key"]}
    for header, value in c["headers"].items():
        param, convert = PARAM_OF_HEADER[header]
        params[param] = convert(value)
    operation = {"PUT": "put_object", "GET": "get_object"}[c["method"]]

    frozen = datetime.datetime.fromtimestamp(c["unix_time"], datetime.timezone.utc)
    frozen = frozen.replace(tzinfo=None)  # what get_current_datetime() returns by default
    real_add_auth = botocore.auth.S3SigV4QueryAuth.add_auth
    signers = []

    def spy(self, request):
        signers.append(type(self))
        return real_add_auth(self, request)

    with mock.patch("botocore.auth.get_current_datetime", return_value=frozen), \
            mock.patch.object(botocore.auth.S3SigV4QueryAuth, "add_auth", spy):
        url = client.generate_presigned_url(
            operation, Params=params, ExpiresIn=c["expires"], HttpMethod=c["method"]
        )
    if signers != [botocore.auth.S3SigV4QueryAuth]:
        raise SystemExit(f"{c['name']}: not signed by S3SigV4QueryAuth ({signers})")
    return url


def check_url(c: dict, url: str) -> None:
    """Fails loudly if botocore signed something other than what the case says."""
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    want = ";".join(sorted(["host", *c["headers"]]))
    problems = []
    if query.get("X-Amz-SignedHeaders") != want:
        problems.append(f"signed headers {query.get('X-Amz-SignedHeaders')!r} != {want!r}")
    stamp = datetime.datetime.fromtimestamp(c["unix_time"], datetime.timezone.utc)
    if query.get("X-Amz-Date") != stamp.strftime("%Y%m%dT%H%M%SZ"):
        problems.append(f"date {query.get('X-Amz-Date')!r} is not the frozen time")
    if query.get("X-Amz-Expires") != str(c["expires"]):
        problems.append(f"expires {query.get('X-Amz-Expires')!r}")
    if query.get("X-Amz-Security-Token") != c["session_token"]:
        problems.append("session token not as given")
    expected = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                "X-Amz-SignedHeaders", "X-Amz-Signature"}
    if c["session_token"]:
        expected.add("X-Amz-Security-Token")
    if set(query) != expected:
        problems.append(f"query parameters {sorted(query)}")
    if problems:
        raise SystemExit(f"{c['name']}: {'; '.join(problems)}\n  {url}")


def build(any_botocore: bool) -> dict:
    import botocore

    if botocore.__version__ != PINNED_BOTOCORE and not any_botocore:
        raise SystemExit(
            f"botocore {botocore.__version__} is installed, the fixtures are pinned to "
            f"{PINNED_BOTOCORE}: pip install botocore=={PINNED_BOTOCORE} (or --any-botocore)"
        )
    table = cases()
    names = [c["name"] for c in table]
    assert len(names) == len(set(names)), "case names must be unique"
    for c in table:
        c["url"] = presign(c)
        check_url(c, c["url"])
    return {
        "generator": "scripts/presign_fixtures.py",
        "botocore_version": botocore.__version__,
        "signer": "botocore.auth.S3SigV4QueryAuth via client.generate_presigned_url",
        "comparison": (
            "same scheme, host and port; same percent-decoded path; same query parameter "
            "map; identical X-Amz-Signature (it covers the canonical request)"
        ),
        "cases": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate in memory and fail if the committed file differs")
    parser.add_argument("--any-botocore", action="store_true",
                        help=f"allow a botocore other than {PINNED_BOTOCORE}")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()

    text = json.dumps(build(args.any_botocore), indent=2, ensure_ascii=True) + "\n"
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            raise SystemExit(f"{args.out} is out of date: rerun without --check")
        print(f"{args.out}: up to date")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(json.loads(text)['cases'])} cases to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
