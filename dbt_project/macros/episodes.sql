{#- int_membership_episodes kept in place (see the model's header). A build that restates the months from W on
    (restate_start_sql; L = W - 1 month) recomputes the episodes of the people it can affect only, and writes
    only their rows, instead of rewriting one episode per person of all history:

    affected = people with an event in a month from W on (int_member_events, restated for the window)
             ∪ people counted at month end from L on in two CĐCS, or from W on in a CĐCS they were not in the
               month before (int_member_unit_months: a first sight, an entry without an event)
             ∪ people whose stored episodes start from W on or closed with a last month from L on (a boundary the
               restated months may have moved or removed)
             ∪ both keys of every key change (int_member_key_changes).

    Anyone else counts in the same CĐCS in every month from L to the latest, or in none of them, in the stored
    and the restated data alike (an exit from a CĐCS is always an event of the month after; an entry without an
    event is a unit month not there the month before): their stored episodes are unchanged, except that an open
    one now runs to the latest month (episodes_extend_open updates its last_period and months in place).
    episodes_affected_keys (pre-hook) stores the affected keys in a temporary table; the model reads it; the
    incremental strategy `replace_people` deletes their stored rows and inserts the model's. -#}

{#- The window of an incremental run as {'w': 'YYYY-MM-DD', 'l': 'YYYY-MM-DD', 'kl': 'YYYY-MM-DD' or none} (W = the
    months restated for everyone, restate_bounds.w, and L = W - 1, evaluated now; kl = the month before
    restate_bounds.k when people merged or split before W), or none (a build from nothing, a full refresh, or a run
    that restates every month: the whole table is computed). -#}
{% macro episodes_window() -%}
  {%- set b = restate_bounds() -%}
  {%- if b is none -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set w_sql = "cast('" ~ b.w ~ "' as date)" -%}
  {%- set k_sql = "cast('" ~ b.k ~ "' as date)" if b.k is not none else 'cast(null as date)' -%}
  {%- set row = run_query('select cast(cast(' ~ dbt.dateadd('month', -1, w_sql) ~ ' as date) as varchar), '
        ~ 'cast(cast(' ~ dbt.dateadd('month', -1, k_sql) ~ ' as date) as varchar)').rows[0] -%}
  {{ return({'w': b.w, 'l': row[0], 'kl': row[1]}) }}
{%- endmacro %}

{%- macro episodes_affected_relation() -%}doanvien_episodes_affected{%- endmacro %}

{#- pre_hook: the affected people of this run (see above), in a temporary table of this connection. -#}
{% macro episodes_affected_keys() -%}
  {%- set win = episodes_window() -%}
  {%- if win is none -%}
    select 1
  {%- else -%}
    create or replace temporary table {{ episodes_affected_relation() }} as
    select member_key, min(lookback_from) as lookback_from
    from (
    select member_key, cast('{{ win.l }}' as date) as lookback_from
    from (
    select member_key from {{ ref('int_member_events') }}
    where period >= cast('{{ win.w }}' as date)
    union
    select member_key from {{ ref('int_member_unit_months') }}
    where period >= cast('{{ win.l }}' as date)
      and (n_units > 1 or (period >= cast('{{ win.w }}' as date) and not was_here_last_month))
    union
    select member_key from {{ this }}
    where first_period >= cast('{{ win.w }}' as date)
       or (valid_to is not null and last_period >= cast('{{ win.l }}' as date))
    union
    select member_key from {{ ref('int_member_key_changes') }}
    union
    select previous_member_key from {{ ref('int_member_key_changes') }} where previous_member_key is not null
    ) as affected_from_l
    {%- if win.kl is not none %}
    union all
    -- people restated before the window (int_restated_people, restate_bounds.k): recomputed from the month before k
    select member_key, cast('{{ win.kl }}' as date) as lookback_from from {{ ref('int_restated_people') }}
    {%- endif %}
    ) as affected
    group by member_key
  {%- endif -%}
{%- endmacro %}

{#- Incremental strategy `replace_people` (int_membership_episodes'): the stored rows of the affected people
    (episodes_affected_keys) are replaced by the model's rows, which are all the episodes of those people; a run
    without a window replaces every row. Another per-person table kept in place would need its own affected keys
    and window here (a config key naming them), not a copy of this macro. -#}
{% macro get_incremental_replace_people_sql(arg_dict) -%}
  {%- set target, source = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
  {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  {%- if episodes_window() is none %}
  delete from {{ target }};
  {%- else %}
  delete from {{ target }} where member_key in (select member_key from {{ episodes_affected_relation() }});
  drop table {{ episodes_affected_relation() }};
  {%- endif %}
  insert into {{ target }} ({{ cols }}) select {{ cols }} from {{ source }};
{%- endmacro %}

{#- post_hook: an open episode (valid_to null) runs to the latest month: its last_period and months, updated in
    place where they moved (every open episode of a person the run did not recompute, after a new month). -#}
{% macro episodes_extend_open() -%}
  {%- if not is_incremental() -%}
    select 1
  {%- else -%}
    update {{ this }} as t
    set last_period = m.period,
        months = cast({{ dbt.datediff('t.first_period', 'm.period', 'month') }} + 1 as bigint)
    from (select max(period) as period from {{ ref('int_member_months') }}) as m
    where t.valid_to is null and t.last_period is distinct from m.period
  {%- endif -%}
{%- endmacro %}
