"""The Makefile's choice of torch build, checked by dry runs (`make -n`): nothing is installed."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import ROOT

LOCKED_TORCH = re.search(r"^torch==([^+\s]+)", (ROOT / "requirements.lock").read_text(), re.M).group(1)
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def dry_run(venv, *variables: str) -> subprocess.CompletedProcess:
    # Without the flags of a make this test may run under (`make test TORCH=cuda` would pass TORCH on).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-n", "setup", f"VENV={venv}", *variables], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)


def torch_install(venv, *variables: str) -> str:
    done = dry_run(venv, *variables)
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stdout.splitlines() if line.endswith('"') and "pip install" in line)


@pytest.mark.parametrize(("machine", "build", "index"), [
    (("UNAME=Linux", "NVIDIA_GPU="), f"torch=={LOCKED_TORCH}+cpu", CPU_INDEX),
    (("UNAME=Linux", "NVIDIA_GPU=yes"), f"torch=={LOCKED_TORCH}", None),
    (("UNAME=Darwin", "NVIDIA_GPU="), f"torch=={LOCKED_TORCH}", None),
    (("UNAME=Linux", "NVIDIA_GPU=yes", "TORCH=cpu"), f"torch=={LOCKED_TORCH}+cpu", CPU_INDEX),
    (("UNAME=Linux", "TORCH=cuda", "TORCH_INDEX=https://download.pytorch.org/whl/cu126"), f"torch=={LOCKED_TORCH}",
     "--no-deps --extra-index-url https://download.pytorch.org/whl/cu126"),
])
def test_each_machine_gets_the_locked_torch_version_in_its_build(tmp_path, machine, build, index):
    line = torch_install(tmp_path / "venv", *machine)
    assert line.endswith(f'"{build}"')
    assert (index in line) if index else "--extra-index-url" not in line


def test_the_rest_of_the_lock_is_installed_without_its_torch_pin(tmp_path):
    done = dry_run(tmp_path / "venv", "UNAME=Darwin")
    assert f"grep -v '^torch==' requirements.lock > {tmp_path}/venv/constraints.txt" in done.stdout
    assert f"-c {tmp_path}/venv/constraints.txt -e '.[dev]'" in done.stdout


def test_an_existing_venv_keeps_its_build(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed-cuda").touch()
    assert "pip install" not in dry_run(venv, "UNAME=Linux", "NVIDIA_GPU=").stdout  # up to date: nothing to do
    old = (ROOT / "requirements.lock").stat().st_mtime - 10
    os.utime(venv / ".installed-cuda", (old, old))  # the lock changed since: reinstall, the same build
    assert torch_install(venv, "UNAME=Linux", "NVIDIA_GPU=").endswith(f'"torch=={LOCKED_TORCH}"')


def test_a_venv_from_before_builds_were_recorded_is_the_cpu_build(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # the stamp earlier Makefiles wrote
    line = torch_install(venv, "UNAME=Linux", "NVIDIA_GPU=yes")  # not relabelled cuda without reinstalling
    assert line.endswith(f'"torch=={LOCKED_TORCH}+cpu"')


def test_an_unknown_build_is_refused_naming_the_choices(tmp_path):
    done = dry_run(tmp_path / "venv", "TORCH=rocm")
    assert done.returncode != 0
    assert "TORCH=rocm" in done.stderr and "TORCH=cpu, TORCH=cuda or TORCH=macos" in done.stderr


def test_changing_the_build_of_an_existing_venv_asks_for_make_clean(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed-cpu").touch()
    done = dry_run(venv, "TORCH=cuda")
    assert done.returncode != 0 and "holds the cpu build of torch, not TORCH=cuda" in done.stderr
    assert "make clean" in done.stderr
