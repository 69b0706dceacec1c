"""Reading runs: comparisons with uncertainty, the claims of the notes, tuning per arm, the report and its plots."""
