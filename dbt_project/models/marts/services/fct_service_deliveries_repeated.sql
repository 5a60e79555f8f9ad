-- grain: one row of fct_service_deliveries (delivery_id) whose member_key occurs in more than one of its rows
-- (any month, any programme); the same columns and values as the fact. Health-related rows (no member_key) are
-- never here.
-- Why: a member with a single row in the fact is distinct from every other row, so the beneficiaries of any slice
-- (scope, months, filters, programme) = rows of the fact with a member_key in the slice − rows of this table in
-- the slice + distinct member_key of this table in the slice: exact, with the distinct count over a few % of the
-- rows. A table rebuilt from the whole fact on every run, so it stays exact when an incremental run restates only
-- some months.
{{ repeated_member_rows(ref('fct_service_deliveries')) }}
