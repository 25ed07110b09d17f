"""`xiaowei org|user|roles|params`: the organization tree, users and role assignments, local parameters."""

from __future__ import annotations

import click

from engine.core import catalogue, directory, procedures

from .base import facade, db_option, dumps, handle_errors, json_option, main


@main.group()
def org() -> None:
    """Organizations: district → township → village / community."""


@org.command("add")
@db_option
@click.argument("code")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice(directory.ORG_KINDS))
@click.option("--parent", "parent", default=None, metavar="CODE")
@handle_errors
def org_add(code: str, name: str, kind: str, parent: str | None) -> None:
    """Add an organization."""
    with facade().db.write() as s:
        directory.add_org(s, code, name, kind, parent, actor="cli")
    click.echo(f"已添加机构 {code} {name} / organization added")


@org.command("list")
@db_option
@json_option
@handle_errors
def org_list(as_json: bool) -> None:
    """List organizations."""
    with facade().db.read() as s:
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
@db_option
@click.argument("username")
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, metavar="ROLE@ORGCODE")
@click.option("--name", "display_name", default="")
@handle_errors
def user_add(username: str, password: str, roles: tuple[str, ...], display_name: str) -> None:
    """Add a user with roles held at organizations."""
    with facade().db.write() as s:
        directory.add_user(s, username, password, roles, display_name=display_name, actor="cli")
    click.echo(f"已添加用户 {username} / user added")


@user.command("list")
@db_option
@json_option
@handle_errors
def user_list(as_json: bool) -> None:
    """List users with their role@org assignments."""
    with facade().db.read() as s:
        users = directory.list_users(s)
    if as_json:
        click.echo(dumps(users))
        return
    for u in users:
        click.echo(f"{u['username']:<24} {', '.join(u['roles'])}")


@user.command("grant")
@db_option
@click.argument("username")
@click.argument("role_spec", metavar="ROLE@ORGCODE")
@handle_errors
def user_grant(username: str, role_spec: str) -> None:
    """Give a user a role at an organization."""
    with facade().db.write() as s:
        directory.grant(s, username, role_spec, actor="cli")
    click.echo(f"已授予 {username} {role_spec}")


@user.command("passwd")
@db_option
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@handle_errors
def user_passwd(username: str, password: str) -> None:
    """Set a user's password."""
    with facade().db.write() as s:
        directory.set_password(s, username, password, actor="cli")
    click.echo("密码已更新 / password updated")


@user.command("logout")
@db_option
@click.argument("username")
@handle_errors
def user_logout(username: str) -> None:
    """Sign a user out everywhere: every open session ends at once (audited)."""
    from engine.core import sessions

    with facade().db.write() as s:
        count = sessions.sign_out_everywhere(s, username, actor="cli", reason="admin")
    click.echo(f"已结束 {username} 的 {count} 个登录会话 / {count} sessions ended")


@user.command("person")
@db_option
@json_option
@click.argument("username")
@click.option("--id-number", "id_number", default=None, help="The holder's ID number (kept encrypted and keyed-hashed).")
@handle_errors
def user_person(as_json: bool, username: str, id_number: str | None) -> None:
    """Link the account to the person who holds it (people, not accounts: the conflict rules compare persons)."""
    from engine.core import people

    with facade().db.write() as s:
        person = people.person_for_user(s, username, id_number=id_number, actor="cli")
        out = {"username": username, "person_id": person.id, "name": person.name, "id_tail": person.id_tail}
    if as_json:
        click.echo(dumps(out))
        return
    tail = f",身份证号尾号 {out['id_tail']}" if out["id_tail"] else ""
    click.echo(f"{username} 由人员 {out['person_id']}({out['name']}{tail})持有 / account linked to person {out['person_id']}")


@main.group()
def roles() -> None:
    """The role registry."""


@roles.command("list")
@db_option
@json_option
def roles_list(as_json: bool) -> None:
    """List role keys with Chinese names."""
    data = [{"key": r.key, "name": r.zh, "name_en": r.en, "level": r.level} for r in catalogue.roles().values()]
    if as_json:
        click.echo(dumps(data))
        return
    for r in data:
        click.echo(f"{r['key']:<26} {r['name']}")



@main.group()
def params() -> None:
    """Local parameters (thresholds, notice days, quorum ratios): district → township → village."""


@params.command("set")
@db_option
@click.argument("key")
@click.argument("value")
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@handle_errors
def params_set(key: str, value: str, org_code: str) -> None:
    """Set a parameter at an organization (applies to it and everything below)."""
    with facade().db.write() as s:
        procedures.set_param(s, directory.get_org(s, org_code), key, value, actor="cli")
    click.echo(f"{org_code}: {key} = {value}")


@params.command("show")
@db_option
@json_option
@click.argument("procedure_id")
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@handle_errors
def params_show(as_json: bool, procedure_id: str, org_code: str) -> None:
    """Effective parameters of a procedure at an organization, with where each value comes from."""
    with facade().db.read() as s:
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
