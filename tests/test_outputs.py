"""Output paths: a symbolic link is written through, a device is written into, `-` is stdout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlattack.errors import UserInputError
from rlattack.files import check_writable, write_json


def test_a_link_is_written_through_to_its_target_and_stays_a_link(tmp_path) -> None:
    target = tmp_path / "real" / "summary.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    check_writable(link, "--json")
    write_json(link, {"a": 1})
    assert link.is_symlink() and json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.json"]  # no temporary left


def test_a_dangling_link_creates_its_target(tmp_path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "new.json")
    write_json(link, {"b": 2})
    assert link.is_symlink() and json.loads((tmp_path / "new.json").read_text()) == {"b": 2}


def test_a_device_is_written_into_not_replaced() -> None:
    devnull = Path(os.devnull)
    check_writable(devnull, "--json")
    write_json(devnull, {"c": 3})
    assert devnull.is_char_device()


def test_a_fifo_gets_the_json(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_json(fifo, {"d": 4})
        assert json.loads(os.read(reader, 1000)) == {"d": 4}
    finally:
        os.close(reader)
    assert not fifo.is_file()


def test_a_dash_is_standard_output(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    check_writable(Path("-"), "--json")
    write_json(Path("-"), {"e": 5})
    assert json.loads(capsys.readouterr().out) == {"e": 5}
    assert not (tmp_path / "-").exists()


def test_a_device_as_a_folder_is_refused() -> None:
    with pytest.raises(UserInputError, match="neither a file nor a folder"):
        check_writable(Path(os.devnull), "--out", folder=True)


def test_eval_with_json_dash_prints_only_json_on_stdout(monkeypatch, capsys, tiny_atari_agent) -> None:
    from tests.test_cli import run

    args = ["eval", "--agent", tiny_atari_agent, "--game", "pong", "--episodes", "1", "--envs", "1"]
    assert run(monkeypatch, *args, "--no-progress", "--json", "-") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"]["episodes"] == 1
    assert "clean" in captured.err  # the table went to stderr
