"""A run's files through Django's storage API, so workers may live on other hosts: a run reads
its export snapshot and its parent's model through storage and writes its model back under
training/<run id>/model/."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from annotation.models import ExportSnapshot

from .models import TrainingRun

# The export files a run reads: the TRL preference splits (both flavours) and the manifest.
SNAPSHOT_FILES = ("train.jsonl", "test.jsonl", "train.conversational.jsonl", "test.conversational.jsonl", "manifest.json")


def snapshot_download(export: ExportSnapshot, data_dir: Path) -> None:
    from annotation.exports.services import export_open_file

    names = {entry["name"] for entry in export.files}
    for name in SNAPSHOT_FILES:
        if name in names:
            with export_open_file(snapshot=export, name=name) as src, open(data_dir / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def artifacts_download(run: TrainingRun, target: Path) -> None:
    for entry in run.artifact_files:
        local = target / entry["name"]
        local.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(entry["path"], "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)


def artifacts_upload(run_id: int, source: Path) -> tuple[str, list[dict]]:
    prefix = f"training/{run_id}/model"
    files = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source).as_posix()
        name = f"{prefix}/{rel}"
        if default_storage.exists(name):  # a retried attempt replaces its own earlier upload
            default_storage.delete(name)
        with open(path, "rb") as fh:
            saved = default_storage.save(name, File(fh, name=path.name))
        files.append({"name": rel, "path": saved, "bytes": path.stat().st_size})
    return prefix + "/", files
