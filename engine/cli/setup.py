"""`xiaowei init` and `xiaowei demo`: the schema, the procedure library and the demo data."""

from __future__ import annotations

import click

from .base import facade, db_option, dumps, handle_errors, json_option, main


@main.command()
@db_option
@json_option
@handle_errors
def init(as_json: bool) -> None:
    """Create or upgrade the schema, load and publish processes/."""
    results = facade().init()
    if as_json:
        click.echo(dumps(results))
        return
    new = [r for r in results if r["new"]]
    click.echo(f"数据库已就绪;{len(results)} 个事项,新发布 {len(new)} 个 / schema ready; "
               f"{len(results)} procedures, {len(new)} newly published")
    for r in new:
        click.echo(f"  发布 {r['procedure_id']} v{r['version']}")


@main.command()
@db_option
@json_option
@handle_errors
def demo(as_json: bool) -> None:
    """init plus demo organizations, users for every role (passwords printed once) and cases."""
    from engine.services.demo import load_demo

    from engine.core import checkpoints

    app = facade()
    app.init()
    if checkpoints.load_key() is None:  # a demo signs its checkpoints too (a deployer makes the key on purpose)
        key = checkpoints.generate_key()
        if not as_json:
            click.echo(f"已生成演示用签名密钥 {key.path},公钥指纹 {key.key_id} / demo signing key written")
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
