{#- a composite key: no two rows share the listed columns, and none of them is null.
    restated_months_only: on a run with the `periods` var, check only the restated months (the earlier ones
    were checked when they were built): keeps row-level checks of the big monthly views proportional to the
    refresh. file_month_column (a model reading raw rows): also bound the raw zone's month directories read
    (raw_file_month_floor; carried_forward for rows whose period is a carried-forward month). -#}
{% test unique_combination_of_columns(model, combination_of_columns, restated_months_only=false, period_column='period',
                                     file_month_column=none, carried_forward=false) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
where {{ restated_months_only_where(period_column, file_month_column, carried_forward) if restated_months_only else '1 = 1' }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
    or max(case when {% for c in combination_of_columns %}{{ c }} is null{{ ' or ' if not loop.last }}{% endfor %} then 1 else 0 end) = 1
{% endtest %}
