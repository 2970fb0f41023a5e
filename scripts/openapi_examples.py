"""Regenerate app/openapi_examples.json: the API's answers over data/seed.json.

.venv/bin/python scripts/openapi_examples.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from app import dataset, migrate
from app.db import create_db_engine
from app.main import create_app
from app.openapi import EXAMPLES_FILE, generate_examples
from app.settings import DEFAULT_SEED, Settings


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'examples.db'}"
        migrate.upgrade(url)
        engine = create_db_engine(url)
        dataset.load(engine, DEFAULT_SEED)
        engine.dispose()
        with TestClient(create_app(Settings(database_url=url))) as client:
            examples = generate_examples(lambda path: client.get(path).json())
    EXAMPLES_FILE.write_bytes(orjson.dumps(examples, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"wrote {EXAMPLES_FILE.name}: {len(examples)} examples")


if __name__ == "__main__":
    main()
