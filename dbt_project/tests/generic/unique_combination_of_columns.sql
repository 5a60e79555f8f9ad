{#- a composite key: no two rows share the listed columns, and none of them is null.
    restated_months_only: on a run with the `periods` var, check only the restated months (the earlier ones
    were checked when they were built): keeps row-level checks of the big monthly views proportional to the
    refresh. -#}
{% test unique_combination_of_columns(model, combination_of_columns, restated_months_only=false, period_column='period') %}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
where {{ restated_months_only_where(period_column) if restated_months_only else '1 = 1' }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
    or max(case when {% for c in combination_of_columns %}{{ c }} is null{{ ' or ' if not loop.last }}{% endfor %} then 1 else 0 end) = 1
{% endtest %}
