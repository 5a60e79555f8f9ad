{#- Schemas are exact names (CONTRACTS §6): staging, intermediate, marts, restricted, reference.
    dbt's default would prefix the target schema (main_marts); readers rely on the bare names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
