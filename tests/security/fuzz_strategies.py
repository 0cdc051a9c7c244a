"""Hypothesis strategies for hostile requests: JSON bodies, base64, custom attributes, S3 URIs, URLs and
structured mutations of valid images (byte flips, truncations, inserted chunks, header dimension edits).

Seed images are encoded here with Pillow, so no binary fixture is committed.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from PIL import Image

# ----------------------------------------------------------------------------------------- text, JSON

# Any code point, lone surrogates included: a JSON-decoded Lambda event can carry them
# (st.text would drop them; a list of characters keeps them.)
any_text = st.lists(
    st.characters(codec=None) | st.sampled_from(["\ud800", "\udc80", "\udfff"]), max_size=64
).map("".join)
# Digits and look-alikes: Unicode digits, superscripts and fractions pass str.isdigit() in surprising ways.
digitish = st.text(alphabet=st.sampled_from("0123456789 +-_.e²³¹\u0661\u0662൧⁰½x"), max_size=6)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=6,
)


@st.composite
def base64_texts(draw: st.DrawFn) -> str:
    """Valid base64 of a few bytes, sometimes broken (stray characters, lost padding, a data: URL)."""
    text = base64.b64encode(draw(st.binary(max_size=48))).decode()
    damage = draw(st.sampled_from(["none", "insert", "strip_padding", "data_url", "urlsafe"]))
    if damage == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["*", " ", "\n", "=", "é", "\x00", "-", "_"])) + text[at:]
    elif damage == "strip_padding":
        text = text.rstrip("=")
    elif damage == "data_url":
        text = f"data:image/jpeg;base64,{text}"
    elif damage == "urlsafe":
        text = text.replace("+", "-").replace("/", "_")
    return text


bucket_names = st.sampled_from(
    ["fuzz-bucket", "other-bucket", "a", "x" * 64, "Fuzz_Bucket", "fuzz..bucket"]
) | (st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_A", min_size=1, max_size=70))
s3_keys = st.sampled_from(["incoming/dog.jpg", "incoming/../x", "%2e%2e/x", "", "k" * 1025]) | any_text


@st.composite
def s3_uris(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return f"s3://fuzz-bucket/{draw(s3_keys)}"
    prefix = draw(st.sampled_from(["s3://", "S3://", "s3:/", "s3:///", "https://", ""]))
    separator = draw(st.sampled_from(["/", "", "//", "\\"]))
    return f"{prefix}{draw(bucket_names)}{separator}{draw(s3_keys)}"


url_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF), max_size=32)
HOSTS = [
    "images.example.com",
    "169.254.169.254",
    "localhost",
    "127.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    "[::1]",
    "[fe80::1%25eth0]",
    "[2001:db8::1",
    "10.0.0.1",
    "xn--nxasmq6b.example",
    "bücher.example",
    "a" * 300,
    "example.com.",
    "",
]


# Hosts that parse: names, and addresses of every kind the policy must judge (public, metadata,
# loopback, private, mapped IPv6).
WELL_FORMED_HOSTS = [
    "images.example.com",
    "93.184.216.34",
    "169.254.169.254",
    "127.0.0.1",
    "10.1.2.3",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[2606:2800:220:1::1]",
    "xn--bcher-kva.example",
]


@st.composite
def urls(draw: st.DrawFn) -> str:
    """URL-shaped strings: half well-formed https URLs (which reach the address policy), half built
    from hostile parts (scheme, credentials, host spellings, ports, paths), some any text."""
    if draw(st.booleans()):
        host = draw(st.sampled_from(WELL_FORMED_HOSTS))
        port = draw(st.sampled_from(["", ":443", ":8443"]))
        return f"https://{host}{port}/{draw(st.text('abc/._-~%20', max_size=16))}"
    if draw(st.integers(0, 9)) == 0:
        return draw(any_text)
    scheme = draw(st.sampled_from(["https", "https", "http", "HTTPS", "file", "gopher", "", "javascript"]))
    credentials = draw(st.sampled_from(["", "", "", "user@", "user:pass@", ":@", "@"]))
    host = draw(
        st.one_of(
            st.sampled_from(HOSTS), st.sampled_from(HOSTS), st.text("abcxyz019.-:[]%@", max_size=24), any_text
        )
    )
    port = draw(st.sampled_from(["", "", ":443", ":0", ":65536", ":-1", ":99999999999", ":abc", ":"]))
    path = draw(
        st.sampled_from(["", "/", "/dog.jpg", "/a?b=c#d", "/%00", "/../../etc/passwd"])
        | url_text.map("/{}".format)
    )
    return f"{scheme}://{credentials}{host}{port}{path}"


REQUEST_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "url": urls() | json_values,
    "image": base64_texts() | json_values,
    "s3_uri": s3_uris() | json_values,
    "top_k": st.integers(-2, 12) | json_values,
}


@st.composite
def request_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A request object: any subset of the real fields plus, sometimes, unknown ones."""
    names = draw(st.lists(st.sampled_from(sorted(REQUEST_FIELDS)), unique=True, max_size=4))
    document: dict[str, Any] = {name: draw(REQUEST_FIELDS[name]) for name in names}
    if draw(st.integers(0, 3)) == 0:
        document.update(draw(st.dictionaries(any_text, json_values, max_size=2)))
    return document


@st.composite
def valid_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Exactly one well-typed source and, sometimes, a top_k in range: what a client should send."""
    source = draw(st.sampled_from(["url", "image", "s3_uri"]))
    values = {"url": urls(), "image": base64_texts(), "s3_uri": s3_uris()}
    document: dict[str, Any] = {source: draw(values[source])}
    if draw(st.booleans()):
        document["top_k"] = draw(st.integers(1, 10))
    return document


def _encode(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8", "surrogatepass")


@st.composite
def nested_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 200_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return (opener * depth + "1" + closer * draw(st.integers(0, depth))).encode()


def json_bodies(*, batches: bool) -> st.SearchStrategy[bytes]:
    """Request bodies: valid JSON documents (objects; lists of them when `batches`), documents with a
    flipped or cut byte, deep nesting, huge numbers, and arbitrary bytes."""
    documents: st.SearchStrategy[Any] = st.one_of(valid_requests(), valid_requests(), request_documents())
    if batches:
        # Small mixed batches, and batches around the 16-item limit.
        documents = (
            documents | st.lists(documents, max_size=3) | st.lists(valid_requests(), min_size=15, max_size=18)
        )
    valid = (documents | json_values).map(_encode)
    return st.one_of(
        valid,
        st.tuples(valid, st.integers(0, 2**16), st.integers(1, 255)).map(_flip),
        st.tuples(valid, st.integers(0, 2**16)).map(lambda pair: pair[0][: pair[1] % (len(pair[0]) + 1)]),
        nested_json(),
        st.integers(4000, 6000).map(lambda digits: b'{"top_k": ' + b"9" * digits + b"}"),
        st.binary(max_size=256),
    )


def _flip(args: tuple[bytes, int, int]) -> bytes:
    data, position, mask = args
    if not data:
        return data
    at = position % len(data)
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


custom_attributes = (
    st.none()
    | any_text
    | st.builds(lambda value: f"top_k={value}", digitish)
    | st.builds(
        lambda prefix, value, suffix: f"{prefix}top_k={value}{suffix}",
        st.sampled_from(["", "a=b,", "a=b; ", "TOP_K=1,"]),
        digitish,
        st.sampled_from(["", ",x=y", ";", ",top_k=2"]),
    )
)
content_types = (
    st.none()
    | any_text
    | st.sampled_from(["application/json", "image/jpeg"])
    | st.sampled_from(
        [
            "application/json",
            "Application/JSON; charset=utf-8",
            "image/jpeg",
            "image/png",
            "application/x-image",
            "",
            "text/plain",
            "multipart/form-data; boundary=x",
        ]
    )
)

# ---------------------------------------------------------------------------------------------- images


def _encode_image(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (width, height))
    image.putdata(
        [((x * 37) % 256, (y * 53) % 256, ((x + y) * 11) % 256) for y in range(height) for x in range(width)]
    )
    return image.convert(mode)


def seed_images() -> dict[str, bytes]:
    """Small valid files of every accepted format, in the variants a decoder treats differently."""
    base = _gradient(24, 16)
    frames = [_gradient(24, 16), _gradient(24, 16).rotate(180)]
    return {
        "jpeg": _encode_image(base, "JPEG", quality=80),
        "jpeg_progressive": _encode_image(base, "JPEG", progressive=True),
        "jpeg_cmyk": _encode_image(base.convert("CMYK"), "JPEG"),
        "jpeg_gray": _encode_image(base.convert("L"), "JPEG"),
        "png": _encode_image(base, "PNG"),
        "png_rgba": _encode_image(base.convert("RGBA"), "PNG"),
        "png_palette": _encode_image(base.convert("P"), "PNG"),
        "png_gray16": _encode_image(base.convert("I;16"), "PNG"),
        "png_interlaced": _encode_image(base, "PNG", interlace=1),
        "gif": _encode_image(base.convert("P"), "GIF"),
        "gif_animated": _encode_image(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0),
        "webp": _encode_image(base, "WEBP", quality=70),
        "webp_lossless": _encode_image(base, "WEBP", lossless=True),
        "bmp": _encode_image(base, "BMP"),
        "bmp_palette": _encode_image(base.convert("P"), "BMP"),
    }


SEED_IMAGES = seed_images()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def set_dimensions(data: bytes, width: int, height: int, *, fix_checksum: bool) -> bytes:
    """Write `width` x `height` into the header field(s) of a PNG, GIF, BMP, JPEG or WEBP file."""
    out = bytearray(data)
    if data.startswith(b"\x89PNG") and len(data) >= 33:
        out[16:24] = struct.pack(">II", width & 0xFFFFFFFF, height & 0xFFFFFFFF)
        if fix_checksum:
            out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif data.startswith(b"GIF") and len(data) >= 13:
        # The logical screen and the first frame: Pillow takes the larger of the two.
        out[6:10] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
        frame = _gif_first_frame(data)
        if frame is not None:
            out[frame + 5 : frame + 9] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
    elif data.startswith(b"BM") and len(data) >= 26:
        out[18:26] = struct.pack("<ii", _signed32(width), _signed32(height))
    elif data.startswith(b"\xff\xd8"):
        at = next(
            (i for i in range(2, len(data) - 9) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2)), -1
        )
        if at >= 0:
            out[at + 5 : at + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        at = data.find(b"VP8 ")
        if at >= 0 and len(data) >= at + 18:
            out[at + 14 : at + 18] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
        at = data.find(b"VP8L")
        if at >= 0 and len(data) >= at + 13:
            bits = ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
            out[at + 9 : at + 13] = struct.pack("<I", bits | (data[at + 12] & 0xF0) << 24)
    return bytes(out)


def _gif_first_frame(data: bytes) -> int | None:
    """Offset of the first image descriptor (0x2C) of a GIF, past the colour table and extensions."""
    at = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while at + 9 < len(data):
        if data[at] == 0x2C:
            return at
        if data[at] != 0x21:
            return None
        at += 2  # extension introducer and label, then data sub-blocks up to a zero length
        while at < len(data) and data[at]:
            at += data[at] + 1
        at += 1
    return None


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


@dataclass(frozen=True)
class Mutation:
    """One edit of a file; `apply` is total (any position is taken modulo the length)."""

    kind: str
    position: int
    payload: bytes = b""
    width: int = 0
    height: int = 0
    fix_checksum: bool = False

    def apply(self, data: bytes) -> bytes:
        at = self.position % (len(data) + 1)
        if self.kind == "flip" and data:
            at %= len(data)
            return data[:at] + bytes([data[at] ^ (self.payload[:1] or b"\x01")[0]]) + data[at + 1 :]
        if self.kind == "truncate":
            return data[:at]
        if self.kind == "insert":
            return data[:at] + self.payload + data[at:]
        if self.kind == "png_chunk" and data.startswith(b"\x89PNG"):
            chunk = _png_chunk(self.payload[:4].ljust(4, b"x"), self.payload[4:])
            return data[:33] + chunk + data[33:]  # right after IHDR
        if self.kind == "duplicate" and data:
            start = at % len(data)
            return data[:at] + data[start : start + len(self.payload) + 16] + data[at:]
        if self.kind == "dimensions":
            return set_dimensions(data, self.width, self.height, fix_checksum=self.fix_checksum)
        return data


dimension_values = st.sampled_from(
    [0, 1, 2, 255, 256, 4096, 65535, 65536, 2**31 - 1, 2**32 - 1]
) | st.integers(0, 2**32 - 1)
positions = st.integers(0, 2**20)
mutations = st.one_of(
    st.builds(Mutation, kind=st.just("flip"), position=positions, payload=st.binary(min_size=1, max_size=1)),
    st.builds(Mutation, kind=st.just("truncate"), position=positions),
    st.builds(
        Mutation, kind=st.just("insert"), position=positions, payload=st.binary(min_size=1, max_size=64)
    ),
    st.builds(Mutation, kind=st.just("png_chunk"), position=st.just(0), payload=st.binary(max_size=64)),
    st.builds(Mutation, kind=st.just("duplicate"), position=positions, payload=st.binary(max_size=256)),
    st.builds(
        Mutation,
        kind=st.just("dimensions"),
        position=st.just(0),
        width=dimension_values,
        height=dimension_values,
        fix_checksum=st.booleans(),
    ),
)
MAGIC_PREFIXES = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"GIF87a",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBP",
]


def _mutated(args: tuple[str, list[Mutation]]) -> tuple[str, bytes]:
    name, edits = args
    data = SEED_IMAGES[name]
    for edit in edits:
        data = edit.apply(data)
    return name, data


def image_inputs() -> st.SearchStrategy[tuple[str, bytes]]:
    """(origin label, bytes): mutated seed images, a known magic number with random bytes, or noise."""
    mutated = st.tuples(
        st.sampled_from(sorted(SEED_IMAGES)), st.lists(mutations, min_size=1, max_size=4)
    ).map(_mutated)
    magic_noise = st.tuples(st.sampled_from(MAGIC_PREFIXES), st.binary(max_size=512)).map(
        lambda pair: ("magic+noise", pair[0] + pair[1])
    )
    noise = st.binary(max_size=2048).map(lambda data: ("noise", data))
    return st.one_of(mutated, mutated, mutated, magic_noise, noise)
