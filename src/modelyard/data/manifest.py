"""A dataset directory's manifest: rows and sha256 per file, so a changed byte is noticed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from modelyard.errors import DataError

MANIFEST = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, files: dict[str, int], meta: dict[str, Any]) -> Path:
    """Record `files` (name -> row count) with their hashes; written last, atomically."""
    entries = {
        name: {"rows": rows, "sha256": sha256_of(directory / name)}
        for name, rows in sorted(files.items())
    }
    target = directory / MANIFEST
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({**meta, "files": entries}, indent=2, sort_keys=True) + "\n")
    tmp.replace(target)
    return target


def verify(directory: Path) -> str | None:
    """Check every file against the manifest; return the manifest's sha256.

    A directory without a manifest (a user's own data) is accepted as it is: None.
    """
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = manifest["files"]
    except (ValueError, KeyError) as err:
        raise DataError(f"{manifest_path}: unreadable manifest ({err})") from None
    for name, entry in entries.items():
        path = directory / name
        if not path.exists():
            raise DataError(f"{path}: missing data file listed in {MANIFEST}")
        if sha256_of(path) != entry["sha256"]:
            raise DataError(
                f"{path}: sha256 differs from {MANIFEST} (corrupt or edited); "
                "re-create it with `modelyard prepare`"
            )
    return sha256_of(manifest_path)
