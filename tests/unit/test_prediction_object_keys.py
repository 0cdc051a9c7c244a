"""Which S3-drop paths may become part of an output key (`results/<path>.json`, `rejected/<path>.json`)."""

from __future__ import annotations

import pytest
from prediction.object_keys import UNSAFE_KEYS_PREFIX, is_safe_relative_path, unsafe_rejection_key


@pytest.mark.parametrize("path", ["dog.jpg", "a/b/c.jpg", "hunde-🐕/ñandú façade 犬.jpg", "v1.2/x..y.jpg"])
def test_plain_paths_are_safe(path: str) -> None:
    assert is_safe_relative_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "../x.jpg",
        "a/../../x.jpg",
        "./x.jpg",
        "%2e%2e/x.jpg",
        "%2E%2e/x.jpg",
        "a%2f..%2fb.jpg",
        "a//b.jpg",
        "/x.jpg",
        "a/",
        "a\\..\\b.jpg",
        "a\x00b.jpg",
        "a\nb.jpg",
        "k" * 1011,
    ],
)
def test_traversal_empty_segments_control_characters_and_overlong_paths_are_unsafe(path: str) -> None:
    assert not is_safe_relative_path(path)


def test_unsafe_keys_map_to_one_fixed_shape_key_each() -> None:
    first = unsafe_rejection_key("incoming/../x.jpg")
    assert first == unsafe_rejection_key("incoming/../x.jpg")
    assert first != unsafe_rejection_key("incoming/%2e%2e/x.jpg")
    assert first.startswith(UNSAFE_KEYS_PREFIX) and first.endswith(".json")
    assert len(first) == len(UNSAFE_KEYS_PREFIX) + 64 + len(".json")
