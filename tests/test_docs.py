"""Documentation is tested: every command, extension element and role is documented."""

from pathlib import Path

import click

from engine.core import catalogue
from engine.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs"


def commands(group: click.Group, prefix: str = "xiaowei") -> list[str]:
    found = []
    for name, command in group.commands.items():
        full = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(commands(command, full))
        else:
            found.append(full)
    return found


def test_every_command_is_documented():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = [c for c in commands(main) if f"`{c}" not in text]
    assert not missing, f"undocumented commands: {missing}"


def test_every_extension_element_read_by_the_engine_is_documented():
    import re

    text = (DOCS / "bpmn-extensions.md").read_text(encoding="utf-8")
    source = (Path(__file__).resolve().parent.parent / "engine" / "core" / "definitions.py").read_text(encoding="utf-8")
    used = set(re.findall(r'_ext1?\([^,]+, "(\w+)"\)', source)) | {"option"}
    missing = [name for name in used if f"xw:{name}" not in text]
    assert not missing, f"undocumented extension elements: {missing}"


def test_every_role_has_a_chinese_name():
    for role in catalogue.roles().values():
        assert role.zh and role.en and role.level in ("village", "township", "district")


def test_every_setting_is_documented_and_read_in_one_place():
    """engine/settings.py reads the environment; no other module of the project does, and
    docs/architecture.md documents every variable with its default."""
    import re

    from engine import settings

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    missing = [s.env for s in settings.SETTINGS if f"`{s.env}`" not in text]
    assert not missing, f"undocumented settings: {missing}"
    root = DOCS.parent
    readers = []
    for folder in ("engine", "webui", "storage"):
        for path in (root / folder).rglob("*.py"):
            if path == root / "engine" / "settings.py":
                continue
            source = path.read_text(encoding="utf-8")
            if re.search(r"os\.environ|os\.getenv|getenv\(", source):
                readers.append(str(path.relative_to(root)))
    assert not readers, f"modules reading the environment outside engine/settings.py: {readers}"
    assert settings.read({"XIAOWEI_TRUSTED_PROXIES": "2"}).trusted_proxies == 2
    assert settings.read({"XIAOWEI_TRUSTED_PROXIES": "two"}).trusted_proxies == 0  # a typo: the default
    assert settings.read({"XIAOWEI_COOKIE_SECURE": "0"}).cookie_secure is False
    assert settings.read({}).database_url == "sqlite:///xiaowei.db"


def test_architecture_map_matches_the_packages():
    """docs/architecture.md tours every package of engine/ and webui/, and every module path it names
    (before the table of what moved) exists."""
    import re

    root = DOCS.parent
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    tour = text.split("## Where things moved")[0]
    packages = sorted(str(p.parent.relative_to(root)) for top in ("engine", "webui")
                      for p in (root / top).rglob("__init__.py") if "static" not in p.parts)
    missing = [p for p in packages if p.count("/") == 1 and f"`{p}" not in tour]
    assert not missing, f"packages without a paragraph in docs/architecture.md: {missing}"
    named = set(re.findall(r"`((?:engine|webui|storage|examples)/[\w/]+(?:\.py)?)`", tour))
    gone = sorted(n for n in named if not (root / n).exists())
    assert not gone, f"docs/architecture.md names paths that do not exist: {gone}"
    readme = (root / "README.md").read_text(encoding="utf-8")
    for folder in ("engine/core/", "engine/bpmn/", "engine/render/", "engine/services/", "engine/cli/", "examples/"):
        assert f"`{folder}`" in readme, f"the README's layout table misses {folder}"


def test_every_setting_is_documented_in_the_deployment_guide():
    from engine import settings

    text = (DOCS / "deploy.md").read_text(encoding="utf-8")
    missing = [s.env for s in settings.SETTINGS if f"`{s.env}`" not in text]
    assert not missing, f"settings missing from docs/deploy.md: {missing}"
    assert "xiaowei worker" in text and "gunicorn -c deploy/gunicorn.conf.py webui.wsgi:app" in text
