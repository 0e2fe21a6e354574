"""Moderators' decisions as training data: decided originals written as a data folder the training commands read
(`detection.core.data`: `{real,ai_generated}/{scenery}/*` plus `groups.csv`).

A group is a contributor, so a grouped split never puts one person's photos on both sides (their camera, their
places, their editing would otherwise leak between train and test); contributors who uploaded identical bytes
share one group, and those bytes are written once.
"""

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.core.files.storage import default_storage

from common.errors import Invalid
from moderation.models import State, Submission

LABEL_FOLDERS = {State.APPROVED: "real", State.REJECTED: "ai_generated"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
SOURCE = "platform"


class ExportRefused(Invalid):
    """The destination is not an empty folder, or the decisions cannot be written as asked."""


@dataclass(frozen=True)
class ExportResult:
    written: dict[str, int]  # images per label folder
    groups: int
    conflicting: list[str]  # sha256 of identical bytes that moderators labelled both ways: left out


class _Groups:
    """Contributors joined by identical bytes (union-find), so a shared image keeps its uploaders together."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def root(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, a: str, b: str) -> None:
        self.parent[self.root(b)] = self.root(a)


def decisions_export(*, since: date, destination: Path) -> ExportResult:
    """Write every upload finally decided on or after `since` (UTC; a pending appeal is not final) into
    `destination`, which must be missing or empty."""
    destination = Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ExportRefused(f"{destination} is not an empty folder; an export is never mixed with other files.")
    decided = (
        Submission.objects.filter(state__in=LABEL_FOLDERS, state_changed_at__date__gte=since)
        .order_by("pk")
        .values("pk", "sha256", "original", "image_format", "scenery", "state", "contributor_id")
    )
    by_bytes: dict[str, list[dict]] = {}
    for row in decided:
        by_bytes.setdefault(row["sha256"], []).append(row)
    groups = _Groups()
    conflicting, keep = [], []
    for sha256, rows in by_bytes.items():
        if len({row["state"] for row in rows}) > 1:
            conflicting.append(sha256)
            continue
        for row in rows[1:]:
            groups.join(f"contributor-{rows[0]['contributor_id']}", f"contributor-{row['contributor_id']}")
        keep.append(rows[0])
    written = dict.fromkeys(LABEL_FOLDERS.values(), 0)
    lines = []
    for row in keep:
        label = LABEL_FOLDERS[row["state"]]
        relative = Path(label) / row["scenery"] / f"{row['pk']}.{EXTENSIONS.get(row['image_format'], 'img')}"
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(row["original"], "rb") as source:
            (destination / relative).write_bytes(source.read())
        group = groups.root(f"contributor-{row['contributor_id']}")
        lines.append([relative.as_posix(), label, row["scenery"], group, SOURCE])
        written[label] += 1
    destination.mkdir(parents=True, exist_ok=True)
    with (destination / "groups.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "scenery", "group", "source"])
        writer.writerows(lines)
    return ExportResult(written=written, groups=len({line[3] for line in lines}), conflicting=conflicting)
