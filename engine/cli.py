"""The `xiaowei` command line. Its command forms are a contract (README, docs/cli.md)."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click
from sqlalchemy.exc import ArgumentError, DBAPIError

from . import catalogue, clock, directory, narrative, procedures
from . import dossier as dossier_module
from .errors import XiaoweiError
from .lint import lint_bytes
from .service import Xiaowei, dumps
from storage import Database, default_url


class Context:
    def __init__(self) -> None:
        self.db_url: str | None = None
        self._app: Xiaowei | None = None

    @property
    def app(self) -> Xiaowei:
        if self._app is None:
            self._app = Xiaowei(Database(self.db_url or default_url()))
        return self._app


def _db_option(func: Callable) -> Callable:
    """Every command takes --db (default: DATABASE_URL, else sqlite:///xiaowei.db)."""

    def store(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value:
            ctx.ensure_object(Context).db_url = value
        return value

    return click.option("--db", "db_url", metavar="URL", expose_value=False, callback=store, is_eager=True,
                        help="Database URL (default: DATABASE_URL, else sqlite:///xiaowei.db).")(func)


def _json_option(func: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)


def _errors(func: Callable) -> Callable:
    """Turn engine errors into one line on stderr and a non-zero exit; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except XiaoweiError as exc:
            click.echo(f"错误 / error: {exc.message}", err=True)
            for value in (getattr(exc, "errors", None) or {}).values():
                click.echo(f"  - {value}", err=True)
            for problem in getattr(exc, "problems", None) or []:
                click.echo(f"  {problem}", err=True)
            sys.exit(1)
        except DBAPIError as exc:
            text = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
            if "no such table" in text or "does not exist" in text:
                click.echo("错误 / error: 数据库尚未初始化,请先运行 xiaowei init / the database has no schema yet: "
                           "run xiaowei init", err=True)
            else:
                click.echo(f"错误 / error: 数据库出错 / database error: {text}", err=True)
            sys.exit(1)
        except (OSError, ArgumentError) as exc:
            click.echo(f"错误 / error: {exc}", err=True)
            sys.exit(1)

    return wrapper


def _app() -> Xiaowei:
    return click.get_current_context().ensure_object(Context).app


def _parse_json(text: str | None, what: str = "--data") -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise XiaoweiError(f"{what} 不是有效的 JSON:{exc} / {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise XiaoweiError(f"{what} 须为 JSON 对象 / {what} must be a JSON object")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_db_option
@click.pass_context
def main(ctx: click.Context) -> None:
    """Xiaowei 小微 — standardized village and community procedures as auditable BPMN cases."""
    ctx.ensure_object(Context)
    fixed = os.environ.get("XIAOWEI_NOW")
    if fixed:
        ctx.with_resource(clock.using(clock.FixedClock(fixed)))


@main.command()
@_db_option
@_json_option
@_errors
def init(as_json: bool) -> None:
    """Create or upgrade the schema, load and publish processes/."""
    results = _app().init()
    if as_json:
        click.echo(dumps(results))
        return
    new = [r for r in results if r["new"]]
    click.echo(f"数据库已就绪;{len(results)} 个事项,新发布 {len(new)} 个 / schema ready; "
               f"{len(results)} procedures, {len(new)} newly published")
    for r in new:
        click.echo(f"  发布 {r['procedure_id']} v{r['version']}")


@main.command()
@_db_option
@_json_option
@_errors
def demo(as_json: bool) -> None:
    """init plus demo organizations, users for every role (passwords printed once) and cases."""
    from .demo import load_demo

    app = _app()
    app.init()
    result = load_demo(app)
    if as_json:
        click.echo(dumps(result))
        return
    if not result["created"]:
        click.echo("演示数据已存在,未重复创建 / demo data already present")
        return
    click.echo("演示数据已创建 / demo data created. 以下密码只显示这一次 / passwords are shown once:")
    for user in result["users"]:
        click.echo(f"  {user['username']:<24} {user['password']}  {', '.join(user['roles'])}")
    click.echo("演示事项 / demo cases:")
    for case in result["cases"]:
        click.echo(f"  #{case['id']} {case['procedure_id']} {case['org']} {case['status']} {case['note']}")


def start_ticker(engine_app, every: float):
    """A daemon thread that runs ``tick`` every ``every`` seconds (safe beside other tickers: a timer
    fires once, each case is locked while it changes). Errors are logged, never fatal."""
    import logging
    import threading

    log = logging.getLogger("xiaowei.tick")
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                engine_app.tick()
            except Exception:  # the server keeps serving; the next round tries again
                log.exception("tick failed")
            stop.wait(every)

    thread = threading.Thread(target=run, name="xiaowei-tick", daemon=True)
    thread.start()
    return stop


@main.command()
@_db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--tick-every", default=60, show_default=True, type=int, metavar="SECONDS",
              help="fire due timers and time-based checks this often in the background (0: never; then run "
                   "`xiaowei tick` from cron)")
@_errors
def serve(host: str, port: int, tick_every: int) -> None:
    """Serve the web app."""
    from webui import create_app

    from webui import warm_up

    engine_app = _app()
    app = create_app(db=engine_app.db)
    warm_up(app)
    if tick_every > 0:
        start_ticker(engine_app, tick_every)
    click.echo(f"小微 Xiaowei: http://{host}:{port}/")
    try:
        from waitress import serve as waitress_serve
    except ImportError:  # pragma: no cover - waitress is a dependency
        app.run(host=host, port=port)
        return
    waitress_serve(app, host=host, port=port, threads=8)


@main.group()
def org() -> None:
    """Organizations: district → township → village / community."""


@org.command("add")
@_db_option
@click.argument("code")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice(directory.ORG_KINDS))
@click.option("--parent", "parent", default=None, metavar="CODE")
@_errors
def org_add(code: str, name: str, kind: str, parent: str | None) -> None:
    """Add an organization."""
    with _app().db.write() as s:
        directory.add_org(s, code, name, kind, parent, actor="cli")
    click.echo(f"已添加机构 {code} {name} / organization added")


@org.command("list")
@_db_option
@_json_option
@_errors
def org_list(as_json: bool) -> None:
    """List organizations."""
    with _app().db.read() as s:
        orgs = directory.list_orgs(s)
    if as_json:
        click.echo(dumps(orgs))
        return
    for o in orgs:
        click.echo(f"{o['code']:<14} {o['kind']:<10} {o['name']}  (上级 {o['parent'] or '-'})")


@main.group()
def user() -> None:
    """Users and their role assignments."""


@user.command("add")
@_db_option
@click.argument("username")
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, metavar="ROLE@ORGCODE")
@click.option("--name", "display_name", default="")
@_errors
def user_add(username: str, password: str, roles: tuple[str, ...], display_name: str) -> None:
    """Add a user with roles held at organizations."""
    with _app().db.write() as s:
        directory.add_user(s, username, password, roles, display_name=display_name, actor="cli")
    click.echo(f"已添加用户 {username} / user added")


@user.command("list")
@_db_option
@_json_option
@_errors
def user_list(as_json: bool) -> None:
    """List users with their role@org assignments."""
    with _app().db.read() as s:
        users = directory.list_users(s)
    if as_json:
        click.echo(dumps(users))
        return
    for u in users:
        click.echo(f"{u['username']:<24} {', '.join(u['roles'])}")


@user.command("grant")
@_db_option
@click.argument("username")
@click.argument("role_spec", metavar="ROLE@ORGCODE")
@_errors
def user_grant(username: str, role_spec: str) -> None:
    """Give a user a role at an organization."""
    with _app().db.write() as s:
        directory.grant(s, username, role_spec, actor="cli")
    click.echo(f"已授予 {username} {role_spec}")


@user.command("passwd")
@_db_option
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@_errors
def user_passwd(username: str, password: str) -> None:
    """Set a user's password."""
    with _app().db.write() as s:
        directory.set_password(s, username, password, actor="cli")
    click.echo("密码已更新 / password updated")


@main.group()
def roles() -> None:
    """The role registry."""


@roles.command("list")
@_db_option
@_json_option
def roles_list(as_json: bool) -> None:
    """List role keys with Chinese names."""
    data = [{"key": r.key, "name": r.zh, "name_en": r.en, "level": r.level} for r in catalogue.roles().values()]
    if as_json:
        click.echo(dumps(data))
        return
    for r in data:
        click.echo(f"{r['key']:<26} {r['name']}")


@main.group("procedures")
def procedures_group() -> None:
    """The procedure library."""


@procedures_group.command("list")
@_db_option
@_json_option
@click.option("--edition", type=click.Choice(["village", "community"]), default=None)
@click.option("--category", default=None, metavar="CODE")
@_errors
def procedures_list(as_json: bool, edition: str | None, category: str | None) -> None:
    """List published procedures (filter by edition or category)."""
    if category and category not in catalogue.categories():
        raise XiaoweiError(f"未知类别“{category}”,可选:{'、'.join(catalogue.categories())} / unknown category")
    with _app().db.read() as s:
        data = procedures.list_procedures(s, edition=edition, category=category)
    if as_json:
        click.echo(dumps(data))
        return
    for p in data:
        click.echo(f"{p['id']:<10} v{p['version']:<3} {p['category_name']:<12} {p['name']}")


@procedures_group.command("show")
@_db_option
@_json_option
@click.argument("procedure_id")
@_errors
def procedures_show(as_json: bool, procedure_id: str) -> None:
    """Show a procedure: steps, roles, time limits, checkpoints, legal basis."""
    with _app().db.read() as s:
        data = procedures.show_procedure(s, procedure_id)
    if as_json:
        click.echo(dumps(data))
        return
    click.echo(f"{data['id']} {data['name']} (v{data['version']})")
    for step in data["steps"]:
        role = catalogue.roles().get(step["role"])
        limit = f" 时限 {step['time_limit']}" if step["time_limit"] else ""
        click.echo(f"  {step['id']:<28} {step['name']}  [{role.zh if role else step['role']}]{limit}")


@procedures_group.command("publish-dir")
@_db_option
@_json_option
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@_errors
def procedures_publish_dir(as_json: bool, directory: Path | None) -> None:
    """Validate and publish every .bpmn file of a directory (default: processes/)."""
    with _app().db.write() as s:
        results = procedures.publish_directory(s, directory, actor="cli")
    click.echo(dumps(results) if as_json else f"{sum(r['new'] for r in results)} 个新版本 / new versions")


@main.group()
def case() -> None:
    """Cases: start, see tasks, complete steps."""


@case.command("start")
@_db_option
@_json_option
@click.argument("procedure_id")
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--data", default=None, metavar="JSON")
@_errors
def case_start(as_json: bool, procedure_id: str, org_code: str, username: str, data: str | None) -> None:
    """Start a case; prints the case id."""
    case_id = _app().start_case(procedure_id, org_code, username, _parse_json(data))
    if as_json:
        click.echo(dumps({"case_id": case_id, "tasks": _app().tasks(case_id, fire=False)}))
    else:
        click.echo(case_id)


@case.command("tasks")
@_db_option
@_json_option
@click.argument("case_id", type=int)
@_errors
def case_tasks(as_json: bool, case_id: int) -> None:
    """Ready steps of a case with role and due time."""
    tasks = _app().tasks(case_id)
    if as_json:
        click.echo(dumps(tasks))
        return
    if not tasks:
        click.echo("没有待办步骤 / no ready steps")
    for t in tasks:
        role = catalogue.roles().get(t["role"])
        due = f" 期限 {t['due_at']}" if t["due_at"] else ""
        flag = " [已超期 overdue]" if t["overdue"] else ""
        click.echo(f"{t['step_id']:<28} {t['name']}  [{role.zh if role else t['role']}]{due}{flag}")


@case.command("complete")
@_db_option
@_json_option
@click.argument("case_id", type=int)
@click.argument("step_id")
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--data", default=None, metavar="JSON")
@click.option("--on-behalf-of", default=None, help="代办: the villager's name.")
@click.option("--reason", default=None, help="代办: why the cadre acts on their behalf.")
@_errors
def case_complete(as_json: bool, case_id: int, step_id: str, username: str, data: str | None,
                  on_behalf_of: str | None, reason: str | None) -> None:
    """Complete a ready step with form data."""
    result = _app().complete(case_id, step_id, username, _parse_json(data), on_behalf_of=on_behalf_of,
                             proxy_reason=reason)
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(f"已办理 {step_id};事项状态 {result['status']} / completed")
    for t in result["tasks"]:
        click.echo(f"  下一步 next: {t['step_id']} {t['name']}")


@case.command("show")
@_db_option
@_json_option
@click.argument("case_id", type=int)
@_errors
def case_show(as_json: bool, case_id: int) -> None:
    """Status, current steps and history of a case."""
    data = _app().show_case(case_id)
    if as_json:
        click.echo(dumps(data))
        return
    click.echo(f"#{data['id']} {data['procedure_id']} {data['procedure_name']} — {data['title']}")
    click.echo(f"  {data['org_name']}  状态 {data['status_zh']}  查询码 {data['tracking_code']}")
    for t in data["current_steps"]:
        due = narrative.china(t["due_at"]) if t["due_at"] else "不限"
        click.echo(f"  当前步骤:{t['name']}({catalogue.role_zh(t['role'], '')}),期限 {due}")
    for item in _app().narrated_history(case_id):
        entry = item["entry"]
        role = f"·{item['role_name']}" if item["role_name"] else ""
        click.echo(f"  #{item['seq']:<3} {narrative.china(item['at'])}  {item['who']}{role}  {entry.title}")
        for line in entry.lines:
            click.echo(f"        {line}")
        for label, value in entry.items:
            click.echo(f"        {label}:{value}")
        for label, before, after in entry.changes:
            click.echo(f"        改动 {label}:{before} → {after}")
        for a in entry.attachments:
            click.echo(f"        附件 {a.get('name', '')}(SHA-256 {str(a.get('sha256', ''))[:12]}…)")
        for line in entry.after:
            click.echo(f"        {line}")


@case.command("dossier")
@_db_option
@_json_option
@click.argument("case_id", type=int)
@click.option("--as", "username", default=None, metavar="USERNAME",
              help="Read as this user (refused, and recorded, where the user may not read the case).")
@_errors
def case_dossier(as_json: bool, case_id: int, username: str | None) -> None:
    """The case file (卷宗): every submission as made, decisions, objections, opinions."""
    data = _app().dossier(case_id, username)
    if as_json:
        click.echo(dumps(dossier_module.contract(data)))
        return
    click.echo(f"事项 #{case_id} 卷宗:{len(data['submissions'])} 份提交")
    for group in dossier_module.grouped(data):
        click.echo(f"【{group['step_name']}】")
        for s in group["rounds"]:
            proxy = f",代办:为 {s['on_behalf_of']}({s['proxy_reason']})" if s["on_behalf_of"] else ""
            round_ = f"第{s['round']}次 · " if s["round"] > 1 else ""
            click.echo(f"  {round_}{narrative.china(s['at'])} {s['by_name']}({s['role_name']}){proxy}")
            for item in s["items"]:
                click.echo(f"    {item['label']}:{item['text']}")
            for a in s["attachments"]:
                click.echo(f"    附件 {a['name']}(SHA-256 {a['sha256'][:12]}…)")
    if data["decisions"]:
        click.echo("【流程判断】")
        for dec in data["decisions"]:
            click.echo(f"  {narrative.china(dec['at'])} {dec['text']}" + (f";依据:{dec['reason']}" if dec["reason"] else ""))
    if data["objections"]:
        click.echo("【收到的异议】")
        for o in data["objections"]:
            click.echo(f"  {narrative.china(o['at'])}(公示:{o['step_name']}){o['text']}")
    if data["opinions"]:
        click.echo("【监督意见】")
        for o in data["opinions"]:
            click.echo(f"  {narrative.china(o['at'])} {o['by_name']}:{o['text']}" + (f";{o['opinion']}" if o["opinion"] else ""))


@case.command("list")
@_db_option
@_json_option
@click.option("--org", "org_code", default=None, metavar="ORGCODE")
@click.option("--status", default=None)
@_errors
def case_list(as_json: bool, org_code: str | None, status: str | None) -> None:
    """List cases (optionally of an organization and its subtree, or by status)."""
    data = _app().list_cases(org_code=org_code, status=status)
    if as_json:
        click.echo(dumps(data))
        return
    for c in data:
        click.echo(f"#{c['id']:<6} {c['procedure_id']:<10} {c['org']:<12} {c['status_zh']:<6} {c['title']}")


@case.command("cancel")
@_db_option
@click.argument("case_id", type=int)
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--reason", required=True)
@_errors
def case_cancel(case_id: int, username: str, reason: str) -> None:
    """Cancel (terminate) a running case with a reason."""
    _app().cancel(case_id, username, reason)
    click.echo(f"事项 #{case_id} 已撤销 / cancelled")


@main.command()
@_db_option
@_json_option
@click.option("--now", "now", default=None, metavar="ISO8601", help="Fire timers due at this time.")
@_errors
def tick(as_json: bool, now: str | None) -> None:
    """Fire every due timer."""
    if now:
        try:
            fixed = clock.FixedClock(now)
        except ValueError:
            raise XiaoweiError(f"--now 不是有效的 ISO 8601 时间:{now} / invalid time") from None
        with clock.using(fixed):
            result = _app().tick()
    else:
        result = _app().tick()
    if as_json:
        click.echo(dumps(result))
    else:
        click.echo(f"到期事项 {result['due_cases']},推进 {result['cases_advanced']} / due {result['due_cases']}, "
                   f"advanced {result['cases_advanced']}")


@main.group("audit")
def audit_group() -> None:
    """Verify and export the audit trail."""


@audit_group.command("verify")
@_db_option
@_json_option
@click.option("--case", "case_id", type=int, default=None)
@_errors
def audit_verify(as_json: bool, case_id: int | None) -> None:
    """Recompute every hash chain; exit 1 if any event was edited, deleted, reordered or inserted."""
    reports = _app().verify(case_id)
    bad = [r for r in reports if not r.ok]
    if as_json:
        click.echo(dumps([{"chain": r.chain, "events": r.events, "ok": r.ok, "problems": r.problems} for r in reports]))
    else:
        total = sum(r.events for r in reports)
        if bad:
            click.echo(f"审计链校验失败 / audit verification FAILED ({len(bad)} of {len(reports)} chains)")
            for r in bad:
                for p in r.problems:
                    click.echo(f"  {r.chain}: {p}")
        else:
            click.echo(f"审计链完好 / audit chains verify: {len(reports)} chains, {total} events")
    if bad:
        sys.exit(1)


@audit_group.command("export")
@_db_option
@click.argument("case_id", type=int)
@click.option("-o", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@_errors
def audit_export(case_id: int, output: Path) -> None:
    """Write a self-contained trail that `python -m engine.trailcheck FILE` verifies offline."""
    text = _app().export_trail(case_id)
    output.write_text(text, encoding="utf-8")
    click.echo(f"已导出 {output} / trail written")


@main.command()
@_json_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@_db_option
def lint(as_json: bool, paths: tuple[Path, ...]) -> None:
    """Validate BPMN files (default: processes/)."""
    files: list[Path] = []
    for p in paths or (catalogue.processes_dir(),):
        files.extend(sorted(p.glob("*.bpmn")) if p.is_dir() else [p])
    report = []
    failed = 0
    for f in files:
        result = lint_bytes(f.read_bytes(), str(f))
        errors = result.errors
        failed += bool(errors)
        report.append({"file": str(f), "ok": not errors, "problems": [p.to_dict() for p in result.problems]})
        if not as_json:
            for p in result.problems:
                click.echo(f"{f.name}: {p}")
    if as_json:
        click.echo(dumps(report))
    else:
        click.echo(f"{len(files)} 个文件,{failed} 个有错误 / {len(files)} files, {failed} with errors")
    if failed or not files:
        sys.exit(1)


@main.command()
@_db_option
@_json_option
@click.option("--edition", required=True, type=click.Choice(["village", "community"]))
@click.option("--format", "fmt", required=True, type=click.Choice(["html", "pdf"]))
@click.option("-o", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--org", "org_code", default=None,
              help="print the local parameters in force at this township or village (its overrides marked)")
@_errors
def handbook(as_json: bool, edition: str, fmt: str, output: Path, org_code: str | None) -> None:
    """Print the handbook (一本两库) of an edition from the live published versions."""
    from .handbook import build_handbook

    result = build_handbook(_app(), edition, fmt, output, org_code)
    if as_json:
        click.echo(dumps({**result, "file": str(output)}))
    else:
        click.echo(f"已生成 {output}:{result['procedures']} 个事项,{result['bytes'] / 1024:.0f} KB,"
                   f"用时 {result['seconds']:.1f} 秒 / handbook written")


@main.group()
def params() -> None:
    """Local parameters (thresholds, notice days, quorum ratios): district → township → village."""


@params.command("set")
@_db_option
@click.argument("key")
@click.argument("value")
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@_errors
def params_set(key: str, value: str, org_code: str) -> None:
    """Set a parameter at an organization (applies to it and everything below)."""
    with _app().db.write() as s:
        procedures.set_param(s, directory.get_org(s, org_code), key, value, actor="cli")
    click.echo(f"{org_code}: {key} = {value}")


@params.command("show")
@_db_option
@_json_option
@click.argument("procedure_id")
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@_errors
def params_show(as_json: bool, procedure_id: str, org_code: str) -> None:
    """Effective parameters of a procedure at an organization, with where each value comes from."""
    with _app().db.read() as s:
        version = procedures.current_version(s, procedure_id)
        rt = procedures.runtime(s, version.id)
        values = procedures.effective_params(s, rt.definition, directory.get_org(s, org_code))
    data = [{"key": k, "label": rt.definition.parameters[k].label, "value": str(v["value"]), "source": v["source"]}
            for k, v in values.items()]
    if as_json:
        click.echo(dumps(data))
        return
    for p in data:
        click.echo(f"{p['key']:<28} {p['value']:<10} {p['label']} ({p['source']})")



from . import cli_editing  # noqa: E402,F401  (registers procedures import/export/diff/publish, case migrate)
from . import cli_warnings  # noqa: E402,F401  (registers warnings …, kin add/list)


if __name__ == "__main__":
    main()
