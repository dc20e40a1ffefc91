"""Every command that runs the network takes the same --device spellings and refuses others alike."""

from __future__ import annotations

import pytest

from vqcnir.cli import build_parser
from vqcnir.device import DEVICE_NAMES, check_device_name
from vqcnir.engine import choose_device
from vqcnir.errors import VQCNIRError

# The smallest valid command line of each command: parsing only, nothing runs.
COMMANDS = {
    "restore": ["restore", "in.png", "-o", "out"],
    "evaluate": ["evaluate"],
    "train": ["train", "-c", "tiny-stage1"],
    "serve": ["serve"],
}
ACCEPTED = ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"]
REFUSED = ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "meta", "xpu", "cpu:0", "mps:0", " cpu", ""]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", ACCEPTED)
def test_each_command_accepts_the_same_devices(command, name):
    args = build_parser().parse_args(COMMANDS[command] + ["--device", name])
    assert args.device == name


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", REFUSED)
def test_each_command_refuses_the_same_devices_with_one_message(command, name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(COMMANDS[command] + ["--device", name])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line == (f"vqcnir {command}: error: argument --device: {name!r} is not a device; "
                         f"use {DEVICE_NAMES}")


@pytest.mark.parametrize("name", REFUSED)
def test_the_python_api_refuses_the_same_names(name):
    with pytest.raises(VQCNIRError, match="is not a device"):
        choose_device(name)


def test_accepted_names_pass_the_check():
    assert [check_device_name(n) for n in ACCEPTED] == ACCEPTED
    assert choose_device("cpu").type == "cpu"
