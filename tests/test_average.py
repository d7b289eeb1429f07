"""agents.average: the mean of two checkpoints is their weighted mean, bundled with its provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from agents.average import Args, main
from rlattack.errors import UserInputError
from rlattack.networks import build_network
from rlattack.observations import OBS_SHAPE
from rlattack.safetensors_agent import load_safetensors_agent, save_safetensors_agent
from rlattack.weights import file_sha256


def checkpoint(path: Path, seed: int, network: str = "small-cnn") -> Path:
    torch.manual_seed(seed)
    save_safetensors_agent(build_network(network, OBS_SHAPE, 6), path, "distill", 6, network)
    return path


def training(folder: Path) -> Path:
    folder.mkdir()
    (folder / "run.json").write_text(
        json.dumps({"algorithm": "distill", "command": "python -m agents.distill"})
    )
    (folder / "curve.csv").write_text("timesteps,frames,score,length\n10,40,21.0,800\n")
    return folder


def test_the_mean_is_the_weighted_mean_and_says_where_it_came_from(tmp_path) -> None:
    a, b = checkpoint(tmp_path / "a.safetensors", 0), checkpoint(tmp_path / "b.safetensors", 1)
    out = tmp_path / "run"
    main(Args(first=a, second=b, share=0.8, training=training(tmp_path / "train"), run_dir=out))
    mean, first, second = (load_file(str(p)) for p in (out / "weights.safetensors", a, b))
    for key in first:
        assert torch.allclose(mean[key], 0.8 * first[key] + 0.2 * second[key])
    assert load_safetensors_agent(out / "weights.safetensors").n_actions == 6  # an agent like the others
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == "python -m agents.distill"  # the training's, as the zoo checks it
    assert [c["sha256"] for c in record["averaged"]["checkpoints"]] == [file_sha256(a), file_sha256(b)]
    assert [c["share"] for c in record["averaged"]["checkpoints"]] == pytest.approx([0.8, 0.2])
    assert (out / "curve.csv").read_text() == (tmp_path / "train" / "curve.csv").read_text()


def test_other_networks_and_bad_shares_are_refused(tmp_path) -> None:
    a = checkpoint(tmp_path / "a.safetensors", 0)
    other = checkpoint(tmp_path / "b.safetensors", 1, network="nature-cnn")
    folder = training(tmp_path / "train")
    with pytest.raises(UserInputError, match="different networks"):
        main(Args(first=a, second=other, training=folder, run_dir=tmp_path / "run"))
    with pytest.raises(UserInputError, match="no such file"):
        main(Args(first=a, second=tmp_path / "missing", training=folder, run_dir=tmp_path / "run"))
    with pytest.raises(ValidationError, match="strictly between 0 and 1"):
        Args(first=a, second=a, share=1.0, training=folder)
