"""The base of every message: frozen, strict about unknown fields, UTC-only time."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict


def _to_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware instant, normalised to UTC. Naive datetimes are refused."""


class Message(BaseModel):
    """Immutable and validated at construction; `.to_json_dict()` for the journal."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


R = TypeVar("R")


class Request(Message, Generic[R]):
    """A request to GatewayLink whose reply value is an `R`: `LinkClient.call(request)` is
    typed by the request, so no caller reads an untyped `Reply.value`."""
