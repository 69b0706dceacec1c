"""The documentation: the mkdocs site builds strictly (no broken link or anchor), and README's links lead somewhere."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import unquote, urlsplit

from conftest import ROOT


def test_the_docs_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]


def test_every_relative_link_in_readme_points_to_a_file():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    relative = [t for t in targets if not urlsplit(t).scheme and not t.startswith("#")]
    assert relative  # README links into docs/
    missing = [t for t in relative if not (ROOT / unquote(urlsplit(t).path)).exists()]
    assert missing == []


def test_the_docs_name_every_model_shape_and_precision():
    from trainlab.nn.models import SHAPES
    from trainlab.nn.precision import PRECISIONS

    groups = (ROOT / "docs" / "configuration.md").read_text()
    assert [s for s in SHAPES if f"`{s}`" not in groups] == []
    assert [p for p in PRECISIONS if f"`{p}`" not in groups] == []
