"""The IAM actions CloudFormation's handlers call for each resource type the template uses.

Source: each type's resource provider schema, ``handlers.{create,read,update,delete}.permissions``
(the schema `aws cloudformation describe-type --type RESOURCE --type-name <type>` returns), as
bundled by cfn-lint in ``cfnlint/data/schemas/resources``. ``infra/handler_permissions.json`` is
the checked-in copy; ``python -m tests.infra.handler_permissions`` rewrites it from the cfn-lint
the venv pins, and a test fails when the two differ (a new cfn-lint, a new handler permission).

CloudFormation creates, updates, reads and deletes the stack's resources with the deployer's
own rights (no service role), so the deployer's policy must allow each of these, on the
resource's own ARN, or a create fails halfway and rolls back (a rollback runs the delete
handlers: a missing list action there strands the stack in ROLLBACK_FAILED).
"""

from __future__ import annotations

import json
import re
from importlib import metadata, resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "infra" / "handler_permissions.json"
HANDLERS = ("create", "read", "update", "delete")


def template_types(template_path: Path = ROOT / "infra" / "template.yaml") -> list[str]:
    text = template_path.read_text(encoding="utf-8")
    return sorted(set(re.findall(r"^\s+Type: (AWS::\S+)", text, flags=re.M)))


def from_schemas(types: list[str]) -> dict[str, Any]:
    """The table, read from the schemas cfn-lint bundles."""
    schemas = resources.files("cfnlint") / "data" / "schemas"
    index = json.loads((schemas / "providers" / "us-east-1.json").read_text(encoding="utf-8"))
    table: dict[str, dict[str, list[str]]] = {}
    for name in types:
        schema = json.loads(
            (schemas / "resources" / f"{index[name]}.json").read_text(encoding="utf-8")
        )
        handlers = schema.get("handlers", {})
        table[name] = {h: sorted(handlers[h]["permissions"]) for h in HANDLERS if h in handlers}
    return {
        "source": (
            "CloudFormation resource provider schemas, handlers.<handler>.permissions "
            f"(us-east-1), as bundled by cfn-lint {metadata.version('cfn-lint')}; regenerate "
            "with python -m tests.infra.handler_permissions"
        ),
        "types": table,
    }


def checked_in() -> dict[str, Any]:
    return json.loads(TABLE.read_text(encoding="utf-8"))


if __name__ == "__main__":
    TABLE.write_text(json.dumps(from_schemas(template_types()), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {TABLE.relative_to(ROOT)}")
