"""Fetch, verify and stage the deploy artifacts (companyNews.war, static.zip) for the image builds."""
from __future__ import annotations

import shutil
from pathlib import Path


def stage_build_context(image_dir: Path, dest: Path, extras: dict[str, Path]) -> Path:
    """Copy an image folder from docker/ to `dest` and add artifacts to it.

    `extras` maps a path inside the context (e.g. "companyNews.war" or "site") to a file or folder. The
    folder under docker/ stays pristine, so a fetched artifact can never be committed by accident.
    """
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(image_dir, dest)
    for relative, source in extras.items():
        target = dest / relative
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest
