"""Fuzz targets: the request parsers and the image guard under hostile input (hypothesis, bounded time).

The property, for every target: each input ends in a value that respects the limits (an RGB image within
max_pixels, a valid request) or in an `InputError` with a client-safe message; never another exception.
The targets share the budget by the weights in SHARES: a fixed number of examples from fixed seeds in
`make test`, DOGBREED_FUZZ_SECONDS of fresh seeds in `make reliability` (fuzz_budget.py; a failure names
its batch seed). `pytest -s` prints each target's tally.

No target touches the network: URL fetches use an address policy that refuses every address and a
resolver that answers from the example, and the `no_network` guard fails the test on any lookup or connect.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import inference
import pytest
from dogbreed_job import serving_input
from hypothesis import strategies as st
from PIL import Image
from prediction import url_guard
from prediction.s3_guard import MAX_KEY_LENGTH, parse_s3_uri
from request_guards.errors import InputError
from request_guards.image_guard import load_image

from dogbreed import REPO_ROOT
from tests.security.fuzz_budget import FuzzRun, fuzz
from tests.security.fuzz_strategies import (
    SEED_IMAGES,
    any_text,
    base64_texts,
    content_types,
    custom_attributes,
    image_inputs,
    json_bodies,
    json_values,
    s3_uris,
    set_dimensions,
    urls,
)
from tests.support.lambda_world import lambda_world

# Relative time per target; the image guard has the largest input space.
SHARES = {
    "api_body": 1.0,
    "api_raw_body": 0.5,
    "endpoint_request": 1.5,
    "custom_attributes": 0.5,
    "s3_uri": 0.5,
    "url": 1.5,
    "image": 4.5,
}
ALLOWED_BUCKETS = frozenset({"fuzz-bucket"})
FUZZ_MAX_PIXELS = 1_000_000
# A client-safe message names no file, stack frame, object address or internal path.
LEAK_MARKERS = ("Traceback", 'File "', " object at 0x", str(REPO_ROOT), "/opt/ml", "site-packages")
ERROR_CODE = re.compile(r"[a-z][a-z0-9_]*")


def share(target: str) -> float:
    """The target's fraction of the fuzzing budget."""
    return SHARES[target] / sum(SHARES.values())


def client_safe(error: InputError) -> str:
    """Assert `error` is a 4xx with a stable code and a message fit for the client; returns the code."""
    assert 400 <= error.status < 500, repr(error)
    assert ERROR_CODE.fullmatch(error.code), repr(error)
    assert isinstance(error.message, str) and error.message.strip(), repr(error)
    error.message.encode("utf-8")  # every HTTP surface sends it as UTF-8 (lone surrogates cannot be)
    leaked = [marker for marker in LEAK_MARKERS if marker in error.message]
    assert not leaked, f"{error!r} shows {leaked}"
    json.dumps(error.to_dict())
    return error.code


def assert_both_outcomes(run: FuzzRun) -> None:
    """The generator reached both sides of the parser: accepted inputs and rejected ones."""
    assert run.outcomes["accepted"] > 0, run.summary()
    assert sum(run.outcomes.values()) > run.outcomes["accepted"], run.summary()


@pytest.fixture(scope="module")
def api() -> Iterator[ModuleType]:
    """`predict_api.app`, imported under the functions' environment (as the Lambda tests do)."""
    with lambda_world() as world:
        assert world.api is not None
        yield world.api


def refuse_every_address(_address: Any) -> bool:
    return False


# ------------------------------------------------------------------------------ predict_api (Lambda)


def test_api_json_body_parses_to_a_valid_request_or_a_client_error(api: ModuleType) -> None:
    from prediction.models import MAX_TOP_K, MIN_TOP_K

    def check(body: bytes) -> str:
        try:
            request = api.parse_request(body)
        except InputError as error:
            return client_safe(error)
        sources = [name for name in ("url", "image", "s3_uri") if getattr(request, name) is not None]
        assert len(sources) == 1, request
        assert request.top_k is None or MIN_TOP_K <= request.top_k <= MAX_TOP_K, request
        return "accepted"

    assert_both_outcomes(
        fuzz("predict_api.parse_request", json_bodies(batches=False), check, share=share("api_body"))
    )


def test_api_event_body_decodes_to_bytes_or_a_client_error(api: ModuleType) -> None:
    bodies = st.none() | any_text | base64_texts()

    def check(args: tuple[str | None, bool]) -> str:
        body, is_base64 = args
        try:
            data = api._raw_body(body, is_base64)
        except InputError as error:
            return client_safe(error)
        assert isinstance(data, bytes)
        if not body:
            assert data == b""
        elif not is_base64:
            assert data == body.encode("utf-8", "surrogatepass")
        return "accepted"

    run = fuzz("predict_api._raw_body", st.tuples(bodies, st.booleans()), check, share=share("api_raw_body"))
    assert_both_outcomes(run)


# --------------------------------------------------------------------------- endpoint (inference.py)


def test_endpoint_request_reads_to_one_image_or_a_client_error(no_network: list[str]) -> None:
    # The endpoint takes image bytes only: JSON bodies (what clients send the API) end in a 415.
    bodies = json_bodies(batches=True) | st.binary(max_size=64) | any_text
    json_requests = st.tuples(json_bodies(batches=True), st.just("application/json"), st.none())
    examples = st.tuples(bodies, content_types, custom_attributes) | json_requests

    def check(args: tuple[bytes | str, str | None, str | None]) -> str:
        body, content_type, attributes = args
        try:
            raw = inference.read_request(body, content_type, custom_attributes=attributes)
        except InputError as error:
            return client_safe(error)
        assert serving_input.media_type(content_type) in serving_input.IMAGE_CONTENT_TYPES, content_type
        assert type(raw.top_k) is int and 1 <= raw.top_k <= serving_input.MAX_TOP_K, raw
        assert isinstance(raw.image, bytes) and len(raw.image) <= serving_input.MAX_BYTES
        return "accepted"

    assert_both_outcomes(fuzz("inference.read_request", examples, check, share=share("endpoint_request")))


def test_custom_attributes_give_a_top_k_in_range_or_a_client_error() -> None:
    def check(attributes: str | None) -> str:
        try:
            top_k = serving_input.top_k_from_custom_attributes(attributes)
        except InputError as error:
            return client_safe(error)
        assert top_k is None or (type(top_k) is int and 1 <= top_k <= serving_input.MAX_TOP_K), top_k
        return "accepted"

    run = fuzz(
        "inference.top_k_from_custom_attributes", custom_attributes, check, share=share("custom_attributes")
    )
    assert_both_outcomes(run)


# ------------------------------------------------------------------------------------ request_guards


def test_s3_uri_parses_to_an_allowed_location_or_a_client_error() -> None:
    def check(uri: Any) -> str:
        try:
            bucket, key = parse_s3_uri(uri, ALLOWED_BUCKETS)
        except InputError as error:
            return client_safe(error)
        assert bucket in ALLOWED_BUCKETS and uri == f"s3://{bucket}/{key}", (uri, bucket, key)
        assert 0 < len(key) <= MAX_KEY_LENGTH and all(ord(char) >= 0x20 for char in key), key
        return "accepted"

    run = fuzz("s3_guard.parse_s3_uri", s3_uris() | json_values, check, share=share("s3_uri"))
    assert_both_outcomes(run)


def test_url_fetch_refuses_every_url_without_connecting(no_network: list[str]) -> None:
    # The resolver's answers: mostly addresses (which reach the policy), sometimes garbage or nothing.
    answers = st.lists(
        st.sampled_from(["93.184.216.34", "2606:2800:220:1::1", "127.0.0.1"]), min_size=1
    ) | st.lists(st.sampled_from(["not-an-ip", "", "93.184.216.34"]))
    examples = st.tuples(st.one_of(urls(), urls(), urls(), json_values), answers, st.booleans())

    def check(args: tuple[Any, list[str], bool]) -> str:
        url, addresses, allow_http = args

        def resolver(host: str, port: int) -> list[str]:
            assert host and 0 <= port <= 65535, (url, host, port)
            return list(addresses)

        try:
            url_guard.fetch_url(
                url, allow_http=allow_http, resolver=resolver, address_allowed=refuse_every_address
            )
        except InputError as error:
            return client_safe(error)
        raise AssertionError(f"fetch_url returned for {url!r} although every address is refused")

    run = fuzz("url_guard.fetch_url", examples, check, share=share("url"))
    # Well-formed URLs got as far as the address policy, and malformed ones were stopped before it.
    assert run.outcomes["url_forbidden_address"] > 0, run.summary()
    assert run.outcomes["invalid_url"] > 0, run.summary()
    assert no_network == []


def test_image_guard_returns_an_rgb_image_within_limits_or_a_client_error() -> None:
    examples = st.tuples(image_inputs(), st.none() | st.integers(1, 512))

    def check(args: tuple[tuple[str, bytes], int | None]) -> str:
        (_origin, data), min_size = args
        try:
            image = load_image(data, max_pixels=FUZZ_MAX_PIXELS, min_size=min_size)
        except InputError as error:
            return client_safe(error)
        width, height = image.size
        assert image.mode == "RGB" and 0 < width * height <= FUZZ_MAX_PIXELS, image
        assert len(image.tobytes()) == width * height * 3
        return "accepted"

    assert_both_outcomes(fuzz("image_guard.load_image", examples, check, share=share("image")))


@pytest.mark.parametrize("name", ["jpeg", "png", "gif", "bmp", "webp", "webp_lossless"])
def test_dimension_edits_reach_the_header_the_decoder_reads(name: str) -> None:
    # Given a valid seed file, when the fuzzer's header edit writes 7 x 5,
    edited = set_dimensions(SEED_IMAGES[name], 7, 5, fix_checksum=True)
    # then the decoder reports those dimensions: the mutation hits the real field.
    assert Image.open(io.BytesIO(edited)).size == (7, 5)
