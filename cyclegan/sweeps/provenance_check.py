"""Whether a sweep's jobs can be compared at all: same code, same software, same evaluation.

A ranking means something only if the jobs differ in what the grid varies and nothing else. Jobs
collected from several sweeps (`--collect A B`), resumed on another checkout, or run on machines
with other package versions may differ in the commit they ran, in the versions of the project's
dependencies, or in how they were evaluated (another test image count or image size moves FID by
more than most grid cells do). Each difference is one warning line naming the values and the jobs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cyclegan.config.provenance import commits
from cyclegan.config.provenance import read as read_provenance
from cyclegan.sweeps.jobs import Job

SOFTWARE = ("python", "torch", "cuda", "cudnn")
MAX_NAMED = 6  # jobs named per value before "..."


def _names(jobs: list[Job]) -> str:
    shown = ", ".join(j.name for j in jobs[:MAX_NAMED])
    return shown + (f" and {len(jobs) - MAX_NAMED} more" if len(jobs) > MAX_NAMED else "")


def _by_value(jobs: list[Job], value: Callable[[Job], Any]) -> dict[str, list[Job]]:
    """Jobs grouped by the text of `value(job)` (None values left out)."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        found = value(job)
        if found is not None:
            groups.setdefault(found if isinstance(found, str) else json.dumps(found), []).append(
                job
            )
    return groups


def _line(what: str, groups: dict[str, list[Job]]) -> str:
    parts = "; ".join(f"{value} ({_names(jobs)})" for value, jobs in groups.items())
    return f"warning: the jobs differ in {what}: {parts}"


def _commit_label(data: dict[str, Any]) -> str:
    """`9f9b7114880b` (the first 12 digits), `+dirty` when the tree had changes, `a -> b` for a
    job resumed on another commit."""
    label = " -> ".join(c[:12] for c in commits(data))
    return label + ("+dirty" if (data.get("git") or {}).get("dirty") is True else "")


def _protocol_fields(protocol: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in protocol.items():
        if isinstance(value, dict):
            flat.update(_protocol_fields(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def protocol_warnings(jobs: list[Job]) -> list[str]:
    """One line per evaluation-protocol field (test_images.A, fid_kid.weights_sha256, ...) whose
    value differs between finished jobs."""
    finished = [j for j in jobs if j.summary and isinstance(j.summary.get("eval_protocol"), dict)]
    fields = {j.name: _protocol_fields(j.summary["eval_protocol"]) for j in finished}  # type: ignore[index]
    keys = sorted({k for f in fields.values() for k in f})
    lines = []
    for key in keys:
        groups = _by_value(finished, lambda j, key=key: fields[j.name].get(key, "(not set)"))
        if len(groups) > 1:
            lines.append(_line(f"evaluation protocol ({key})", groups))
    return lines


def comparison_warnings(jobs: list[Job]) -> list[str]:
    """Warnings about what differs between the jobs besides their overrides: commit, evaluation
    protocol, software and dependency versions; and which jobs recorded no provenance."""
    records = {j.name: read_provenance(j.path) for j in jobs}
    known = [j for j in jobs if records[j.name] is not None]
    lines = []
    groups = _by_value(known, lambda j: _commit_label(records[j.name]))  # type: ignore[arg-type]
    if len(groups) > 1:
        lines.append(_line("the commit they ran", groups))
    lines += protocol_warnings(jobs)
    for name in SOFTWARE:
        groups = _by_value(known, lambda j, name=name: str(records[j.name].get(name)))  # type: ignore[union-attr]
        if len(groups) > 1:
            lines.append(_line(name, groups))
    packages = sorted({p for j in known for p in records[j.name].get("packages", {})})  # type: ignore[union-attr]
    for package in packages:
        groups = _by_value(
            known,
            lambda j, p=package: str(records[j.name].get("packages", {}).get(p, "not installed")),  # type: ignore[union-attr]
        )
        if len(groups) > 1:
            lines.append(_line(f"the version of {package}", groups))
    missing = [j for j in jobs if records[j.name] is None]
    if missing and known:
        lines.append(
            f"warning: {len(missing)} job(s) recorded no provenance.json (run before it existed, or "
            f"failed before training), so their commit and versions are not compared: {_names(missing)}"
        )
    return lines
