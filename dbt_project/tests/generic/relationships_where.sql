{#- relationships to a subset of the parent (e.g. dim_province where province_set = 'new').
    restated_months_only: on a run with the `periods` var, check only the child rows of the restated months (as in
    unique_combination_of_columns: the earlier months were checked when they were built). -#}
{% test relationships_where(model, column_name, to, field, to_condition='1 = 1', restated_months_only=false,
                            period_column='period') %}
with child as (
    select {{ column_name }} as value from {{ model }}
    where {{ column_name }} is not null
      and {{ restated_months_only_where(period_column) if restated_months_only else '1 = 1' }}
),
parent as (
    select {{ field }} as value from {{ to }} where {{ to_condition }}
)
select child.value
from child
left join parent on parent.value = child.value
where parent.value is null
{% endtest %}
