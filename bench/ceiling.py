"""The ceiling: a bare Starlette app answering constant JSON, run like Dyad is run.

``/`` answers a country-sized object; ``/sized`` a constant JSON document of
``CEILING_BYTES`` bytes (the run sets it to the size of the dossier), since sending a large
answer costs the server more than routing one: a large answer's own ceiling.
"""

import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BODY = {"iso2": "KZ", "iso3": "KAZ", "numeric": "398", "name": "Kazakhstan"}
PADDING = max(0, int(os.environ.get("CEILING_BYTES", "0")) - len(b'{"padding":""}'))
SIZED = b'{"padding":"' + b"x" * PADDING + b'"}'


async def constant(request: object) -> JSONResponse:
    return JSONResponse(BODY)


async def sized(request: object) -> Response:
    return Response(SIZED, media_type="application/json")


app = Starlette(routes=[Route("/", constant), Route("/sized", sized)])
