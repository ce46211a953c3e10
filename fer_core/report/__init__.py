"""Results report: evaluate stored logits (teachers, ensemble, students), compare student families across seeds and
render the Markdown + PNG report. Pure library: the task layer gathers the runs and logs the output."""
