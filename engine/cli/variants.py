"""``xiaowei procedures variant PROCEDURE_ID --org TOWNSHIP_CODE --as USER [--json]`` (contract in
docs/cli.md): create or open a township's draft variant of a district procedure
(:func:`engine.services.variants.open_variant`); refused with one line (exit 1) for users who are not
that township's or the district's staff."""

from __future__ import annotations

import click

from engine.services import variants

from .base import db_option, dumps, facade, handle_errors, json_option
from .procedures import procedures_group


@procedures_group.command("variant")
@db_option
@json_option
@click.argument("procedure_id")
@click.option("--org", "org_code", required=True, metavar="TOWNSHIP_CODE", help="The township the variant is for.")
@click.option("--as", "username", required=True, metavar="USERNAME",
              help="Act as this user (staff of that township, or district staff).")
@handle_errors
def procedures_variant(as_json: bool, procedure_id: str, org_code: str, username: str) -> None:
    """Create (or open) a township's draft variant of a district procedure."""
    with facade().db.write() as s:
        result = variants.open_variant(s, procedure_id, org_code, username=username, actor="cli")
    if as_json:
        click.echo(dumps(result))
        return
    what = "已创建" if result["created"] else "已打开"
    draft = (f"草稿第{result['revision']}稿(新建)" if result["draft_started"] else f"草稿第{result['revision']}稿")
    published = f",已发布本镇第{result['published_version']}版" if result["published_version"] else ""
    click.echo(f"{what}{result['org_name']}的 {procedure_id} 变体:{draft},基于区级第{result['district_version']}版"
               f"{published};编辑:{result['key']} / variant {result['key']} {'created' if result['created'] else 'opened'}")
