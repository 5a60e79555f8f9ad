{#- Domain helpers (cross-database: only dbt macros and ANSI SQL). -#}

{#- age_band: age reached in the year of the period (period year − birth year; birth dates may be known
    to the year only) → band label used by every mart. -#}
{% macro age_band(birth_date, period) -%}
  {%- set age = "(extract(year from " ~ period ~ ") - extract(year from " ~ birth_date ~ "))" -%}
  case
    when {{ birth_date }} is null then 'unknown'
    when {{ age }} < 30 then 'under_30'
    when {{ age }} < 40 then '30_39'
    when {{ age }} < 50 then '40_49'
    when {{ age }} < 60 then '50_59'
    else '60_plus'
  end
{%- endmacro %}

{#- ethnic_group: 'kinh' (code 01), 'minority' (02..54), 'unknown'. Row-level ethnicity is sensitive
    (Decree 13/2023, Law 91/2025); marts carry only this grouping. -#}
{% macro ethnic_group(code) -%}
  case when {{ code }} is null then 'unknown' when {{ code }} = '01' then 'kinh' else 'minority' end
{%- endmacro %}

{% macro age_band_values() -%}
  {{ return(['under_30', '30_39', '40_49', '50_59', '60_plus', 'unknown']) }}
{%- endmacro %}

{#- the leave reasons, in leave_reasons.csv order; marts carry one column per reason -#}
{% macro leave_reason_codes() -%}
  {{ return(['retired', 'job_change', 'resigned', 'died', 'public_sector_exit', 'other']) }}
{%- endmacro %}

{#- filing deadline of a monthly file: the 10th of the following month (inclusive, whole day) -#}
{% macro submission_deadline(period) -%}
  cast({{ dbt.dateadd('day', 9, dbt.dateadd('month', 1, period)) }} as date)
{%- endmacro %}


{#- The rows of a fact (every column, same values) whose member_key occurs in more than one of its rows: the
    *_repeated marts. A member with a single row is distinct from every other row, so the distinct members of any
    slice = rows of the fact in the slice − rows of the repeated table in the slice + distinct member_key of the
    repeated table in the slice: exact, with the distinct count over a few % of the rows. -#}
{% macro repeated_member_rows(fact) -%}
select f.*
from {{ fact }} as f
where f.member_key in (
    select member_key
    from {{ fact }}
    where member_key is not null
    group by member_key
    having count(*) > 1
)
{%- endmacro %}
