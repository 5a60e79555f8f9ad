{#- int_member_keys kept in place (see the model's header). A CCCD record is its own person (identity_id = the
    CCCD) and its key is keyed_hash of it, so once written its row changes only in the two flags the last build
    set (is_new_record, previous_member_key), never in its key. Its first_period (the first month one of its
    variants was written) holds too unless every variant of the record was first written from W on: variants
    first written before W are never removed by restating W (int_identity_variants), and a variant a restated
    month adds is first written from W on, so it cannot move an earlier first month. A build restating from W
    therefore writes only:

      every CMND record (re-resolved in full: a link depends on the CCCD people of all history)
      ∪ the CCCD records whose variants were all first written from W on (a stored one with an earlier first
        month keeps its row).

    Strategy `replace_records`: clear the flags of every stored row in place (a build from nothing flags every
    record new: one column updated, not 12 M rows rewritten), delete the stored rows of those records, every
    stored CMND record and every stored CCCD record first written from W on (the ones a restated month no longer
    has are gone with it), then insert the model's rows. A run without a window replaces every row. -#}

{#- The window start W ('YYYY-MM-DD') of a run that keeps int_member_keys in place, or none: a build from
    nothing, a full refresh, a run that restates every month, a stored table from before first_period, or stored
    keys made with another secret (every key is hashed again: every row is rewritten). -#}
{% macro member_keys_window() -%}
  {%- set start = restate_from() -%}
  {%- if not execute or this is none or not is_incremental() or start is none -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
  {%- if 'first_period' not in columns -%}
    {{ return(none) }}
  {%- endif -%}
  {#- same secret; and no row without a first month (a column on_schema_change has just added, before the strategy
      runs: the model's rows are then every record) -#}
  {%- set row = run_query("select (select count(*) = 1 from (select * from " ~ this
        ~ " where identity_id is not null limit 1) as one where member_key = " ~ keyed_hash('identity_id') ~ "), "
        ~ "not exists (select 1 from " ~ this ~ " where first_period is null)").rows[0] -%}
  {{ return(start if (row[0] and row[1]) else none) }}
{%- endmacro %}

{% macro get_incremental_replace_records_sql(arg_dict) -%}
  {%- set target, source = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
  {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  {%- set win = member_keys_window() -%}
  {%- if win is none %}
  delete from {{ target }};
  {%- else %}
  update {{ target }} set is_new_record = false, previous_member_key = null
  where is_new_record or previous_member_key is not null;
  delete from {{ target }}
  where record_type = 'cmnd'
     or (record_type = 'cccd' and first_period >= cast('{{ win }}' as date))
     or identity_record in (select identity_record from {{ source }});
  {%- endif %}
  insert into {{ target }} ({{ cols }}) select {{ cols }} from {{ source }};
{%- endmacro %}

{#- The CCCD identity records (a CCCD is its own person) of the variants `rows` (int_identity_variants or a
    selection of it) that `where` keeps, each with the first month one of its variants was written:
    int_member_identities' CCCD records, and int_member_keys' records first written from W on. -#}
{% macro cccd_identity_records(rows, where='true') %}
    select
        cccd                     as identity_record,
        'cccd'                   as record_type,
        cccd                     as identity_id,
        'cccd'                   as resolution,
        cast(0 as bigint)        as n_later_matches,
        cast(0 as bigint)        as n_bhxh_differs,
        min(first_period)        as first_period
    from {{ rows }}
    where cccd is not null and ({{ where }})
    group by cccd
{%- endmacro %}
