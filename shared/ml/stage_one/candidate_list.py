"""Stage one's output in-process: `CandidateListPayload`, best first, as columns.

Over HTTP the same list travels as `shared.schemas.serving.CandidateListPayload` (same fields).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

COLD_START = "cold_start"


class Candidate(NamedTuple):
    """One of stage one's candidates (a row of `CandidateList`)."""

    product: str
    score: float
    similarity: float  # embedding k-NN score, a ranker feature
    reason: str


@dataclass(slots=True)
class CandidateList:
    """Stage one's candidates, best first, as columns: what the candidate service sends
    (`CandidateListPayload`; orjson writes this dataclass as that JSON object). Plain lists, not
    objects per candidate, because the ranker reads the columns directly and building and
    serializing one object per candidate was a large share of the pipeline's time."""

    products: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    similarity: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Candidate]:
        return map(Candidate, self.products, self.scores, self.similarity, self.reasons)

    def __getitem__(self, i: int) -> Candidate:
        return Candidate(self.products[i], self.scores[i], self.similarity[i], self.reasons[i])

    def head(self, n: int) -> CandidateList:
        return CandidateList(
            self.products[:n], self.scores[:n], self.similarity[:n], self.reasons[:n]
        )

    def __add__(self, other: CandidateList) -> CandidateList:
        return CandidateList(
            self.products + other.products,
            self.scores + other.scores,
            self.similarity + other.similarity,
            self.reasons + other.reasons,
        )
