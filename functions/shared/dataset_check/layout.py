"""The dogImages directory layout: `<root>/{train,valid,test}/NNN.Breed_Name/<image>`.

One place for the split names, the class-folder pattern, the accepted image suffixes and the
published dogImages split sizes.
"""

from __future__ import annotations

import re

SPLITS: tuple[str, ...] = ("train", "valid", "test")
# "001.Affenpinscher", "050.Chinese_shar-pei": a 3-digit index, a dot, a breed name.
CLASS_DIR_PATTERN = re.compile(r"^(?P<index>\d{3})\.(?P<breed>[A-Za-z0-9][A-Za-z0-9_\-]*)$")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})
MANIFEST_NAME = "manifest.json"
# Files a dataset root may hold besides the split folders.
ROOT_FILES_ALLOWED: frozenset[str] = frozenset({MANIFEST_NAME, "LICENSE.txt", "README.md", "README.txt"})

# The published dogImages split sizes (133 breeds).
DOGIMAGES_SPLIT_COUNTS: dict[str, int] = {"train": 6680, "valid": 835, "test": 836}


def is_class_dir(name: str) -> bool:
    return CLASS_DIR_PATTERN.match(name) is not None


def has_image_suffix(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_SUFFIXES
