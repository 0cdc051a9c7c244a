"""`dogbreed predict`: a URL or s3:// URI goes to the API only, since endpoints take image bytes."""

from __future__ import annotations

import pytest

from dogbreed.cli import main


@pytest.mark.parametrize("source", ["https://images.example/dog.jpg", "s3://bucket/dog.jpg"])
@pytest.mark.parametrize("target", [["--endpoint-url", "http://127.0.0.1:9"], ["--endpoint", "dogbreed-ep"]])
def test_a_url_for_an_endpoint_is_refused_before_any_call(
    source: str, target: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["predict", source, *target])

    assert status == 2
    assert "through the API (--api URL)" in capsys.readouterr().err
