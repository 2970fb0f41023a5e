"""Public shapes shared by several kinds of fact: citations and named references."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.countries import CountryPublic


class Citation(BaseModel):
    """Where a fact comes from: the source's id and the sentence of it that says the fact."""

    source: str = Field(examples=["azernews-2022-08-24-tokayev-baku"])
    quote: str = Field(
        examples=[
            "The trade turnover between Azerbaijan and Kazakhstan amounted to "
            "$332.2 million in 2021."
        ]
    )


class Ref(BaseModel):
    """Another entity, by id and name."""

    id: str
    name: str


class Fact(BaseModel):
    id: str
    sources: list[Citation] = Field(min_length=1, description="At least one citation.")


__all__ = ["Citation", "CountryPublic", "Fact", "Ref"]
