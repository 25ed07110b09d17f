"""Command-line forms for supervision warnings and the kinship register (contract in docs/cli.md):

``xiaowei warnings rules|scan|list|show|ack|resolve|dismiss|supervise`` and ``xiaowei kin add|list``.
Registered on :func:`engine.cli.base.main`.
"""

from __future__ import annotations

import click

from engine.services.supervision import warnings as rules

from .base import db_option, dumps, facade, handle_errors, json_option, main


@main.group("warnings")
def warnings_group() -> None:
    """Supervision warnings (预警): rules, full scan, the inbox and its handling."""


@warnings_group.command("rules")
@db_option
@json_option
@handle_errors
def warnings_rules(as_json: bool) -> None:
    """Every warning rule: id, names, what it inspects, condition, colour, parameters."""
    data = [r.to_dict() for r in rules.RULES.values()]
    if as_json:
        click.echo(dumps(data))
        return
    for r in data:
        params = ", ".join(f"{p['key']}={p['default']}" for p in r["params"])
        click.echo(f"{r['id']:<6} {r['severity_zh']} {r['zh']} / {r['en']}" + (f"  [{params}]" if params else ""))


@warnings_group.command("scan")
@db_option
@json_option
@click.option("--rule", "rule_ids", multiple=True, metavar="RULE_ID", help="Only these rules (repeatable).")
@handle_errors
def warnings_scan(as_json: bool, rule_ids: tuple[str, ...]) -> None:
    """Run every rule over all cases; print the warnings it raised (the same facts never twice)."""
    unknown = [r for r in rule_ids if r not in rules.RULES]
    if unknown:
        from engine.core.errors import InvalidData

        raise InvalidData(f"未知预警规则 {', '.join(unknown)} / unknown rule", {"rule": ", ".join(rules.RULES)})
    raised = facade().scan_warnings(list(rule_ids) or None)
    if as_json:
        click.echo(dumps({"raised": len(raised), "warnings": raised}))
        return
    for w in raised:
        click.echo(f"#{w['id']:<6} {rules.SEVERITIES[w['severity']]} {w['rule']:<6} "
                   f"{'事项' + str(w['case_id']) if w['case_id'] else '':<8} {w['summary']}")
    click.echo(f"新增预警 {len(raised)} 条 / {len(raised)} warnings raised")


@warnings_group.command("list")
@db_option
@json_option
@click.option("--org", "org_code", default=None, metavar="ORGCODE")
@click.option("--severity", type=click.Choice(list(rules.SEVERITIES)), default=None)
@click.option("--rule", "rule_id", default=None, metavar="RULE_ID")
@click.option("--status", type=click.Choice([*rules.STATUSES, "open"]), default=None)
@click.option("--case", "case_id", type=int, default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0)
@handle_errors
def warnings_list(as_json: bool, org_code, severity, rule_id, status, case_id, limit: int, offset: int) -> None:
    """Warnings, newest first, filtered (the same data as GET /api/v1/warnings)."""
    data = facade().list_warnings(org_code=org_code, severity=severity, rule=rule_id, status=status, case_id=case_id,
                                limit=max(1, min(limit, 1000)), offset=max(0, offset))
    if as_json:
        click.echo(dumps(data))
        return
    for w in data["warnings"]:
        click.echo(f"#{w['id']:<6} {w['severity_zh']} {w['status_zh']:<4} {w['rule']:<6} {w['org_name']:<6} "
                   f"{'事项' + str(w['case_id']) if w['case_id'] else '':<8} {w['summary']}")
    click.echo(f"共 {data['total']} 条 / {data['total']} warnings")


@warnings_group.command("show")
@db_option
@json_option
@click.argument("warning_id", type=int)
@handle_errors
def warnings_show(as_json: bool, warning_id: int) -> None:
    """A warning with its facts, who it involves and its handling history."""
    data = facade().show_warning(warning_id)
    if as_json:
        click.echo(dumps(data))
        return
    click.echo(f"#{data['id']} {data['severity_zh']} {data['rule']} {data['rule_zh']} — {data['status_zh']}")
    click.echo(data["summary"])
    click.echo(dumps(data["facts"]))
    for e in data["history"]:
        click.echo(f"{e['at']} {e['actor']} {e['type']}: {e['data'].get('opinion', '')}")


def _lifecycle(action: str, doc: str):
    @warnings_group.command(action if action != "acknowledge" else "ack", help=doc)
    @db_option
    @json_option
    @click.argument("warning_id", type=int)
    @click.option("--opinion", required=True, help="The handling opinion (recorded in the audit trail).")
    @click.option("--as", "--user", "username", required=True, metavar="USERNAME")
    @handle_errors
    def command(as_json: bool, warning_id: int, opinion: str, username: str) -> None:
        result = facade().handle_warning(warning_id, action, username, opinion)
        click.echo(dumps(result) if as_json else f"预警 #{warning_id}: {result['status_zh']}")

    return command


_lifecycle("acknowledge", "Acknowledge a warning (签收) with an opinion, as a supervisor of its village.")
_lifecycle("resolve", "Resolve a warning (办结) with an opinion.")
_lifecycle("dismiss", "Dismiss a warning (排除) with an opinion.")


@warnings_group.command("supervise")
@db_option
@json_option
@click.argument("warning_id", type=int)
@click.option("--opinion", required=True)
@click.option("--as", "--user", "username", required=True, metavar="USERNAME")
@handle_errors
def warnings_supervise(as_json: bool, warning_id: int, opinion: str, username: str) -> None:
    """督办: open a supervision case (T-SUP-01 at the township) for a red warning."""
    result = facade().supervise_warning(warning_id, username, opinion)
    click.echo(dumps(result) if as_json else f"预警 #{warning_id} 已督办:事项 {result['supervision_case_id']}")


@main.group("kin")
def kin_group() -> None:
    """The kinship / relationship register of cadres (亲属关系申报)."""


@kin_group.command("add")
@db_option
@json_option
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@click.option("--cadre", required=True, metavar="USERNAME", help="The cadre who declares.")
@click.option("--person", required=True, metavar="NAME", help="The related person's name (as forms record it).")
@click.option("--relation", required=True, type=click.Choice(list(rules.KIN_RELATIONS)))
@click.option("--note", default="")
@click.option("--as", "username", default="cli", metavar="USERNAME")
@handle_errors
def kin_add(as_json: bool, org_code: str, cadre: str, person: str, relation: str, note: str, username: str) -> None:
    """Declare that PERSON is the cadre's relative (or the cadre themself: --relation self)."""
    with facade().db.write() as s:
        row = rules.add_kin(s, org_code, cadre, person, relation, actor=username, note=note)
    click.echo(dumps(row) if as_json else f"已登记 #{row['id']}: {cadre} — {person}({row['relation_zh']})")


@kin_group.command("list")
@db_option
@json_option
@click.option("--org", "org_code", default=None, metavar="ORGCODE")
@click.option("--cadre", default=None, metavar="USERNAME")
@handle_errors
def kin_list(as_json: bool, org_code: str | None, cadre: str | None) -> None:
    """The declared relationships (of an organization's subtree, or one cadre)."""
    with facade().db.read() as s:
        rows = rules.list_kin(s, org_code, cadre)
    if as_json:
        click.echo(dumps(rows))
        return
    for r in rows:
        click.echo(f"#{r['id']:<5} {r['org']:<10} {r['cadre']:<20} {r['person_name']:<10} {r['relation_zh']}({r['degree']}级)")

