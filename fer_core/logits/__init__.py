"""Logits store (contract 3.2): per-sample model outputs keyed by ``sample_id``, joined by id only."""

from fer_core.logits.store import LogitsTable, align_logits, read_logits, stack_aligned, write_logits

__all__ = ["LogitsTable", "align_logits", "read_logits", "stack_aligned", "write_logits"]
