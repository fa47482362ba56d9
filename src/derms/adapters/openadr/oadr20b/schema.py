"""Validation against the OpenADR 2.0b XML schema (``oadr_20b.xsd``).

The Alliance's schema files are not redistributed with derms. A deployment points
``DERMS_OADR20B_XSD`` (or :attr:`VtnSettings.schema_path`) at its copy; the test suite uses the
copy bundled inside the ``openleadr`` peer environment created by ``scripts/peers/openleadr.sh``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from lxml import etree

from derms.adapters.openadr.oadr20b.xmlutil import MalformedMessage

ENV_VAR = "DERMS_OADR20B_XSD"


def find_schema(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The configured ``oadr_20b.xsd``: ``explicit``, then ``$DERMS_OADR20B_XSD``, then the
    openleadr peer environment under ``.peers/openleadr`` of the working tree; ``None`` if none."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    root = Path(__file__).resolve().parents[5]
    candidates.extend(
        sorted(root.glob(".peers/openleadr/lib/python3.*/site-packages/openleadr/schema/oadr_20b.xsd"))
    )
    for path in candidates:
        if path.is_file():
            return path
    return None


class SchemaValidator:
    """Validates whole ``oadrPayload`` trees; :meth:`check` raises :class:`MalformedMessage`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._schema = _load(str(path))

    def errors(self, tree: etree._Element) -> list[str]:
        if self._schema.validate(tree):
            return []
        return [f"line {e.line}: {e.message}" for e in self._schema.error_log]

    def check(self, tree: etree._Element) -> None:
        problems = self.errors(tree)
        if problems:
            raise MalformedMessage("schema validation failed: " + "; ".join(problems[:5]))


@lru_cache(maxsize=4)
def _load(path: str) -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(path, parser))
