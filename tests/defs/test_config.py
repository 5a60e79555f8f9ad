"""pipelines.config: the data root follows DOANVIEN_DATA_DIR and the working directory at every call (only the
resolution of a given value from a given directory is remembered)."""
from __future__ import annotations

from pipelines import config


def test_data_root_follows_the_variable_and_the_working_directory(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a / "data", b / "data"):
        d.mkdir(parents=True)
    (tmp_path / "link").symlink_to(a, target_is_directory=True)
    monkeypatch.setenv("DOANVIEN_DATA_DIR", "data")
    monkeypatch.chdir(a)
    assert config.data_dir() == a / "data"
    monkeypatch.chdir(b)  # the same relative value from another directory
    assert config.data_dir() == b / "data"
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(tmp_path / "link" / "data"))  # resolved through the link
    assert config.data_dir() == (a / "data").resolve()
    monkeypatch.delenv("DOANVIEN_DATA_DIR")  # default ./data
    assert config.data_dir() == b / "data"
    assert config.raw_dir() == b / "data" / "raw" and (b / "data" / "raw").is_dir()


def test_an_absolute_data_root_needs_no_working_directory(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # a process whose working directory was deleted under it
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(tmp_path / "root"))
    assert config.data_dir() == (tmp_path / "root").resolve()
