"""Township variants of district procedures at run time (issue #15).

A township's variant of a district procedure is a ``procedure_variant`` row keyed by (procedure,
township). Its published versions are ordinary immutable ``procedure_version`` rows stored under the
variant's own key (``B-PUR-02@SFZ``), numbered on their own; the BPMN inside keeps the district's
process id, so a case of the variant is a case of the procedure (lists, rules and public boards read
``B-PUR-02``) that runs the township's version.

:func:`version_for` is what starting a case asks: the village's township's published variant, else
the district's current version. Editing and publishing a variant are the services'
(:mod:`engine.services.variants`); this module only stores a published version.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit
from .definitions import content_hash
from .directory import chain_ids
from .procedures import current_version
from storage.models import Organization, ProcedureVariant, ProcedureVersion

SEPARATOR = "@"


def key_of(procedure_id: str, org_code: str) -> str:
    """The variant's key: where its versions and its draft are stored."""
    return f"{procedure_id}{SEPARATOR}{org_code}"


def split_key(key: str) -> tuple[str, str | None]:
    """(procedure id, township code or None) of a procedure id or a variant key."""
    procedure_id, sep, org_code = key.partition(SEPARATOR)
    return (procedure_id, org_code) if sep and org_code else (key, None)


def is_variant_key(key: str) -> bool:
    return split_key(key)[1] is not None


def published_variant(session: Session, procedure_id: str, org: Organization) -> ProcedureVariant | None:
    """The published variant that applies at ``org`` (its own or its nearest ancestor's), if any."""
    chain = list(chain_ids(session, org.id))
    rows = session.scalars(select(ProcedureVariant).where(
        ProcedureVariant.procedure_id == procedure_id, ProcedureVariant.org_id.in_(chain),
        ProcedureVariant.current_version_id.is_not(None))).all()
    if not rows:
        return None
    rank = {oid: i for i, oid in enumerate(chain)}
    return min(rows, key=lambda v: rank[v.org_id])


def version_for(session: Session, procedure_id: str, org: Organization) -> tuple[ProcedureVersion, ProcedureVariant | None]:
    """The version a new case of ``procedure_id`` at ``org`` runs, and the variant it belongs to
    (None: the district's current version)."""
    variant = published_variant(session, procedure_id, org)
    if variant is not None:
        version = session.get(ProcedureVersion, variant.current_version_id)
        if version is not None:
            return version, variant
    return current_version(session, procedure_id), None


def store_version(session: Session, variant: ProcedureVariant, xml: bytes, *, actor: str, note: str = "",
                  source: str = "", change_summary: str = "", when: datetime | None = None) -> ProcedureVersion:
    """Store a validated document as the variant's next immutable version and make it current."""
    number = (session.scalar(select(func.max(ProcedureVersion.version))
                             .where(ProcedureVersion.procedure_id == variant.key)) or 0) + 1
    version = ProcedureVersion(procedure_id=variant.key, version=number, content_hash=content_hash(xml),
                               bpmn_xml=xml.decode("utf-8"), published_at=when or audit.db_time(), published_by=actor,
                               note=note, source=source[:200], effective_from=None, change_summary=change_summary)
    session.add(version)
    session.flush()
    variant.current_version_id = version.id
    variant.updated_at = audit.db_time()
    return version


__all__ = ["SEPARATOR", "key_of", "split_key", "is_variant_key", "published_variant", "version_for", "store_version"]
