"""The API's OpenAPI document, as committed in docs/openapi.json.

.venv/bin/python -m custodiet.api.openapi > docs/openapi.json
"""

from __future__ import annotations

import json


def openapi_text() -> str:
    from custodiet.api.app import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(openapi_text(), end="")
