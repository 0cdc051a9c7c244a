"""`dogbreed.aws.shared_config.write_profile`: one profile written, the rest of the file kept, read back
by botocore as the AWS CLI and boto3 read it."""

from __future__ import annotations

from pathlib import Path

import botocore.session
import pytest

from dogbreed.aws.shared_config import write_profile

SETTINGS = {
    "region": "us-east-1",
    "endpoint_url": "http://127.0.0.1:4566",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing-secret",
}


def test_the_profile_is_what_botocore_reads_and_other_profiles_stay(tmp_path: Path) -> None:
    config = tmp_path / "aws" / "config"
    config.parent.mkdir()
    original = "# mine\n[default]\nregion = eu-west-1\n\n[profile work]\n# EU\nregion = eu-central-1\n"
    config.write_text(original)

    write_profile("local", {**SETTINGS, "endpoint_url": "http://127.0.0.1:1"}, config)
    write_profile("local", SETTINGS, config)  # replaced, not merged or repeated

    session = botocore.session.Session(profile="local")
    session.set_config_variable("config_file", str(config))
    assert session.get_scoped_config() == SETTINGS
    assert session.get_credentials().access_key == "testing"
    work = botocore.session.Session(profile="work")
    work.set_config_variable("config_file", str(config))
    assert work.get_scoped_config() == {"region": "eu-central-1"}
    assert config.read_text().count("[profile local]") == 1
    assert config.read_text().startswith(original)  # every other line, comments included, as it was


def test_a_new_file_is_private_and_a_symlinked_one_is_written_through_its_link(tmp_path: Path) -> None:
    new = tmp_path / "new" / "config"
    write_profile("local", SETTINGS, new)
    real = tmp_path / "dotfiles" / "aws-config"
    real.parent.mkdir()
    real.write_text("[profile work]\nregion = eu-central-1\n\n[profile local]\nregion = old\n\n[profile z]\n")
    link = tmp_path / "config"
    link.symlink_to(real)

    write_profile("local", SETTINGS, link)

    assert new.stat().st_mode & 0o077 == 0  # it holds keys
    assert link.is_symlink()
    text = real.read_text()
    assert "region = old" not in text and text.index("[profile local]") < text.index("[profile z]")
    session = botocore.session.Session(profile="local")
    session.set_config_variable("config_file", str(link))
    assert session.get_scoped_config() == SETTINGS


@pytest.mark.parametrize("name", ["default", "", "two words", "a]b"])
def test_the_default_profile_and_malformed_names_are_refused(name: str, tmp_path: Path) -> None:
    config = tmp_path / "config"
    with pytest.raises(ValueError):
        write_profile(name, SETTINGS, config)
    assert not config.exists()
