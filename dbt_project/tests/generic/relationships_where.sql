{#- relationships to a subset of the parent (e.g. dim_province where province_set = 'new'). -#}
{% test relationships_where(model, column_name, to, field, to_condition='1 = 1') %}
with child as (
    select {{ column_name }} as value from {{ model }} where {{ column_name }} is not null
),
parent as (
    select {{ field }} as value from {{ to }} where {{ to_condition }}
)
select child.value
from child
left join parent on parent.value = child.value
where parent.value is null
{% endtest %}
