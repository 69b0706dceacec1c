"""mkdocs hook (mkdocs.yml `hooks:`): the plots in results/, outside docs/, join the site.

docs/results.md links them as `../results/<experiment>/<plot>.png`, the path that works on GitHub; here each
plot becomes a site file under that source path, written to `results/<experiment>/<plot>.png` in the site,
so the same link resolves in `mkdocs build --strict` and the page shows the plots.
"""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files, InclusionLevel

ROOT = Path(__file__).resolve().parents[1]


def on_files(files: Files, config) -> Files:
    for path in sorted((ROOT / "results").glob("*/*.png")):
        site_path = path.relative_to(ROOT).as_posix()
        files.append(File(f"../{site_path}", src_dir=config["docs_dir"], dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"], dest_uri=site_path,
                          inclusion=InclusionLevel.INCLUDED))  # a leading `..` reads as a hidden file otherwise
    return files
