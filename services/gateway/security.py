"""Who may change models, and what a training request may read.

- `AdminDep` guards mutating admin routes (training, activation) when `GATEWAY_ADMIN_API_KEY` is
  set: header `X-API-Key` missing -> 401, wrong -> 403 (constant-time comparison).
- `ConfinedTrainRequest` is a TrainRequest whose dataset paths stay inside the data root: a path
  outside it is refused with 422 here, before anything is queued.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyHeader

from services.gateway.deps import SettingsDep
from shared.paths import PathRefused, check_confined
from shared.schemas.training import TrainRequest
from shared.settings import get_common_settings

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Admin key (GATEWAY_ADMIN_API_KEY); required by mutating admin routes when set.",
)


def require_admin(
    settings: SettingsDep, given: Annotated[str | None, Depends(_api_key)] = None
) -> None:
    expected = settings.admin_api_key
    if expected is None:  # no key configured: admin routes are open (local development)
        return
    if not given:
        raise HTTPException(
            401, f"missing {API_KEY_HEADER} header", headers={"WWW-Authenticate": "ApiKey"}
        )
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(403, f"invalid {API_KEY_HEADER}")


def confined_train_request(req: TrainRequest) -> TrainRequest:
    """`req`, if every path it names is inside the data root; else 422 naming the field."""
    root = get_common_settings().data_dir
    paths: dict[tuple[str, ...], str | None] = {("body", "data_path"): req.data_path}
    if req.csv is not None:
        paths["body", "csv", "items_path"] = req.csv.items_path
    for loc, raw in paths.items():
        if raw is None:
            continue
        try:
            check_confined(raw, root)
        except PathRefused as exc:
            raise HTTPException(
                422, [{"loc": list(loc), "msg": str(exc), "type": "data_path_refused"}]
            ) from None
    return req


AdminDep = Annotated[None, Depends(require_admin)]
ConfinedTrainRequest = Annotated[TrainRequest, Depends(confined_train_request)]
