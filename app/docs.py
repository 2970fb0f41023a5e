"""Interactive API documentation served offline (to be completed)."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
