"""The hostile-input corpus: every case is generated here by code (nothing binary is committed) and
declares, for each entry point it applies to, the outcome the product promises.

Entry points (`Entry`) and what each payload becomes there:

- `ImageBytes`: the body of api-binary and invocations (`image/jpeg`), `{"image": base64}` for api-json
  and direct-invoke, an object under `incoming/hostile/` for the s3-drop;
- `Json`: the body of api-json and invocations (`application/json`), the direct invoke's payload; the
  endpoint takes image bytes only, so every JSON body is its 415 `unsupported_content_type`;
- `TopK`: `{"image", "top_k"}` (api-json, direct-invoke), `?top_k=` (api-binary), the
  `X-Amzn-SageMaker-Custom-Attributes: top_k=` header with a good image (invocations);
- `Stream`: a body streamed from a generator (api-binary, invocations);
- `ObjectKey`: a good image uploaded under that key (s3-drop);
- `Redirect`, `SlowDrip`: served by a test server on 127.0.0.2 to the URL fetcher both URL entry points
  share (`prediction.url_guard.fetch_url`), under the address policy "public, or exactly 127.0.0.2":
  the local cloud's production URL policy refuses every loopback first hop, so only the fetcher itself
  can be shown a permitted first hop that redirects (url-fetcher).

An `Outcome` is the HTTP status and error code the caller sees: the product's `error.code`, or for a
limit that API Gateway or Lambda enforce before the product runs, their own answer (API Gateway's
`message`, Lambda's error type). `/invocations` answers a refused input with SageMaker's ModelError
(424) around the model server's answer; the outcome is the model server's status and code inside it.
A direct invoke has no status line: the Invoke call answers 200 with the product's error body. An S3
drop's outcome is its record: the rejection record's code, `accepted` (a `results/` record) or
`not triggered` (no record: the key is outside the trigger's `incoming/` prefix).

Accepted by design: an animated GIF (its first frame is classified) and a CMYK JPEG (converted to RGB),
as any image viewer shows them; a Unicode object key is an ordinary name.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, cached_property

from PIL import Image

from dogbreed.bench.tiny_model import solid_color_jpeg

MIB = 1024 * 1024
SIX_MIB_PLUS_ONE = 6 * MIB + 1
STREAM_BYTES = 100 * 1000 * 1000
ACCEPTED = "accepted"
NOT_TRIGGERED = "not triggered"
# The limits enforced in front of the product (docs/api.md, "Hostile input").
GATEWAY_BODY_LIMIT = "HTTP content length exceeded 10485760 bytes."
# API Gateway's REQUEST_TOO_LARGE gateway response, in the API's envelope (template.yaml GatewayResponses).
LAMBDA_EVENT_LIMIT = "request_too_large"
INVOKE_PAYLOAD_LIMIT = "RequestEntityTooLargeException"
INVOKE_ENDPOINT_BODY_LIMIT = f"HTTP content length exceeded {6 * 1024 * 1024} bytes."


class Entry(StrEnum):
    API_JSON = "api-json"
    API_BINARY = "api-binary"
    S3_DROP = "s3-drop"
    INVOCATIONS = "invocations"
    DIRECT_INVOKE = "direct-invoke"
    URL_FETCHER = "url-fetcher"


@dataclass(frozen=True)
class Outcome:
    code: str
    status: int | None = None  # None for the S3 drop (a record, not a response)

    @property
    def is_client_error(self) -> bool:
        """A refused input: a 4xx answer, or a rejection record (the no-leak check covers these)."""
        if self.status is None:
            return self.code not in (ACCEPTED, NOT_TRIGGERED)
        return 400 <= self.status < 500 or (self.status == 200 and self.code != ACCEPTED)

    def __str__(self) -> str:
        return self.code if self.status is None else f"{self.status} {self.code}"


@dataclass(frozen=True)
class ImageBytes:
    """An image body, built on first use (collection only needs the cases' names and outcomes)."""

    build: Callable[[], bytes]

    @cached_property
    def data(self) -> bytes:
        return self.build()


@dataclass(frozen=True)
class Json:
    """A JSON body, built on first use."""

    build: Callable[[], bytes]

    @cached_property
    def body(self) -> bytes:
        return self.build()


def literal(value: bytes) -> Callable[[], bytes]:
    return lambda: value


@dataclass(frozen=True)
class TopK:
    value: object


@dataclass(frozen=True)
class Stream:
    total_bytes: int

    def chunks(self, size: int = MIB) -> Iterator[bytes]:
        """The body, generated chunk by chunk: never held in memory whole."""
        chunk = b"\xff\xd8\xff\xe0" + b"\x00" * (size - 4)
        sent = 0
        while sent < self.total_bytes:
            part = chunk[: min(size, self.total_bytes - sent)]
            sent += len(part)
            yield part


@dataclass(frozen=True)
class ObjectKey:
    key: str


@dataclass(frozen=True)
class Redirect:
    """A permitted first hop that redirects to `location` (`{port}`: the test server's port)."""

    location: str


@dataclass(frozen=True)
class SlowDrip:
    """A permitted server that sends its body a byte at a time, each well within the read timeout."""


Payload = ImageBytes | Json | TopK | Stream | ObjectKey | Redirect | SlowDrip


@dataclass(frozen=True)
class Case:
    name: str
    payload: Payload
    expect: Mapping[Entry, Outcome]


# ------------------------------------------------------------------------------------ expectations


def api(status: int, code: str) -> Outcome:
    return Outcome(code, status)


def refused_everywhere(status: int, code: str) -> dict[Entry, Outcome]:
    """An image every entry point refuses the same way (the guards are one package)."""
    return {
        Entry.API_JSON: api(status, code),
        Entry.API_BINARY: api(status, code),
        Entry.INVOCATIONS: api(status, code),
        Entry.DIRECT_INVOKE: api(200, code),
        Entry.S3_DROP: Outcome(code),
    }


def accepted_everywhere() -> dict[Entry, Outcome]:
    return {
        Entry.API_JSON: api(201, ACCEPTED),
        Entry.API_BINARY: api(201, ACCEPTED),
        Entry.INVOCATIONS: api(200, ACCEPTED),
        Entry.DIRECT_INVOKE: api(200, ACCEPTED),
        Entry.S3_DROP: Outcome(ACCEPTED),
    }


# The endpoint takes image bytes only: URLs, S3 objects and base64 are the API's (one SSRF surface).
ENDPOINT_REFUSES_JSON = api(415, "unsupported_content_type")


def refused_request(status: int, code: str) -> dict[Entry, Outcome]:
    """A JSON request refused by the API and the direct invoke (the endpoint refuses any JSON body)."""
    return {
        Entry.API_JSON: api(status, code),
        Entry.INVOCATIONS: ENDPOINT_REFUSES_JSON,
        Entry.DIRECT_INVOKE: api(200, code),
    }


# ---------------------------------------------------------------------------------------- images


def good_image() -> bytes:
    """The good request every entry point must still answer after each case."""
    return solid_color_jpeg(1)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@cache
def _photo_jpeg() -> bytes:
    """A 256x256 JPEG with texture, so half of it is a clearly truncated scan."""
    image = Image.effect_noise((256, 256), 64).convert("RGB")
    return _encode(image, "JPEG", quality=90)


def truncated_jpeg() -> bytes:
    data = _photo_jpeg()
    return data[: len(data) // 2]


def corrupt_png() -> bytes:
    """A PNG whose compressed pixel data is overwritten: the header is fine, the data is not."""
    data = bytearray(_encode(Image.effect_noise((64, 64), 64), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 2 : start + 200] = b"\x55" * 198
    return bytes(data)


def corrupt_jpeg_header() -> bytes:
    """A JPEG start-of-image marker followed by garbage where the segments should be."""
    return b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes, *, bit_depth: int = 8, color_type: int = 0) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def zero_dimension_png() -> bytes:
    return _png(0, 16, zlib.compress(b""))


def png_bomb(side: int = 20_000) -> bytes:
    """A 1-bit PNG of side x side black pixels (400 MP): ~50 KB that decompresses to 50 MB of rows."""
    row = b"\x00" * (1 + side // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    return _png(side, side, b"".join(parts), bit_depth=1)


def jpeg_bomb(side: int = 60_000) -> bytes:
    """A tiny JPEG whose frame header claims side x side pixels (3.6 GP)."""
    data = bytearray(_encode(Image.new("L", (8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


@cache
def fifty_megapixels() -> bytes:
    """A real 8660x5774 (50 MP) JPEG, small on the wire because it is one flat grey."""
    return _encode(Image.new("L", (8660, 5774), 128), "JPEG", quality=50)


def animated_gif() -> bytes:
    frames = [Image.new("P", (64, 64), index) for index in (10, 20, 30)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def cmyk_jpeg() -> bytes:
    return _encode(Image.new("CMYK", (64, 64), (200, 0, 200, 0)), "JPEG")


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dog.jpg", b"not really a dog")
    return buffer.getvalue()


def over_six_mib() -> bytes:
    """6 MiB + 1 byte that starts like a JPEG: one byte over every 6 MiB limit."""
    return b"\xff\xd8\xff\xe0" + b"\x00" * (SIX_MIB_PLUS_ONE - 4)


# ------------------------------------------------------------------------------------------- JSON


def json_body(document: object) -> Json:
    return Json(lambda: json.dumps(document).encode())


def deeply_nested_json(depth: int = 100_000) -> Json:
    return Json(lambda: b'{"image": ' + b"[" * depth + b"]" * depth + b"}")


def huge_json(size: int = 9 * MIB) -> Json:
    """9 MiB: under API Gateway's 10 MiB, over Lambda's and the endpoint's 6 MiB."""
    return Json(lambda: b'{"image": "' + b"A" * size + b'"}')


def wide_json(keys: int = 100_000) -> Json:
    """A 1.5 MB object with 100,000 unknown fields."""
    return Json(lambda: json.dumps({f"field{index}": index for index in range(keys)}).encode())


# ------------------------------------------------------------------------------------------ cases


def _url_case(name: str, url: str, code: str) -> Case:
    return Case(name, json_body({"url": url}), refused_request(422, code))


def _image_case(name: str, build: Callable[[], bytes], status: int, code: str) -> Case:
    return Case(name, ImageBytes(build), refused_everywhere(status, code))


def _top_k_case(value: object) -> Case:
    return Case(
        f"top_k={value!r}",
        TopK(value),
        {
            Entry.API_JSON: api(422, "validation_error"),
            Entry.API_BINARY: api(422, "validation_error"),
            Entry.INVOCATIONS: api(422, "invalid_top_k"),
            Entry.DIRECT_INVOKE: api(200, "validation_error"),
        },
    )


def _redirect_case(name: str, location: str, code: str) -> Case:
    return Case(f"redirect to {name}", Redirect(location), {Entry.URL_FETCHER: api(422, code)})


def _key_case(name: str, key: str, outcome: str) -> Case:
    return Case(name, ObjectKey(key), {Entry.S3_DROP: Outcome(outcome)})


@cache
def corpus() -> tuple[Case, ...]:
    """Every case, in a fixed order. Cheap: each payload is built when a test first reads it."""
    return (
        # Broken and disguised images.
        _image_case("truncated JPEG", truncated_jpeg, 400, "truncated_image"),
        _image_case("corrupt PNG data", corrupt_png, 400, "corrupt_image"),
        _image_case("corrupt JPEG header", corrupt_jpeg_header, 400, "corrupt_image"),
        _image_case("empty image", literal(b""), 400, "empty_body"),
        _image_case("zero-dimension PNG", zero_dimension_png, 400, "corrupt_image"),
        _image_case("text named .jpg", literal(b"just some text, not a dog\n" * 20), 415, "not_an_image"),
        _image_case(
            "HTML named .jpg",
            literal(b"<!doctype html><html><body><img src=x></body></html>"),
            415,
            "not_an_image",
        ),
        _image_case("zip named .jpg", zip_archive, 415, "not_an_image"),
        # Bombs and sizes.
        _image_case("PNG decompression bomb", png_bomb, 413, "image_too_large"),
        _image_case("JPEG decompression bomb", jpeg_bomb, 413, "image_too_large"),
        _image_case("50-megapixel JPEG", fifty_megapixels, 413, "image_too_large"),
        Case(
            "6 MiB + 1 byte",
            ImageBytes(over_six_mib),
            {
                Entry.API_JSON: api(413, LAMBDA_EVENT_LIMIT),
                Entry.API_BINARY: api(413, LAMBDA_EVENT_LIMIT),
                Entry.INVOCATIONS: api(413, INVOKE_ENDPOINT_BODY_LIMIT),
                Entry.DIRECT_INVOKE: api(413, INVOKE_PAYLOAD_LIMIT),
                Entry.S3_DROP: Outcome("body_too_large"),
            },
        ),
        Case(
            "100 MB stream",
            Stream(STREAM_BYTES),
            {
                Entry.API_BINARY: api(413, GATEWAY_BODY_LIMIT),
                Entry.INVOCATIONS: api(413, INVOKE_ENDPOINT_BODY_LIMIT),
            },
        ),
        # Accepted by design.
        Case("animated GIF", ImageBytes(animated_gif), accepted_everywhere()),
        Case("CMYK JPEG", ImageBytes(cmyk_jpeg), accepted_everywhere()),
        # JSON.
        Case(
            "malformed JSON",
            Json(literal(b'{"url": "https://images.example/dog.jpg"')),
            {
                Entry.API_JSON: api(400, "invalid_json"),
                Entry.INVOCATIONS: ENDPOINT_REFUSES_JSON,
                Entry.DIRECT_INVOKE: api(400, "InvalidRequestContentException"),
            },
        ),
        Case(
            "deeply nested JSON",
            deeply_nested_json(),
            {
                Entry.API_JSON: api(400, "invalid_json"),
                Entry.INVOCATIONS: ENDPOINT_REFUSES_JSON,
                Entry.DIRECT_INVOKE: api(200, "Runtime.UnmarshalError"),
            },
        ),
        Case(
            "huge JSON (9 MiB)",
            huge_json(),
            {
                Entry.API_JSON: api(413, LAMBDA_EVENT_LIMIT),
                Entry.INVOCATIONS: api(413, INVOKE_ENDPOINT_BODY_LIMIT),
                Entry.DIRECT_INVOKE: api(413, INVOKE_PAYLOAD_LIMIT),
            },
        ),
        Case(
            "wide JSON (100,000 fields)",
            wide_json(),
            refused_request(422, "validation_error"),
        ),
        Case(
            "wrong base64",
            json_body({"image": "this is *not* base64!"}),
            refused_request(400, "invalid_base64"),
        ),
        Case(
            "base64 of a text file",
            json_body({"image": base64.b64encode(b"hello").decode()}),
            refused_request(415, "not_an_image"),
        ),
        # top_k.
        *(_top_k_case(value) for value in (0, -1, 11, "abc")),
        # SSRF: every form of a private, loopback or metadata address, and every scheme but https.
        _url_case(
            "metadata 169.254.169.254", "https://169.254.169.254/latest/meta-data/", "url_forbidden_address"
        ),
        _url_case(
            "metadata over http",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "url_scheme_not_allowed",
        ),
        _url_case("localhost", "https://localhost/dog.jpg", "url_forbidden_address"),
        _url_case("127.1", "https://127.1/dog.jpg", "url_ambiguous_host"),
        _url_case("0x7f000001", "https://0x7f000001/dog.jpg", "url_ambiguous_host"),
        _url_case("2130706433", "https://2130706433/dog.jpg", "url_ambiguous_host"),
        _url_case("[::ffff:127.0.0.1]", "https://[::ffff:127.0.0.1]/dog.jpg", "url_forbidden_address"),
        _url_case("private 10.0.0.8", "https://10.0.0.8/dog.jpg", "url_forbidden_address"),
        _url_case("private 172.16.4.2", "https://172.16.4.2/dog.jpg", "url_forbidden_address"),
        _url_case("private 192.168.1.1", "https://192.168.1.1/dog.jpg", "url_forbidden_address"),
        _url_case("CGNAT 100.64.0.1", "https://100.64.0.1/dog.jpg", "url_forbidden_address"),
        _url_case("file://", "file:///etc/passwd", "url_scheme_not_allowed"),
        _url_case("gopher://", "gopher://127.0.0.1:6379/_INFO", "url_scheme_not_allowed"),
        _url_case(
            "credentials in the URL", "https://admin:hunter2@images.example/dog.jpg", "url_credentials"
        ),
        Case(
            "s3_uri outside the allow-list",
            json_body({"s3_uri": "s3://someone-elses-bucket/dog.jpg"}),
            refused_request(422, "s3_bucket_not_allowed"),
        ),
        # Redirects from a permitted first hop, and a slow drip (tests/unit/test_request_guards_url.py
        # covers redirects to http metadata, decimal and octal loopback, [::ffff:10.0.0.1] and file://).
        Case("permitted first hop", Redirect("/image.jpg"), {Entry.URL_FETCHER: api(200, ACCEPTED)}),
        _redirect_case("127.0.0.1", "http://127.0.0.1:{port}/image.jpg", "url_forbidden_address"),
        _redirect_case("localhost", "http://localhost:{port}/image.jpg", "url_forbidden_address"),
        _redirect_case("127.1", "http://127.1:{port}/image.jpg", "url_ambiguous_host"),
        _redirect_case("0x7f000001", "http://0x7f000001:{port}/image.jpg", "url_ambiguous_host"),
        _redirect_case(
            "[::ffff:127.0.0.1]", "http://[::ffff:127.0.0.1]:{port}/image.jpg", "url_forbidden_address"
        ),
        _redirect_case(
            "169.254.169.254", "https://169.254.169.254/latest/meta-data/", "url_forbidden_address"
        ),
        _redirect_case("10.0.0.8", "http://10.0.0.8/dog.jpg", "url_forbidden_address"),
        _redirect_case("172.16.4.2", "http://172.16.4.2/dog.jpg", "url_forbidden_address"),
        _redirect_case("192.168.1.1", "http://192.168.1.1/dog.jpg", "url_forbidden_address"),
        _redirect_case("gopher://", "gopher://127.0.0.2:{port}/_INFO", "url_scheme_not_allowed"),
        _redirect_case("credentials", "http://admin:hunter2@127.0.0.2:{port}/image.jpg", "url_credentials"),
        Case("slow-drip server", SlowDrip(), {Entry.URL_FETCHER: api(422, "url_timeout")}),
        # S3 keys.
        _key_case("key incoming/../x", "incoming/../x.jpg", "unsafe_key"),
        _key_case("key incoming/%2e%2e/x", "incoming/%2e%2e/x.jpg", "unsafe_key"),
        _key_case("key with an empty segment", "incoming/a//b.jpg", "unsafe_key"),
        _key_case("key of 1,023 bytes", "incoming/" + "k" * 1010 + ".jpg", "unsafe_key"),
        _key_case("unicode key", "incoming/hunde-🐕/ñandú façade 犬.jpg", ACCEPTED),
        _key_case("key outside incoming/", "uploads/dog.jpg", NOT_TRIGGERED),
        _key_case("key at the bucket root", "dog.jpg", NOT_TRIGGERED),
    )


def cases_for(entry: Entry) -> list[Case]:
    return [case for case in corpus() if entry in case.expect]
