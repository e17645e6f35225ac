"""Data that grows: a dataset update, then the projections of agreements that follow it.

``dataset update`` (signed by a custodian) records the dataset's next version; right after it is
committed, every active agreement version whose grant says ``follow: true`` and whose projection
is built gets the new files appended (``extend``): only the new files are read, hashed and
tokenized, into a copy of the projection that replaces it once the ``projection.extend`` entry,
with the new files' digests, is on the ledger. The match-quality table (``death_match``) is
then recomputed over every record of its sources, as the projection now holds them, after
re-hashing their files. An agreement that does not follow stays on the
version it was built from. Extending is custodian-side work, never inside a reviewer's request.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodiet import entries
from custodiet.agreements.lifecycle import ActiveAgreement
from custodiet.agreements.store import agreement_from_document
from custodiet.catalog.model import Dataset
from custodiet.catalog.registry import Registration, file_sha256, get_dataset, update_dataset
from custodiet.errors import SystemFailure
from custodiet.gateway.match_quality import TABLE as DEATH_MATCH
from custodiet.gateway.match_quality import build_death_match
from custodiet.gateway.projection import (
    _Builder,
    current_digest,
    custodian_engine,
    load_policy,
    projection_files,
    scratch_database,
)
from custodiet.gateway.tokens import agreement_key, read_secret
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import dataset_versions
from custodiet.runtime import Runtime

if TYPE_CHECKING:
    from custodiet.progress import Progress

# what death_match (gateway/match_quality.py) reads: a new version of one recomputes it
MATCH_SOURCES = ("deaths", "beneficiaries", "payments", "tax_refunds")


@dataclass(frozen=True)
class Growth:
    registration: Registration  # the dataset's new version
    extended: tuple[str, ...]  # agreements whose projections now hold the new files


def update_and_extend(
    rt: Runtime, signed: SignedRequest, progress: Progress | None = None
) -> Growth:
    """A custodian's signed ``dataset update``, then every following projection extended
    (``progress`` hears of each projection extended)."""
    done = update_dataset(rt, signed)
    return Growth(done, tuple(extend_following(rt, done.dataset.name, progress)))


def extend_following(rt: Runtime, name: str, progress: Progress | None = None) -> list[str]:
    """Extend the built projection of every active agreement version that follows ``name``."""
    state = rt.refresh()
    extended = []
    following = []
    for record in sorted(state.agreements.values(), key=lambda r: r.id):
        version = record.active(rt.now())
        grant = None if version is None else version.document["datasets"].get(name)
        if version is None or not isinstance(grant, dict) or grant.get("follow") is not True:
            continue
        built = state.projections.get(f"{record.id}@{version.number}", {})
        if name not in built:
            continue  # never built: the next build reads the latest version
        active = ActiveAgreement(
            agreement_from_document(version.sha256, version.document),
            version.number,
            version.sha256,
        )
        following.append((record.id, active))
    for done, (agreement_id, active) in enumerate(following):
        if progress is not None:
            progress(done, len(following))
        if extend(rt, active, name):
            extended.append(agreement_id)
    if progress is not None and following:
        progress(len(following), len(following))
    return extended


def extend(rt: Runtime, active: ActiveAgreement, name: str) -> bool:
    """Append the files ``name`` gained since ``active``'s projection was built; False when it
    holds them all. A new file, or a file ``death_match`` is recomputed from, whose bytes
    differ from its registered digest stops the extension (exit 1), on the ledger."""
    state = rt.refresh()
    agreement = active.agreement
    latest = get_dataset(state, name)
    built = state.projections[f"{agreement.id}@{active.version}"][name]
    if built == latest.sha256:
        return False
    versions = dataset_versions(state.datasets[name])
    before = next((v for v in versions if v["sha256"] == built), None)
    if before is None:  # not built from a registered version: a rebuild reads the latest
        return False
    new_files = latest.file_digests[int(before["files"]) :]
    about: dict[str, Any] = {
        "agreement": agreement.id,
        "agreement_version": active.version,
        "dataset": name,
        "from_version": int(before["version"]),
        "to_version": latest.version,
        "files": [{"path": p, "sha256": d} for p, d in new_files],
        "sources": {name: latest.sha256},
    }
    match_sources = _match_sources(rt, active, name, latest)
    stale = sorted(n for n, d in match_sources.items() if current_digest(d) != d.sha256)
    if any(_digest(p) != d for p, d in new_files) or stale:
        failure = SystemFailure(
            f"a file of dataset '{stale[0] if stale else name}' changed since it was registered; "
            f"the projection of agreement '{agreement.id}' was not extended",
            hint="restore the registered file, then rebuild: `custodiet agreement build`",
            code="CUST536",
        )
        rt.record(
            entries.system("projection.extend", **about, decision="failed",
                           reason=failure.message, code=failure.code)
        )  # fmt: skip
        raise failure
    files = projection_files(rt.ws, active)
    delta = replace(latest, files=new_files)
    key = agreement_key(read_secret(rt.ws.secret_path), agreement.id, agreement.reviewer)
    hint = "check the new files; a custodian rebuilds with `custodiet agreement build`"
    with scratch_database(files, active, "extend", hint) as temporary:
        shutil.copyfile(files.database, temporary)
        temporary.chmod(0o600)
        con = custodian_engine(temporary)
        try:
            _Builder(con, agreement, key).append(delta, agreement.datasets[name])
            if match_sources:  # recomputed over every record: new deaths match old payments
                con.execute(f"DROP TABLE {DEATH_MATCH}")
                build_death_match(con, agreement, match_sources)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        rt.commit(entries.system("projection.extend", **about, decision="allowed"))
        temporary.replace(files.database)
    files.database.with_suffix(".persons.json").unlink(missing_ok=True)
    _close_engine(rt, files.database)
    return True


def _match_sources(
    rt: Runtime, active: ActiveAgreement, name: str, latest: Dataset
) -> dict[str, Dataset]:
    """The datasets ``death_match`` is built from, as the extended projection will hold them
    (``name`` at ``latest``, the others at the version the projection holds); empty when the
    projection has no ``death_match`` or ``name`` is not one of its sources."""
    agreement = active.agreement
    if name not in MATCH_SOURCES or DEATH_MATCH not in load_policy(rt.ws, active).tables:
        return {}
    state = rt.state
    built = state.projections[f"{agreement.id}@{active.version}"]
    sources = {}
    for source in MATCH_SOURCES:
        if source == name:
            sources[source] = latest
        elif source in agreement.datasets and source in built:
            versions = dataset_versions(state.datasets[source])
            held = next(int(v["version"]) for v in versions if v["sha256"] == built[source])
            sources[source] = get_dataset(state, source, held)
    return sources


def _digest(path: str) -> str:
    try:
        return file_sha256(Path(path))
    except OSError:
        return "unreadable"


def _close_engine(rt: Runtime, database: Path) -> None:
    """This runtime's reviewer engine on the replaced file reads the old one: close it."""
    engines: dict[Path, Any] = rt.resources.get("engines", {})
    with rt.resource_lock:
        found = engines.pop(database, None)
        if found is not None:
            found.close()
