"""Size messages tell two sizes apart even when they round to the same figure (issue 14 §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from utils.storage import BucketRules, LocalStorage, StorageError, human_sizes

TWO_GIB = 2 * 1024**3


def test_an_input_one_byte_over_the_limit_shows_two_different_sizes(tmp_path: Path) -> None:
    source = tmp_path / "storage" / "media-uploads" / "u" / "big.mp4"
    source.parent.mkdir(parents=True)
    with open(source, "wb") as f:
        f.truncate(TWO_GIB + 1)  # sparse: no disk is used
    with pytest.raises(StorageError) as info:
        LocalStorage(tmp_path / "storage").download_file("media-uploads", "u/big.mp4", tmp_path / "in", TWO_GIB)
    assert "2.0 GB (2,147,483,649 bytes), over the 2.0 GB (2,147,483,648 bytes) input limit" in str(info.value)
    assert info.value.permanent


def test_a_file_one_byte_over_a_bucket_limit_shows_two_different_sizes() -> None:
    with pytest.raises(StorageError, match=r"\(2,147,483,649 bytes\) but bucket media-outputs allows .*"
                                           r"\(2,147,483,648 bytes\)"):
        BucketRules(TWO_GIB).check("media-outputs", TWO_GIB + 1, "video/mp4")


def test_sizes_that_already_read_differently_stay_short() -> None:
    assert human_sizes(3 * 1024**3, TWO_GIB) == ("3.0 GB", "2.0 GB")
    assert human_sizes(1500, 1000) == ("1.5 KB", "1000 B")
