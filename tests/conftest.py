"""Shared fixtures: a fresh real database per test (SQLite file, or a PostgreSQL database when
DATABASE_URL points at PostgreSQL), the procedure library published, and small helpers.

Publishing the library costs about a second; each test worker does it once into a template (a
SQLite file, or a PostgreSQL database used as ``CREATE DATABASE … TEMPLATE``) and copies it."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, text

from engine import settings
from engine.core import clock, directory
from engine.services.scenarios import plan_step_data, sample_evidence
from engine.services.facade import Xiaowei
from storage import Database
from storage.db import normalize_url

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("XIAOWEI_ARGON2", "1,8,1")  # cheap argon2id hashes for test users (production: 2,19456,1)
os.environ.setdefault("XIAOWEI_SCRYPT_N", "16")  # cheap hashes for test users; production keeps 2**14
def _test_signing_key() -> None:
    """A throw-away Ed25519 district key for the test run (checkpoints are signed, exports anchored)."""
    if os.environ.get("XIAOWEI_SIGNING_KEY"):
        return
    import atexit
    import tempfile

    from engine.core.checkpoints import generate_key

    folder = Path(tempfile.mkdtemp(prefix="xiaowei-test-key-"))
    generate_key(folder / "signing.key")
    os.environ["XIAOWEI_SIGNING_KEY"] = str(folder / "signing.key")
    atexit.register(shutil.rmtree, folder, True)


_test_signing_key()
settings.reload()
PG_URL = os.environ.get("DATABASE_URL", "")
USING_PG = PG_URL.startswith("postgres")

_template_sqlite: dict[str, Path] = {}


# A test opens a database when it asks for one of these fixtures (the others build on them).
DATABASE_FIXTURES = {"db_url", "module_db_url"}


def pytest_collection_modifyitems(config, items):
    """Mark the tests that open no database (``nodb``: no database fixture among theirs, or marked by
    hand); on the PostgreSQL pass skip them, the SQLite pass ran them."""
    skip = pytest.mark.skip(reason="opens no database: run on the SQLite pass")
    for item in items:
        if not DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.nodb)
        if USING_PG and item.get_closest_marker("nodb") is not None:
            item.add_marker(skip)


@pytest.fixture
def setenv(monkeypatch):
    """Set environment variables for one test and re-read the settings (again after the test)."""

    def set_(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        settings.reload()

    yield set_
    monkeypatch.undo()
    settings.reload()


def _pg_database_url(name: str) -> str:
    return normalize_url(PG_URL).rsplit("/", 1)[0] + "/" + name


def _pg_admin():
    return create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")


_template_pg: dict[str, str] = {}
_people: dict[str, str] = {}  # the users of the "people" template, by role key


def _seed(db: Database, variant: str) -> None:
    """What a template holds: the published library, the small organization tree (all variants) and
    (``people``) one user per role, in the order the tests have always made them."""
    app = Xiaowei(db)
    app.init()
    with db.write() as s:
        directory.add_org(s, "SFQ", "示范区", "district", None)
        directory.add_org(s, "SFZ", "示范镇", "township", "SFQ")
        directory.add_org(s, "DONGAO", "东岙村", "village", "SFZ")
        directory.add_org(s, "NANXI", "南溪村", "village", "SFZ")
        directory.add_org(s, "HEPING", "和平社区", "community", "SFZ")
    if variant == "people":
        _people.clear()
        _people.update(_add_people(app))


def _pg_template(variant: str = "lib") -> str:
    """This worker's template database of ``variant`` (made once, dropped at exit)."""
    name = _template_pg.get(variant)
    if name is None:
        name = f"xwt_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin()
        with admin.connect() as conn:
            _pg_create(conn, name)
        admin.dispose()
        db = Database(_pg_database_url(name))
        _seed(db, variant)
        db.dispose()  # a template must have no open connections
        _template_pg[variant] = name

        def drop() -> None:
            engine = _pg_admin()
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()

        import atexit

        atexit.register(drop)
    return name


def _pg_create(conn, name: str, template: str | None = None) -> None:
    """CREATE DATABASE for one test. Its sessions commit without waiting for the disk
    (``synchronous_commit = off``: a crash could lose the last commits of a throw-away database,
    nothing else); the server's own settings are left alone."""
    conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))


@pytest.fixture
def db_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database URL for this test (on PostgreSQL, a test that takes ``xw`` gets the
    database made from the worker's template there instead: no empty one is made first)."""
    if USING_PG:
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin()
        if "xw" not in request.fixturenames:
            with admin.connect() as conn:
                _pg_create(conn, name)
        try:
            yield _pg_database_url(name)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        yield f"sqlite:///{tmp_path / 'xiaowei.db'}"


@pytest.fixture(scope="module")
def module_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new, empty database shared by the tests of one module (for data they only read)."""
    if USING_PG:
        name = f"m_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin()
        with admin.connect() as conn:
            _pg_create(conn, name)
        try:
            yield _pg_database_url(name)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('module') / 'xiaowei.db'}"


def copy_database(source_url: str, target_url: str) -> None:
    """Make ``target_url`` a copy of ``source_url`` (no connection to the source may be open on
    PostgreSQL; on SQLite the write-ahead log is folded in first)."""
    if USING_PG:
        admin = _pg_admin()
        with admin.connect() as conn:
            target = target_url.rsplit("/", 1)[1]
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
            _pg_create(conn, target, source_url.rsplit("/", 1)[1])
        admin.dispose()
        return
    import sqlite3

    source = Path(source_url.removeprefix("sqlite:///"))
    target = Path(target_url.removeprefix("sqlite:///"))
    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for leftover in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(source, target)


@pytest.fixture
def frozen() -> Iterator[clock.FixedClock]:
    """The engine clock, fixed at a Monday morning (China time) and movable by the test."""
    fixed = clock.FixedClock("2026-03-02T01:00:00+00:00")
    with clock.using(fixed):
        yield fixed


@pytest.fixture
def xw(db_url: str, frozen: clock.FixedClock, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Xiaowei]:
    """Xiaowei on a fresh database with the library published and a small organization tree (and,
    for a test that asks for ``people``, its users): a copy of this worker's template, made once."""
    variant = "people" if "people" in request.fixturenames else "lib"
    if USING_PG:
        # The test's (still unused) database is replaced by a copy of the worker's template.
        name = db_url.rsplit("/", 1)[1]
        template = _pg_template(variant)
        admin = _pg_admin()
        with admin.connect() as conn:
            _pg_create(conn, name, template)
        admin.dispose()
        db = Database(db_url)
    else:
        template = Path(_template_url(variant, tmp_path.parent).removeprefix("sqlite:///"))
        target = tmp_path / "xiaowei.db"
        shutil.copyfile(template, target)
        db = Database(f"sqlite:///{target}")
    yield Xiaowei(db)
    db.dispose()


def _template_url(variant: str, tmp_base: Path) -> str:
    """The URL of this worker's template database of ``variant`` (made on first use)."""
    if USING_PG:
        return _pg_database_url(_pg_template(variant))
    template = _template_sqlite.get(variant)
    if template is None:
        template = Path(os.environ.get("PYTEST_TMPDIR_BASE", str(tmp_base))) / f"template-{variant}-{uuid.uuid4().hex}.db"
        tdb = Database(f"sqlite:///{template}")
        _seed(tdb, variant)
        tdb.dispose()
        _template_sqlite[variant] = template
    return f"sqlite:///{template}"


@pytest.fixture(scope="module")
def shared_xw(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Xiaowei, dict]]:
    """(Xiaowei, people) on one database for the tests of a module that only read it (the same
    library, organizations and users as ``xw`` + ``people``), at the same fixed time."""
    with clock.using(clock.FixedClock("2026-03-02T01:00:00+00:00")):
        source = _template_url("people", tmp_path_factory.getbasetemp())
        copy_database(source, module_db_url)
        db = Database(module_db_url)
        yield Xiaowei(db), dict(_people)
        db.dispose()
def bypass_append_only(session) -> None:
    """What a database superuser can do behind the engine's back: switch off, for this transaction, the
    PostgreSQL triggers that refuse UPDATE and DELETE on the trail (tests of tamper detection)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))


def add_user(app: Xiaowei, username: str, *roles: str) -> str:
    with app.db.write() as s:
        directory.add_user(s, username, "password123", roles)
    return username


def _add_people(app: Xiaowei) -> dict[str, str]:
    from engine.core import catalogue

    users = {}
    with app.db.write() as s:
        def add(username: str, *roles: str) -> str:
            directory.add_user(s, username, "password123", roles)
            s.flush()
            return username

        for key, role in catalogue.roles().items():
            org = {"village": "DONGAO", "township": "SFZ", "district": "SFQ"}[role.level]
            users[key] = add(f"dongao_{key}" if role.level == "village" else key, f"{key}@{org}")
        users["heping_committee"] = add("heping_committee", "committee@HEPING")
        users["heping_applicant"] = add("heping_applicant", "applicant@HEPING")
        users["nanxi_all"] = add("nanxi_all", *[f"{k}@NANXI" for k, r in catalogue.roles().items()
                                               if r.level == "village"])
    return users


@pytest.fixture
def people(xw: Xiaowei) -> dict[str, str]:
    """One user per village role at 东岙村 (and a few elsewhere), by role key (already in the copy of
    the template that ``xw`` made for this test)."""
    return dict(_people)


def staff_at(app: Xiaowei, org_code: str, people: dict[str, str]) -> dict[str, str]:
    """Users for every village-level role at ``org_code``, plus the township and district users."""
    from engine.core import catalogue

    result = dict(people)
    for key, role in catalogue.roles().items():
        if role.level == "village":
            result[key] = add_user(app, f"{org_code.lower()}_{key}_x", f"{key}@{org_code}")
    return result


def case_context(app: Xiaowei, case_id: int) -> tuple[Any, dict, dict]:
    """(definition, params, data so far) of a case, read through the engine."""
    from engine.core import procedures, spiff
    from storage.models import Case

    with app.db.read() as s:
        case = s.get(Case, case_id)
        rt = procedures.runtime(s, case.procedure_version_id)
        wf = spiff.load_state(case.state, rt.spec, rt.subprocess_specs)
        ready = spiff.ready_user_tasks(wf)
        data = dict(ready[0].data) if ready else {}
        return rt.definition, dict(wf.data.get(spiff.PARAMS_KEY, {})), data


def live_until(values: dict | None) -> None:
    """Move a test's fixed clock forward to the latest day named in ``values`` (a step is recorded on
    or after the day it happened: the clerk refuses acts dated in the future); 09:00 Beijing time, or
    just after the latest time of day given. Never moves the clock back."""
    from datetime import datetime, timedelta, timezone

    fixed = clock.current()
    if not isinstance(fixed, clock.FixedClock) or not values:
        return
    china = timezone(timedelta(hours=8))
    now = fixed.now().astimezone(china)
    latest = None
    for value in values.values():
        if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-":
            continue
        try:
            at = datetime.fromisoformat(value if "T" in value or " " in value else value + "T09:00")
        except ValueError:
            continue
        at = at.replace(tzinfo=china) if at.tzinfo is None else at.astimezone(china)
        latest = at if latest is None or at > latest else latest
    if latest is not None and latest.date() > now.date():
        fixed.set(max(latest.replace(hour=9, minute=0), latest + timedelta(minutes=1)))


def do_step(app: Xiaowei, case_id: int, step_id: str, users: dict[str, str], *, take: str | None = None,
            overrides: dict | None = None, as_user: str | None = None, **kwargs) -> dict:
    """Complete ``step_id`` with planned valid data taking exit ``take``, as the role's user."""
    d, params, data = case_context(app, case_id)
    step = d.steps[step_id]
    payload = plan_step_data(d, step_id, params, data, take=take, overrides=overrides)
    user = as_user or users[step.role]
    if step.evidence_required and "attachments" not in kwargs:
        kwargs["attachments"] = sample_evidence(app, step, user)
    return app.complete(case_id, step_id, user, payload, **kwargs)


def ready_steps(app: Xiaowei, case_id: int) -> list[str]:
    return [t["step_id"] for t in app.tasks(case_id)]


@pytest.fixture
def app(xw: Xiaowei):
    """The Flask app on the test database (web tests)."""
    from web_helpers import make_app

    return make_app(xw)


@pytest.fixture
def case_id(xw: Xiaowei, people: dict[str, str]) -> int:
    """A V-DEC-01 case at 东岙村, just started."""
    return xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])


@pytest.fixture
def browser():
    """The machine's Chromium (never a downloaded one) driven by Playwright, headless, with the same
    flags as the handbook's PDF printing; browser tests skip where it is not installed."""
    from engine.render.handbook import CHROMIUM_ARGS, CHROMIUM_PATH

    if not os.path.exists(CHROMIUM_PATH):
        pytest.skip("Chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
