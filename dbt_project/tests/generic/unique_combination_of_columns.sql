{#- a composite key: no two rows share the listed columns, and none of them is null.
    restated_months_only: on a run with the `periods` var, check only the restated months (the earlier ones
    were checked when they were built): keeps row-level checks of the big monthly views proportional to the
    refresh. file_month_column (a model reading raw rows): also bound the raw zone's month directories read
    (raw_file_month_floor; carried_forward for rows whose period is a carried-forward month).
    written_from_column (a table kept in place whose rows carry the month they were first written, e.g.
    int_identity_variants.first_period): on a run with `periods`, check only the combinations of the rows this run
    wrote (that column from restate_from() on), against every row of the table: a duplicate needs at least one row
    written now, as the stored rows were checked when they were written. The combinations of the new rows are found
    by the zone maps of the table's last row groups; every row is then only probed against them, instead of
    grouping every row of the table (national: 12.4 M identity variants). -#}
{% test unique_combination_of_columns(model, combination_of_columns, restated_months_only=false, period_column='period',
                                     file_month_column=none, carried_forward=false, written_from_column=none) %}
{%- set written_from = restate_from() if written_from_column and not flags.FULL_REFRESH else none %}
{%- if written_from is none %}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
where {{ restated_months_only_where(period_column, file_month_column, carried_forward) if restated_months_only else '1 = 1' }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
    or max(case when {% for c in combination_of_columns %}{{ c }} is null{{ ' or ' if not loop.last }}{% endfor %} then 1 else 0 end) = 1
{%- else %}
{%- set keys = [] %}
{%- for c in combination_of_columns %}{% do keys.append('k' ~ loop.index) %}{% endfor %}
with written as (
    select distinct {% for c in combination_of_columns %}{{ c }} as k{{ loop.index }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ model }}
    where {{ written_from_column }} >= cast('{{ written_from }}' as date)
)

select {{ keys | join(', ') }}, count(*) as n
from (
    select {% for c in combination_of_columns %}{{ c }} as k{{ loop.index }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ model }}
) as t
semi join written as w
  on {% for k in keys %}w.{{ k }} = t.{{ k }}{{ ' and ' if not loop.last }}{% endfor %}
group by {{ keys | join(', ') }}
having count(*) > 1

union all

-- a written row with a null in the combination (it joins nothing above)
select {{ keys | join(', ') }}, 1 as n
from written
where {% for k in keys %}{{ k }} is null{{ ' or ' if not loop.last }}{% endfor %}
{%- endif %}
{% endtest %}
