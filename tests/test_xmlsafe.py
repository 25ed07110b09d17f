"""Hostile and malformed XML is refused with a clear message, before anything is stored."""

import pytest

from engine.core.lint import lint_bytes
from engine.core.xmlsafe import UnsafeXml, parse_xml

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&xxe;</bpmn:definitions>"""

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<root>&lol3;</root>"""

NETWORK = b"""<?xml version="1.0"?>
<!DOCTYPE d SYSTEM "http://127.0.0.1:1/evil.dtd"><root/>"""


@pytest.mark.parametrize("payload", [XXE, BOMB, NETWORK])
def test_doctype_and_entities_are_refused(payload):
    with pytest.raises(UnsafeXml, match="DOCTYPE"):
        parse_xml(payload)
    result = lint_bytes(payload, "evil.bpmn")
    assert not result.ok and result.errors[0].code == "xml"


def test_malformed_and_oversized():
    with pytest.raises(UnsafeXml, match="malformed"):
        parse_xml(b"<bpmn:definitions><unclosed>")
    with pytest.raises(UnsafeXml, match="larger"):
        parse_xml(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)


def test_not_bpmn_is_reported_not_raised():
    result = lint_bytes(b"<root/>", "x.bpmn")
    assert not result.ok
    assert result.errors[0].code in ("xsd", "process")
