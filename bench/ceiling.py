"""The ceiling: a bare Starlette app answering constant JSON, run like Dyad is run."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = {"iso2": "KZ", "iso3": "KAZ", "numeric": "398", "name": "Kazakhstan"}


async def constant(request: object) -> JSONResponse:
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/", constant)])
