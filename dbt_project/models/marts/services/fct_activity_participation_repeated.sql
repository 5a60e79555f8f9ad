-- grain: one row of fct_activity_participation (participation_id) whose member_key occurs in more than one of its
-- rows (any month, any activity type); the same columns and values as the fact.
-- Why: a member with a single row in the fact is distinct from every other row, so the participants of any slice
-- (scope, months, filters, activity type) = rows of the fact in the slice − rows of this table in the slice
-- + distinct member_key of this table in the slice: exact, and the distinct count runs over a few % of the rows
-- (count(distinct) over every row was the services page's cost at national scale). A table rebuilt from the
-- whole fact on every run, so it stays exact when an incremental run restates only some months.
{{ repeated_member_rows(ref('fct_activity_participation')) }}
