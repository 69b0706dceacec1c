"""trainlab as a package: the wheel holds the config groups, and its commands run from any folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from trainlab import CONF

from conftest import ROOT

pytestmark = pytest.mark.full


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel `pip wheel .` builds from the sources, installed alone into a scratch target folder."""
    scratch = tmp_path_factory.mktemp("package")
    source = scratch / "source"  # a copy: building in the clone would leave build/ and egg-info there
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(scratch / "dist")],
                   check=True, timeout=300)
    wheel = next((scratch / "dist").glob("trainlab-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(scratch / "site"), str(wheel)], check=True, timeout=300)
    work = scratch / "work"  # the user's folder: no trainlab sources anywhere near
    work.mkdir()
    # The wheel's copy comes before the clone's editable install; the dependencies come from this environment.
    env = {**os.environ, "PYTHONPATH": str(scratch / "site"), "PYTHONWARNINGS": "ignore"}
    return wheel, scratch / "site", work, env


def command(installed, name: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    _, site, work, env = installed
    return subprocess.run([str(site / "bin" / name), *args], cwd=cwd or work, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_wheel_holds_every_config_file(installed):
    wheel = installed[0]
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.removeprefix("trainlab/conf/") for name in archive.namelist() if name.endswith(".yaml")}
    assert shipped == {str(path.relative_to(CONF)) for path in CONF.rglob("*.yaml")}


def test_the_installed_commands_train_evaluate_and_report_from_another_folder(installed):
    _, site, work, env = installed
    where = subprocess.run([sys.executable, "-c", "import trainlab; print(trainlab.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))  # the wheel's trainlab, not the clone's
    done = command(installed, "trainlab-train", "data=digits", "debug=limit_batches")
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = (work / "outputs" / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    evaluated = command(installed, "trainlab-eval", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert 0 <= json.loads(evaluated.stdout)["test/acc"] <= 1
    reported = command(installed, "trainlab-report", str(run), "--no-wandb")
    assert reported.returncode == 0, reported.stderr[-2000:]
    # The clone's eval.py, as lightning-hydra-template users type it, reads the same checkpoint.
    beside = subprocess.run([sys.executable, "eval.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert json.loads(beside.stdout) == json.loads(evaluated.stdout), beside.stderr[-2000:]


def test_a_user_config_folder_adds_options_to_the_installed_package(installed):
    work = installed[2] / "with_own_configs"
    (work / "my_conf" / "optim").mkdir(parents=True)
    (work / "my_conf" / "optim" / "slow_sgd.yaml").write_text(
        "_target_: torch.optim.SGD\n_partial_: true\nlr: 0.003\nmomentum: 0.5\n")
    done = command(installed, "trainlab-train", "--config-dir", "my_conf", "optim=slow_sgd", "data=digits",
                   "debug=fast_dev_run", "--cfg", "job", cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lr: 0.003" in done.stdout and "momentum: 0.5" in done.stdout

