"""`xiaowei case start|tasks|complete|show|list|cancel`, `xiaowei tick`, `xiaowei audit verify|export`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.core import catalogue, clock
from engine.render import narrative
from engine.services import dossier as dossier_module
from engine.core.errors import XiaoweiError

from .base import facade, db_option, dumps, handle_errors, json_option, main, parse_json


@main.group()
def case() -> None:
    """Cases: start, see tasks, complete steps."""


@case.command("start")
@db_option
@json_option
@click.argument("procedure_id")
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--data", default=None, metavar="JSON")
@handle_errors
def case_start(as_json: bool, procedure_id: str, org_code: str, username: str, data: str | None) -> None:
    """Start a case; prints the case id."""
    case_id = facade().start_case(procedure_id, org_code, username, parse_json(data))
    if as_json:
        click.echo(dumps({"case_id": case_id, "tasks": facade().tasks(case_id, fire=False)}))
    else:
        click.echo(case_id)


@case.command("tasks")
@db_option
@json_option
@click.argument("case_id", type=int)
@handle_errors
def case_tasks(as_json: bool, case_id: int) -> None:
    """Ready steps of a case with role and due time."""
    tasks = facade().tasks(case_id)
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
@db_option
@json_option
@click.argument("case_id", type=int)
@click.argument("step_id")
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--data", default=None, metavar="JSON")
@click.option("--on-behalf-of", default=None, help="代办: the villager's name.")
@click.option("--reason", default=None, help="代办: why the cadre acts on their behalf.")
@handle_errors
def case_complete(as_json: bool, case_id: int, step_id: str, username: str, data: str | None,
                  on_behalf_of: str | None, reason: str | None) -> None:
    """Complete a ready step with form data."""
    result = facade().complete(case_id, step_id, username, parse_json(data), on_behalf_of=on_behalf_of,
                             proxy_reason=reason)
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(f"已办理 {step_id};事项状态 {result['status']} / completed")
    for t in result["tasks"]:
        click.echo(f"  下一步 next: {t['step_id']} {t['name']}")


@case.command("show")
@db_option
@json_option
@click.argument("case_id", type=int)
@handle_errors
def case_show(as_json: bool, case_id: int) -> None:
    """Status, current steps and history of a case."""
    data = facade().show_case(case_id)
    if as_json:
        click.echo(dumps(data))
        return
    click.echo(f"#{data['id']} {data['procedure_id']} {data['procedure_name']} — {data['title']}")
    click.echo(f"  {data['org_name']}  状态 {data['status_zh']}  查询码 {data['tracking_code']}")
    for t in data["current_steps"]:
        due = narrative.china(t["due_at"]) if t["due_at"] else "不限"
        click.echo(f"  当前步骤:{t['name']}({catalogue.role_zh(t['role'], '')}),期限 {due}")
    for item in facade().narrated_history(case_id):
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
@db_option
@json_option
@click.argument("case_id", type=int)
@click.option("--as", "username", default=None, metavar="USERNAME",
              help="Read as this user (refused, and recorded, where the user may not read the case).")
@handle_errors
def case_dossier(as_json: bool, case_id: int, username: str | None) -> None:
    """The case file (卷宗): every submission as made, decisions, objections, opinions."""
    data = facade().dossier(case_id, username)
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
@db_option
@json_option
@click.option("--org", "org_code", default=None, metavar="ORGCODE")
@click.option("--status", default=None)
@handle_errors
def case_list(as_json: bool, org_code: str | None, status: str | None) -> None:
    """List cases (optionally of an organization and its subtree, or by status)."""
    data = facade().list_cases(org_code=org_code, status=status)
    if as_json:
        click.echo(dumps(data))
        return
    for c in data:
        click.echo(f"#{c['id']:<6} {c['procedure_id']:<10} {c['org']:<12} {c['status_zh']:<6} {c['title']}")


@case.command("cancel")
@db_option
@click.argument("case_id", type=int)
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--reason", required=True)
@handle_errors
def case_cancel(case_id: int, username: str, reason: str) -> None:
    """Cancel (terminate) a running case with a reason."""
    facade().cancel(case_id, username, reason)
    click.echo(f"事项 #{case_id} 已撤销 / cancelled")


@case.command("retry")
@db_option
@json_option
@click.argument("case_id", type=int)
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="set this parameter of the case (else the value now in force at its village applies)")
@handle_errors
def case_retry(as_json: bool, case_id: int, username: str, params: tuple[str, ...]) -> None:
    """After an incident: take the parameters now in force (and --param), fire due timers, complete
    the failed submission again as its author (a township or district administrator)."""
    values = {}
    for item in params:
        if "=" not in item:
            raise XiaoweiError(f"--param 须写作 KEY=VALUE:{item} / --param must be KEY=VALUE")
        key, value = item.split("=", 1)
        values[key.strip()] = value.strip()
    result = facade().retry_case(case_id, username, values)
    if as_json:
        click.echo(dumps(result))
        return
    for c in result["changes"]:
        click.echo(f"  参数 {c['key']}: {c['before']} → {c['after']}")
    done = f";已重新提交 {result['completed']}" if result["completed"] else ""
    click.echo(f"事项 #{case_id} 已重试{done};状态 {result['status']} / retried")
    for t in result["tasks"]:
        click.echo(f"  下一步 next: {t['step_id']} {t['name']}")


@main.command()
@db_option
@json_option
@click.option("--now", "now", default=None, metavar="ISO8601", help="Fire timers due at this time.")
@handle_errors
def tick(as_json: bool, now: str | None) -> None:
    """Fire every due timer."""
    if now:
        try:
            fixed = clock.FixedClock(now)
        except ValueError:
            raise XiaoweiError(f"--now 不是有效的 ISO 8601 时间:{now} / invalid time") from None
        with clock.using(fixed):
            result = facade().tick()
    else:
        result = facade().tick()
    if as_json:
        click.echo(dumps(result))
    else:
        click.echo(f"到期事项 {result['due_cases']},推进 {result['cases_advanced']} / due {result['due_cases']}, "
                   f"advanced {result['cases_advanced']}")
        for warning in result.get("calendar_warnings", []):
            click.echo(f"警告 / warning: {warning}", err=True)


@main.group("audit")
def audit_group() -> None:
    """Verify and export the audit trail."""


@audit_group.command("verify")
@db_option
@json_option
@click.option("--case", "case_id", type=int, default=None)
@handle_errors
def audit_verify(as_json: bool, case_id: int | None) -> None:
    """Recompute every hash chain; exit 1 if any event was edited, deleted, reordered or inserted."""
    reports = facade().verify(case_id)
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
@db_option
@click.argument("case_id", type=int)
@click.option("-o", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def audit_export(case_id: int, output: Path) -> None:
    """Write a self-contained trail that `python -m engine.trailcheck FILE` verifies offline."""
    text = facade().export_trail(case_id)
    output.write_text(text, encoding="utf-8")
    click.echo(f"已导出 {output} / trail written")


@audit_group.command("checkpoint")
@db_option
@json_option
@handle_errors
def audit_checkpoint(as_json: bool) -> None:
    """Sign a checkpoint now over every chain head that moved (tick does it every few minutes)."""
    from engine.core import checkpoints

    key = checkpoints.load_key()
    if key is None:
        raise XiaoweiError("没有签名密钥:先运行 xiaowei audit keygen,或设置 XIAOWEI_SIGNING_KEY / no signing key "
                           "(xiaowei audit keygen, or set XIAOWEI_SIGNING_KEY)")
    with facade().db.write() as s:
        made = checkpoints.make(s, key)
        latest = checkpoints.published(s)
    if as_json:
        click.echo(dumps({"made": made, **(latest or {})}))
        return
    for problem in (made or {}).get("problems", []):
        click.echo(f"  未锚定 not anchored: {problem}", err=True)
    if made is None or not made.get("new"):
        cp = (latest or {}).get("checkpoint")
        click.echo(f"链头没有变化,最新检查点仍为 #{cp['number'] if cp else '-'} / no head moved")
    else:
        click.echo(f"检查点 #{made['number']}:{made['leaves']} 个链头,树 {made['tree_size']},根 {made['root_hash']} / "
                   "checkpoint signed")
    if made and made.get("problems"):
        sys.exit(1)


@audit_group.command("keygen")
@db_option
@click.option("-o", "output", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the private key (default: XIAOWEI_SIGNING_KEY, else xiaowei-signing.key)")
@handle_errors
def audit_keygen(output: Path | None) -> None:
    """Make the district's Ed25519 signing key (mode 0600; never overwrites) and print its public half."""
    from engine.core import checkpoints

    key = checkpoints.generate_key(output)
    click.echo(f"已生成签名密钥 {key.path}(请妥善保管,不要与数据库放在一起)/ signing key written")
    click.echo(f"公钥 public key: {key.public_hex}")
    click.echo(f"指纹 fingerprint: {key.key_id}")


@audit_group.command("key")
@db_option
@json_option
@handle_errors
def audit_key(as_json: bool) -> None:
    """Print the public half of the signing key (publish it: trailcheck --key checks against it)."""
    from engine.core import checkpoints

    key = checkpoints.load_key()
    if key is None:
        raise XiaoweiError("没有签名密钥 / no signing key (xiaowei audit keygen)")
    if as_json:
        click.echo(dumps({"public_key": key.public_hex, "key_id": key.key_id, "path": str(key.path)}))
    else:
        click.echo(f"公钥 public key: {key.public_hex}\n指纹 fingerprint: {key.key_id}")


APPEND_ONLY_ROLE_SQL = """-- Xiaowei on PostgreSQL: the app connects as an append-only role, the schema belongs to another.
-- Run as the database owner after `xiaowei init`; then set DATABASE_URL to the app role.
CREATE ROLE {role} LOGIN PASSWORD 'change-me';
GRANT CONNECT ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
-- The trail and the checkpoints: read and append, nothing else (the triggers refuse it for anyone too).
REVOKE UPDATE, DELETE, TRUNCATE ON audit_event, checkpoint_leaf, audit_checkpoint FROM {role};
-- Not the owner: the role cannot drop or disable the triggers, nor ALTER the tables.
"""


@audit_group.command("db-role")
@db_option
@click.option("--role", default="xiaowei_app", show_default=True)
@click.option("--database", default="xiaowei", show_default=True)
def audit_db_role(role: str, database: str) -> None:
    """Print the SQL of a separate, append-only PostgreSQL role for the app (see docs/security.md)."""
    import re

    if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", role) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", database):
        click.echo("错误 / error: 角色名和数据库名只能用字母、数字和下划线 / invalid role or database name", err=True)
        sys.exit(1)
    click.echo(APPEND_ONLY_ROLE_SQL.format(role=role, database=database), nl=False)
