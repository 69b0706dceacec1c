"""Every `trainer.precision` trainlab offers, and what follows from it: the one table the other modules ask."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    weight_bytes: int  # per stored weight, gradient and optimizer value
    activation_bytes: int  # per activation value: the dtype it computes in (mixed: the autocast dtype)
    cpu_fallback: str | None = None  # what Lightning runs it as on a CPU, when it cannot run it there
    min_eps: float | None = None  # the smallest optimizer eps that does not underflow to 0 (then NaN)

    @property
    def reduced(self) -> bool:
        """Computes in 16 bits: the usual suspect when a loss turns NaN."""
        return self.activation_bytes < 4


PRECISIONS = {p.name: p for p in (
    Precision("64-true", 8, 8),
    Precision("32-true", 4, 4),
    Precision("bf16-mixed", 4, 2),
    Precision("16-mixed", 4, 2, cpu_fallback="bf16-mixed"),  # fp16 autocast needs a GPU
    Precision("bf16-true", 2, 2),
    # fp16's smallest subnormal is ~6e-8: an Adam/RMSprop eps of 1e-8 rounds to 0 and divides by zero.
    Precision("16-true", 2, 2, min_eps=1e-4),
)}
