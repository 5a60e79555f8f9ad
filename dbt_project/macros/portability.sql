{#-
  The few DuckDB-specific expressions of the project, each behind one macro (see README "Portability").
  Everything else uses dbt's cross-database macros (dbt.date_trunc, dbt.dateadd, dbt.datediff,
  dbt.concat, dbt.hash, dbt.safe_cast, dbt.date_spine, dbt.type_*).
-#}

{#- keyed_hash: pseudonymous key of a person. sha256(secret || '|' || value), first 32 hex digits, held as a
    UUID (128 bits in 16 bytes): inside the warehouse the key is joined, sorted and grouped on every per-person
    model, and a fixed-width 128-bit value costs about half what a 32-character string does there (national:
    window, join, group by and write each 1.6-2.1x faster; bench/README.md). What analysts and the app read is the
    same 32 hex digits as text (`member_key_text`), so the published key is unchanged.
    The secret is a DuckDB session variable set by the dbt-duckdb plugin (dbt_project/plugins); it is
    never rendered into SQL. Fails loudly when the secret is missing. Only call it from models that are
    materialised as tables: a view would re-evaluate it in a reader's session, without the secret.
    Another engine: a 16-byte binary or the 32-digit text (`member_key_type`). -#}
{% macro keyed_hash(expr) -%}
  cast(left(sha256(coalesce(cast(getvariable('doanvien_member_key_secret') as varchar),
                            error('member key secret missing: set DOANVIEN_MEMBER_KEY_SECRET'))
                   || '|' || {{ expr }}), 32) as {{ member_key_type() }})
{%- endmacro %}

{#- member_key_type: the type of the person key inside the warehouse (intermediate models). -#}
{% macro member_key_type() -%}uuid{%- endmacro %}

{#- member_key_text: the person key as analysts and the app read it (marts, restricted): its 32 lower-case hex
    digits, as keyed_hash's text was before the key was held as a UUID. -#}
{% macro member_key_text(expr) -%}
  replace(cast({{ expr }} as {{ dbt.type_string() }}), '-', '')
{%- endmacro %}

{#- name_key: exact-match key of a person's name: NFC, lower case, single spaces. -#}
{% macro name_key(expr) -%}
  lower(trim(regexp_replace(nfc_normalize({{ expr }}), '\s+', ' ', 'g')))
{%- endmacro %}

{#- name_search: accent-insensitive search text: lower case, no diacritics, đ → d. -#}
{% macro name_search(expr) -%}
  replace(strip_accents({{ name_key(expr) }}), 'đ', 'd')
{%- endmacro %}

{#- month_series: one row per month start between two dates (inclusive), as column `period`. -#}
{% macro month_series(start_expr, end_expr) -%}
  (select cast(generate_series as date) as period
   from generate_series(cast({{ start_expr }} as timestamp), cast({{ end_expr }} as timestamp), interval 1 month))
{%- endmacro %}

{#- list_has: does a list column contain a value (row flags). -#}
{% macro list_has(list_expr, value) -%}
  coalesce(list_contains({{ list_expr }}, {{ value }}), false)
{%- endmacro %}

{#- month_end: last day of the month of a date. -#}
{% macro month_end(expr) -%}
  cast(last_day({{ expr }}) as date)
{%- endmacro %}

{#- last_non_null: the last non-null value of expr up to the current row of a window (IGNORE NULLS
    syntax differs between engines). -#}
{% macro last_non_null(expr, partition_by, order_by) -%}
  last_value({{ expr }} ignore nulls) over (partition by {{ partition_by }} order by {{ order_by }}
                                            rows between unbounded preceding and current row)
{%- endmacro %}

{#- true when the condition holds on any row of the group (dbt's cross-database bool_or) -#}
{% macro any_row(condition) -%}
  {{ dbt.bool_or(condition) }}
{%- endmacro %}

{#- row_fingerprint: a 64-bit hash of several values (DuckDB's `hash`, nulls included), to tell whether a row
    changed between two tables in one build. Never stored: DuckDB's hash may change between its versions, and
    both sides are hashed by the same build. Another engine: farm_fingerprint / xxhash64 of the values. -#}
{% macro row_fingerprint(exprs) -%}
  hash({{ exprs | join(', ') }})
{%- endmacro %}

{#- nearest_non_null: the value of expr on the nearest earlier (direction='before') or later ('after') row of a
    window that has one, the current row excluded (IGNORE NULLS syntax differs between engines). -#}
{% macro nearest_non_null(expr, order_by, direction) -%}
  {%- if direction == 'before' -%}
  last_value({{ expr }} ignore nulls) over (order by {{ order_by }}
                                            rows between unbounded preceding and 1 preceding)
  {%- else -%}
  first_value({{ expr }} ignore nulls) over (order by {{ order_by }}
                                             rows between 1 following and unbounded following)
  {%- endif -%}
{%- endmacro %}
