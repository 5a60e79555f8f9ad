{{ config(materialized='table') }}
-- grain: one model of the analysts' schema (marts) restated month by month (incremental on period: the
-- monthly_restatement() config) × this build. restated_from: the first month this build deleted and wrote again in
-- that model (the same window start as its delete_restated_window pre-hook: restate_start_sql); every earlier month
-- kept its rows, except the rows of re-keyed people (rekey_stored_rows, listed in int_member_key_changes). Null when
-- this build wrote every month (a build from nothing, --full-refresh, or a run without `periods`).
-- pipelines.warehouse.serving.make_analyst_copy reads it to bring the previous analysts' file up to date (those
-- months and people only) instead of copying every table of all history again.
{%- set start = restate_from() %}
{#- the tables the window start reads, ref()'d whatever the run (dbt records dependencies at parse time) #}
{%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] %}
{%- set models = [] %}
{%- if execute %}
  {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.schema == 'marts' %}
    {%- if node.config.materialized == 'incremental' and node.config.unique_key == 'period' %}
      {%- do models.append(node) %}
    {%- endif %}
  {%- endfor %}
{%- endif %}
{%- set all_months = start is none or flags.FULL_REFRESH %}

with windows as (
    {%- for node in models | sort(attribute='alias') %}
    select '{{ node.schema }}' as schema_name, '{{ node.alias }}' as table_name
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as schema_name, cast(null as {{ dbt.type_string() }}) as table_name
    where 1 = 0
    {%- endfor %}
)

select
    cast(w.schema_name as {{ dbt.type_string() }}) as schema_name,
    cast(w.table_name as {{ dbt.type_string() }})  as table_name,
    {%- if all_months %}
    cast(null as date)                             as restated_from
    {%- else %}
    cast({{ restate_start_sql(start) }} as date)   as restated_from
    {%- endif %}
from windows as w
