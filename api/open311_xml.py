"""GeoReport v2 XML: the documents of the Open311 routes in the spec's XML form.

GeoReport v2 names XML its required format; each call's JSON list has an
XML twin: ``<services><service>…``, ``<service_requests><request>…``,
``<service_definition>…<attributes><attribute>…``, ``<discovery>…`` and
``<errors><error><code>…</code><description>…</description></error></errors>``.
Documents are built with :mod:`xml.etree.ElementTree` (text escaped by it);
characters XML 1.0 cannot carry are dropped, ``None`` is an empty element,
booleans are ``true``/``false`` and a list is repeated child elements
(``keywords`` are comma-separated text, as in the spec's examples).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi.responses import Response

__all__ = [
    "XML_MEDIA_TYPE",
    "XmlResponse",
    "discovery_xml",
    "errors_xml",
    "requests_xml",
    "service_definition_xml",
    "services_xml",
]

#: The media type of every XML answer.
XML_MEDIA_TYPE = "text/xml; charset=utf-8"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Child element names of list-valued members.
_ITEM_NAMES = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}


class XmlResponse(Response):
    """A ``text/xml`` answer."""

    media_type = XML_MEDIA_TYPE


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(parent: ET.Element, name: str, value: Any) -> None:
    child = ET.SubElement(parent, name)
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(child, str(key), item)
    elif isinstance(value, list | tuple):
        item_name = _ITEM_NAMES.get(name, "item")
        for item in value:
            _fill(child, item_name, item)
    else:
        child.text = _text(value)


def _document(root_name: str, item_name: str, items: Iterable[Mapping[str, Any]]) -> bytes:
    root = ET.Element(root_name)
    for item in items:
        element = ET.SubElement(root, item_name)
        for key, value in item.items():
            _fill(element, str(key), value)
    return _serialize(root)


def _serialize(root: ET.Element) -> bytes:
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def services_xml(services: Sequence[Mapping[str, Any]]) -> bytes:
    """``<services><service>…</service></services>``.

    Examples
    --------
    >>> doc = services_xml([{"service_code": "dispute", "metadata": False}]).decode()
    >>> doc[doc.index("<service>") :]
    '<service><service_code>dispute</service_code><metadata>false</metadata></service></services>'
    """
    return _document("services", "service", services)


def requests_xml(requests: Sequence[Mapping[str, Any]]) -> bytes:
    """``<service_requests><request>…</request></service_requests>`` (lists and POST answers).

    Examples
    --------
    >>> doc = requests_xml([{"service_request_id": "7", "address": None}]).decode()
    >>> doc[doc.index("<request>") :]
    '<request><service_request_id>7</service_request_id><address /></request></service_requests>'
    """
    return _document("service_requests", "request", requests)


def service_definition_xml(definition: Mapping[str, Any]) -> bytes:
    """``<service_definition><service_code>…</service_code><attributes>…</attributes>…``."""
    root = ET.Element("service_definition")
    for key, value in definition.items():
        _fill(root, str(key), value)
    return _serialize(root)


def discovery_xml(discovery: Mapping[str, Any]) -> bytes:
    """``<discovery><changeset>…<endpoints><endpoint>…<formats><format>…``."""
    root = ET.Element("discovery")
    for key, value in discovery.items():
        _fill(root, str(key), value)
    return _serialize(root)


def errors_xml(errors: Sequence[Mapping[str, Any]]) -> bytes:
    """``<errors><error><code>400</code><description>…</description></error></errors>``.

    Examples
    --------
    >>> errors_xml([{"code": 404, "description": "no such request"}]).decode()[39:]
    '<errors><error><code>404</code><description>no such request</description></error></errors>'
    """
    return _document("errors", "error", errors)
