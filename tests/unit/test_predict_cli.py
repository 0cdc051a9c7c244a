"""`dogbreed predict`: a URL or s3:// URI goes to the API only, since endpoints take image bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dogbreed.cli import main


@pytest.mark.parametrize("source", ["https://images.example/dog.jpg", "s3://bucket/dog.jpg"])
@pytest.mark.parametrize("target", [["--server", "http://127.0.0.1:9"], ["--endpoint", "dogbreed-ep"]])
def test_a_url_for_an_endpoint_is_refused_before_any_call(
    source: str, target: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["predict", source, *target])

    assert status == 2
    assert "through the API (--api URL)" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--endpoint-url", "http://127.0.0.1:8080"], ["--region", "eu-west-1"]])
def test_the_aws_api_flags_without_an_endpoint_say_where_a_server_url_goes(
    flag: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image = tmp_path / "dog.jpg"
    image.write_bytes(b"\xff\xd8\xff")

    status = main(["predict", str(image), *flag])

    assert status == 2
    assert "a model server's URL goes in --server" in capsys.readouterr().err
