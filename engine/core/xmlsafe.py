"""Safe XML parsing for BPMN documents that come from people and other tools.

No DTDs, no entity expansion, no network, a size limit: a BPMN file never needs a DOCTYPE, so
any document that declares one is refused outright (this stops external entities and
entity-expansion bombs before the parser sees them).
"""

from __future__ import annotations

import re

from lxml import etree

from .errors import XiaoweiError

MAX_BYTES = 5 * 1024 * 1024


class UnsafeXml(XiaoweiError, ValueError):
    """XML refused before or while parsing; the message says why in Chinese and English. An engine
    error (422): wherever it is not caught on purpose, the page or the command says the message."""

    status = 422
    code = "unsafe_xml"


def safe_parser() -> etree.XMLParser:
    """An XML parser that resolves no entities, loads no DTD and uses no network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=True,
    )


# libxml2's messages (the start of each) in Chinese: what is wrong, said the way a person fixes it.
_CAUSES_ZH = (
    ("Opening and ending tag mismatch", "开始标签与结束标签不匹配"),
    ("Premature end of data", "文件不完整(在标签结束前中断),可能只保存或复制了一部分"),
    ("EndTag: '</' not found", "文件不完整(缺少结束标签)"),
    ("Extra content at the end of the document", "文档末尾还有多余的内容(根元素之后不能再有元素)"),
    ("Start tag expected", "找不到开始标签:这不是 XML 文件"),
    ("Document is empty", "文件是空的"),
    ("Input is not proper UTF-8", "文字编码不是 UTF-8(请用 UTF-8 另存文件)"),
    ("Unsupported encoding", "不支持的文字编码(请用 UTF-8 另存文件)"),
    ("Namespace prefix", "使用了未声明的命名空间前缀"),
    ("xmlParseEntityRef: no name", "“&”没有写成 &amp;"),
    ("EntityRef: expecting ';'", "“&”没有写成 &amp;"),
    ("Entity '", "使用了未定义的实体"),
    ("Unescaped '<' not allowed in attributes values", "属性值中的“<”没有写成 &lt;"),
    ("AttValue: \" or ' expected", "属性值缺少引号"),
    ("attributes construct error", "属性写法有误(缺少引号或等号)"),
    ("Attribute ", "同一元素上有重复的属性"),
    ("Couldn't find end of Start Tag", "开始标签没有正确结束(缺少“>”)"),
    ("StartTag: invalid element name", "元素名称无效"),
    ("Specification mandates value for attribute", "属性缺少值(须写成 名称=\"值\")"),
    ("Comment not terminated", "注释没有结束(缺少“-->”)"),
    ("CData section not finished", "CDATA 段没有结束(缺少“]]>”)"),
    ("XML declaration allowed only at the start", "XML 声明(<?xml …?>)只能写在文件最开头"),
    ("Char 0x", "文件中有 XML 不允许的控制字符"),
    ("PCDATA invalid Char value", "文件中有 XML 不允许的控制字符"),
    ("invalid character in attribute value", "属性值中有 XML 不允许的字符"),
    ("Document labelled UTF-16 but has UTF-8 content", "文件声明为 UTF-16,实际是 UTF-8"),
    ("String not closed", "字符串没有结束(缺少引号)"),
    ("Blank needed here", "缺少空格"),
    ("expected '>'", "缺少“>”"),
)


def malformed_message(exc: etree.XMLSyntaxError) -> str:
    """“XML 格式错误(第 N 行第 M 列):原因 / malformed XML (line N, column M): libxml2's message”."""
    raw = (getattr(exc, "msg", None) or str(exc)).strip()
    raw = re.sub(r",? line \d+, column \d+\s*$", "", raw).strip()
    line, column = getattr(exc, "lineno", None), getattr(exc, "offset", None)
    cause = next((zh for needle, zh in _CAUSES_ZH if raw.startswith(needle) or needle in raw), "无法读取")
    if cause == "开始标签与结束标签不匹配":
        found = re.search(r"mismatch: (\S+) line (\d+) and (\S+)", raw)
        if found:
            cause += f"(第 {found.group(2)} 行的 <{found.group(1)}> 在此处遇到 </{found.group(3)}>)"
    where_zh = f"(第 {line} 行第 {column} 列)" if line and column else (f"(第 {line} 行)" if line else "")
    where_en = f" (line {line}, column {column})" if line and column else (f" (line {line})" if line else "")
    return f"XML 格式错误{where_zh}:{cause} / malformed XML{where_en}: {raw}"


def parse_xml(data: bytes | str, *, max_bytes: int = MAX_BYTES) -> etree._Element:
    """Parse ``data`` safely and return the root element; raise :class:`UnsafeXml` on refusal."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise UnsafeXml(f"文件过大(超过 {max_bytes // 1024} KB) / file larger than {max_bytes // 1024} KB")
    head = data[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in data.upper():
        raise UnsafeXml("XML 不得包含 DOCTYPE 或实体声明 / DOCTYPE and entity declarations are not allowed")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(malformed_message(exc)) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXml("XML 不得包含 DOCTYPE 或实体声明 / DOCTYPE and entity declarations are not allowed")
    return root
