{#-
  Incremental refresh keyed on period (delete+insert).

  The orchestrator passes the months whose files changed in env DOANVIEN_PERIODS (or --vars '{periods: "2026-10"}'). Carry-forward and month-over-month diffs make every later month depend on
  an earlier one, so an incremental run restates every month from the earliest listed month onwards (moved
  back over months a branch did not submit just before it: events seen in its next roster are dated there):
  a new month costs one month; a late correction of month m restates m .. latest.
  No `periods` (or "" / "all") on an incremental run = restate all months (correct, just not cheap);
  an explicit empty list (`periods: []`) or "nothing" (what the orchestrator sends when nothing was ingested
  since the base version) restates nothing.
  `--full-refresh` rebuilds from nothing and gives the same rows.
-#}

{#- The configuration of every model restated month by month (one place for all of them):
    `{{ config(**monthly_restatement()) }}`. Incremental, delete+insert on `period`; stored rows of re-keyed
    people renamed first (`rekey_stored_rows`), then the restated window deleted (`delete_restated_window`). -#}
{#- `people`: a model restated person by person (see restate_bounds): 'merged' (rows depend on the person's own
    roster rows only) or 'restated' (int_restated_people: also on who else counts in their CĐCS). The pre-hook then
    deletes, before the window, those people's rows only, and the new rows are appended. `dated=false`: the model's
    rows are month snapshots, restated from the listed months without the move back over months a branch did not
    submit (restate_bounds); its SQL reads restated_where(…, dated=false). `column`: the month column the restatement is
    keyed on (every model: period; an event table keyed on the month that shows the event was measured and dropped,
    dbt_project/README.md). `units`: a model of
    CĐCS × month grain (fct_dues_monthly) whose rows before the window change only in the CĐCS where merged or
    split people have month-end rows (restated_units_sql): the pre-hook deletes those CĐCS' rows of those months. -#}
{% macro monthly_restatement(people=none, dated=true, column='period', units=false) -%}
  {%- set delete_hook = "{{ delete_restated_window('" ~ column ~ "', people=" ~ ("'" ~ people ~ "'" if people else 'none')
                        ~ ", dated=" ~ dated ~ ", units=" ~ units ~ ") }}" -%}
  {#- with people, the pre-hook's delete is the only one: delete+insert would also delete every row of the months
      the new rows have (the earlier months of a few people) -#}
  {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'append' if (people or units or not dated) else 'delete+insert',
      'unique_key': 'period',
      'on_schema_change': 'append_new_columns',
      'pre_hook': ["{{ rekey_stored_rows() }}", delete_hook]
  }) }}
{%- endmacro %}

{% macro restate_from() -%}
  {#- `--vars '{periods: …}'` when given, else DOANVIEN_PERIODS (what pipelines.warehouse.build passes), read only
      when SQL runs (`execute`): no model's dependencies or configuration depend on it, and a variable of
      dbt_project.yml set from the environment would change with every build and make dbt parse the whole
      project again instead of partially (pipelines.warehouse.build.dbt_database_link) -#}
  {%- set value = var('periods', none) -%}
  {%- if value is none -%}
    {%- set value = env_var('DOANVIEN_PERIODS', '') if execute else '' -%}
  {%- endif -%}
  {%- if value is string -%}
    {%- if value | trim == 'nothing' -%}{{ return('9999-12-01') }}{%- endif -%}
    {%- set items = value.replace(';', ',').split(',') -%}
  {%- else -%}
    {%- set items = value -%}
    {#- an explicit empty list means "no file changed": restate nothing -#}
    {%- if items | length == 0 -%}{{ return('9999-12-01') }}{%- endif -%}
  {%- endif -%}
  {%- set months = [] -%}
  {%- for p in items -%}
    {%- set p = (p | string | trim) -%}
    {%- if p and p not in ('all', 'none', 'None') -%}{%- do months.append(p[:7]) -%}{%- endif -%}
  {%- endfor -%}
  {%- if months | length == 0 -%}{{ return(none) }}{%- endif -%}
  {{ return((months | sort | first) ~ '-01') }}
{%- endmacro %}

{#- First month an incremental run restates, as SQL: the earliest listed month, or earlier when this build
    re-keyed an identity record already stored (int_member_key_changes: its first own roster month), then moved
    back over the months a branch did not submit just before it (events observed in the new roster are dated
    into those months). -#}
{% macro restate_start_sql(start, relations=none, key_changes=true) -%}
  {#- relations: (branch months, key changes) when the caller cannot ref() them (a test's where, see
      duckdb__get_where_subquery). key_changes=false: the start of the listed months alone (restate_bounds) -#}
  {%- set branch_months = relations[0] if relations else ref('int_roster_branch_months') -%}
  {%- set key_changes_relation = relations[1] if relations else ref('int_member_key_changes') -%}
  (select least(s.start, coalesce(min(cast({{ dbt.dateadd('month', 1, 'bm.source_period') }} as date)), s.start))
   from (select
         {%- if key_changes %}
                least(cast('{{ start }}' as date),
                      coalesce((select min(first_period) from {{ key_changes_relation }} where not is_pure_rename),
                               cast('{{ start }}' as date))) as start
         {%- else %}
                cast('{{ start }}' as date) as start
         {%- endif %}
        ) as s
   left join {{ branch_months }} as bm
     on bm.is_carried_forward
    and bm.period = cast({{ dbt.dateadd('month', -1, 's.start') }} as date)
   group by s.start)
{%- endmacro %}

{#- restate_start_sql evaluated now (run_query, when the model runs: its upstream tables are built) into a date
    literal: a constant bound the engine pushes into scans and joins, where the scalar subquery became a
    nested-loop join over every row read (11 s of int_member_unit_months' 53 s at national). -#}
{% macro restate_start_literal(start, relations=none) -%}
  {%- if execute -%}
    {%- set value = run_query('select cast(' ~ restate_start_sql(start, relations) ~ ' as date)').columns[0].values()[0] -%}
    {{ return("cast('" ~ value ~ "' as date)") }}
  {%- else -%}
    {{ return('cast(' ~ restate_start_sql(start, relations) ~ ' as date)') }}
  {%- endif -%}
{%- endmacro %}

{#- The restated rows of an incremental run told apart (none on a build from nothing, a full refresh, a run that
    restates every month, or at parse time): {'w', 'k', 'first'} as 'YYYY-MM-DD' strings, evaluated now.
    - w: the first month of the listed months (moved back over months a branch did not submit, restate_start_sql
      without key changes): every person's rows are restated from w.
    - k: set when a key change that is not a pure rename (people merged or split, int_member_key_changes) reaches
      back before w: the month its records first appear (moved back the same way). Only those people's rows are
      restated in the months k .. w - 1, in the models that can tell them apart (monthly_restatement(people=…)):
      'merged' = both keys of every such change (member_states_merged_keys), 'restated' = int_restated_people
      (those and the people who count in the same CĐCS in those months). Every person's rows before that month
      hold records whose key did not change.
    - first: the earliest month restated at all (k, else w), what restate_start_sql gives: the window of every
      other model, of the data tests and of the analysts' file (int_restated_windows).
    dated=false: w and k not moved back over months a branch did not submit. That move is for the events (an event
    seen in a roster after such a gap is dated into the gap, int_member_events) and what is made of them; a month's
    snapshot rows (int_member_unit_months and the marts of the month's own rows: member_history, dues, services,
    activities, recruitment) stand on the roster carried into that month, which the next month's roster does not
    change (monthly_restatement(dated=false)). Before this, a branch that skipped one month made every person's
    rows of that month restated: at national scale, two months of every table instead of one. -#}
{% macro restate_bounds(dated=true) -%}
  {%- set start = restate_from() -%}
  {%- if not execute or this is none or start is none or flags.FULL_REFRESH -%}
    {{ return(none) }}
  {%- endif -%}
  {#- an incremental model on its first build computes every month; a table (int_restated_people) has no stored
      rows to keep and only asks which people are restated -#}
  {%- if model.config.materialized == 'incremental' and not is_incremental() -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set key_changes = ref('int_member_key_changes') -%}
  {%- set w_sql = restate_start_sql(start, key_changes=false) if dated else "cast('" ~ start ~ "' as date)" -%}
  {%- set row = run_query('select cast(' ~ w_sql ~ ' as date) as w, '
        ~ '(select min(first_period) from ' ~ key_changes ~ ' where not is_pure_rename) as k').rows[0] -%}
  {%- set w = row[0] | string -%}
  {%- set k = none -%}
  {%- if row[1] is not none and (row[1] | string) < w -%}
    {%- if dated -%}
      {%- set k = run_query('select cast(' ~ restate_start_sql(row[1] | string, key_changes=false) ~ ' as date)').rows[0][0] | string -%}
    {%- else -%}
      {%- set k = row[1] | string -%}
    {%- endif -%}
  {%- endif -%}
  {{ return({'w': w, 'k': k, 'first': k if k is not none else w}) }}
{%- endmacro %}

{#- The keys restated before the window (restate_bounds.k): 'merged' or 'restated' (see restate_bounds), as
    the model holds them (text in marts and restricted). -#}
{% macro restated_people_sql(people, as_text=false) -%}
  {%- if people == 'merged' -%}
    {%- set sql = member_states_merged_keys(ref('int_member_key_changes')) -%}
  {%- elif people == 'restated' -%}
    {%- set sql = 'select member_key from ' ~ ref('int_restated_people') -%}
  {%- else -%}
    {{ exceptions.raise_compiler_error("restated_people_sql: people must be 'merged' or 'restated', not " ~ people) }}
  {%- endif -%}
  {%- if as_text -%}
    select {{ member_key_text('member_key') }} as member_key from ({{ sql }}) as p
  {%- else -%}
    {{ sql }}
  {%- endif -%}
{%- endmacro %}

{#- The first month an incremental run restates (restate_bounds(dated).first) as a SQL date, or none (a build from
    nothing, a full refresh, a run restating every month, parse time); restated_where: the predicate on `column`
    (minus `lookback_months`), true when none. With dated=true it is the start period_window gives (restate_start_sql
    moves the earliest of the listed months and the key changes' month back, restate_bounds moves each back). -#}
{% macro restated_start(dated=true) -%}
  {%- set b = restate_bounds(dated) -%}
  {{ return("cast('" ~ b.first ~ "' as date)" if b is not none else none) }}
{%- endmacro %}

{% macro restated_where(column, lookback_months=0, dated=true) -%}
  {%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] -%}
  {%- set start = restated_start(dated) -%}
  {%- if start is none -%}
    {{ period_window(column, lookback_months) }}
  {%- else -%}
    {{ column }} >= cast({{ dbt.dateadd('month', -lookback_months, start) }} as date)
  {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` (a table with period and member_key) that a model restated person by person reads:
    the window's months for everyone, and, when people merged or split before it (restate_bounds(dated).k), the
    months k .. w - 1 of `people` ('merged' or 'restated', restated_people_sql) only. `select`: the select list. -#}
{% macro restated_rows_of(relation, people, dated=true, select='*') -%}
  {%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] -%}
  {%- set b = restate_bounds(dated) -%}
  {%- if b is not none and b.k is not none %}
    select {{ select }} from {{ relation }} where period >= cast('{{ b.w }}' as date)
    union all
    -- {{ people }} people's rows before the window (restate_bounds)
    select {{ select }} from {{ relation }}
    where period >= cast('{{ b.k }}' as date) and period < cast('{{ b.w }}' as date)
      and member_key in ({{ restated_people_sql(people) }})
  {%- else %}
    select {{ select }} from {{ relation }} where {{ restated_where('period', dated=dated) }}
  {%- endif -%}
{%- endmacro %}

{#- The CĐCS where merged or split people (restated_people_sql('merged')) have month-end rows in the months
    b.k .. b.w - 1 (b = restate_bounds(dated=false)): the only CĐCS whose figures of those months their merge
    changes, in a model of the month-end rows (fct_dues_monthly). -#}
{% macro restated_units_sql(b) -%}
  select distinct cdcs_code from {{ ref('int_member_unit_months') }}
  where period >= cast('{{ b.k }}' as date) and period < cast('{{ b.w }}' as date)
    and member_key in ({{ restated_people_sql('merged') }})
{%- endmacro %}

{#- SQL predicate selecting the rows an incremental run recomputes (true on a full build). -#}
{% macro period_window(column, lookback_months=0) -%}
  {%- set start = restate_from() -%}
  {%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] -%}
  {%- if is_incremental() and start is not none -%}
    {{ column }} >= cast({{ dbt.dateadd('month', -lookback_months, restate_start_literal(start)) }} as date)
  {%- else -%}
    1 = 1
  {%- endif -%}
{%- endmacro %}

{#- A model computed in parts (int_member_events): `part` = none (the run's window, period_window) or
    {'lo': first month (SQL date), 'hi': end month, excluded (SQL date) or none, 'people': a query of the part's
    member keys or none}. part_window: the months the part reads, from its first month minus `lookback_months`;
    part_people: ` and <column> in (…)` when the part has people. -#}
{% macro part_window(part, column, lookback_months=0) -%}
  {%- if part is none -%}
    {{ period_window(column, lookback_months) }}
  {%- else -%}
    {{ column }} >= cast({{ dbt.dateadd('month', -lookback_months, part.lo) }} as date)
    {%- if part.hi %} and {{ column }} < {{ part.hi }}{% endif -%}
  {%- endif -%}
{%- endmacro %}

{% macro part_people(part, column) -%}
  {%- if part is not none and part.people %} and {{ column }} in ({{ part.people }}){% endif -%}
{%- endmacro %}

{#- pre_hook of incremental models: a member whose records all moved to one new key (a CMND-only member linked
    when their CCCD first appears) keeps every figure of the stored months; only the key of their stored rows
    changes (int_member_key_changes.is_pure_rename). Models without a member_key column skip it; a model that
    holds the key as text (marts, restricted) gets the keys as text. -#}
{% macro rekey_stored_rows() -%}
  {%- set cols = adapter.get_columns_in_relation(this) if is_incremental() else [] -%}
  {%- set key = cols | selectattr('name', 'equalto', 'member_key') | list -%}
  {%- if key -%}
    {#- an intermediate model holds the key as the UUID int_member_key_changes has; a mart holds its text -#}
    {%- set as_text = 'uuid' not in key[0].dtype | lower -%}
    {#- a column computed from the key is computed again (fct_member_events.event_id), as a build from nothing
        computes it from the new key -#}
    {%- set has_event_id = cols | selectattr('name', 'equalto', 'event_id') | list -%}
    update {{ this }} as t
    set member_key = c.member_key
    {%- if has_event_id %},
        event_id = {{ member_event_id('c.member_key', 't.period', 't.event_type', 't.cdcs_code') }}
    {%- endif %}
    from (select distinct
              {{ member_key_text('previous_member_key') if as_text else 'previous_member_key' }} as previous_member_key,
              {{ member_key_text('member_key') if as_text else 'member_key' }} as member_key
          from {{ ref('int_member_key_changes') }} where is_pure_rename) as c
    where t.member_key = c.previous_member_key
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{#- member_event_id: the id of one membership event (fct_member_events): a hash of the member's key (text), the
    month, the event type and the CĐCS. One definition for the model and for rekey_stored_rows. -#}
{% macro member_event_id(member_key, period, event_type, cdcs_code) -%}
  cast({{ dbt.hash(dbt.concat([member_key, "'|'", "cast(" ~ period ~ " as " ~ dbt.type_string() ~ ")", "'|'",
                               event_type, "'|'", cdcs_code])) }} as {{ dbt.type_string() }})
{%- endmacro %}

{#- pre_hook of incremental models: remove the whole restated window first, so a month whose rows all
    disappeared after a correction does not keep stale rows (delete+insert alone only replaces the
    periods present in the new batch). -#}
{% macro delete_restated_window(column='period', people=none, dated=true, units=false) -%}
  {%- set b = restate_bounds(dated) if (people or units or not dated) else none -%}
  {%- if units and b is not none and b.k is not none -%}
    delete from {{ this }}
    where {{ column }} >= cast('{{ b.w }}' as date)
       or ({{ column }} >= cast('{{ b.k }}' as date) and cdcs_code in ({{ restated_units_sql(b) }}))
  {%- elif people and b is not none and b.k is not none -%}
    {%- set cols = adapter.get_columns_in_relation(this) -%}
    {%- set key = cols | selectattr('name', 'equalto', 'member_key') | list -%}
    {%- set as_text = 'uuid' not in key[0].dtype | lower -%}
    delete from {{ this }}
    where {{ column }} >= cast('{{ b.w }}' as date)
       or ({{ column }} >= cast('{{ b.k }}' as date)
           and member_key in ({{ restated_people_sql(people, as_text) }}))
  {%- elif b is not none -%}
    delete from {{ this }} where {{ column }} >= cast('{{ b.first }}' as date)
  {%- elif is_incremental() -%}
    delete from {{ this }} where {{ period_window(column) }}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{#- where-clause for row-level tests of the big monthly views: on a run with `periods`, check only the
    restated months (the others were checked when they were built); otherwise every row. -#}
{% macro restated_months_only_where(column="period", file_month_column=none, carried_forward=false) -%}
  {%- set start = restate_from() -%}
  {#- the tables the window start reads, ref()'d whatever the run (dbt records a node's dependencies when it parses
      the project, where restate_from() is empty) -#}
  {%- set _dependencies = [ref('int_roster_branch_months'), ref('int_member_key_changes')] -%}
  {%- if start is none -%}1 = 1{%- else -%}{{ column }} >= {{ restate_start_literal(start) }}
  {%- if file_month_column %} and {{ raw_file_month_floor(file_month_column, restate_start_literal(start),
                                                         carried_forward=carried_forward) }}{% endif -%}
  {%- endif -%}
{%- endmacro %}


{#
  The accepted rows of the current file version of one kind (latest arrival per branch × month wins;
  superseded, duplicate and refused files never count), limited to the months this run restates (and, with
  `people`, the earlier months of those people's records: monthly_restatement(people=…)).
  `staging_model` is the stg_ model of that kind; returns a select usable as a CTE body.
#}
{% macro current_version_rows(kind, staging_model, people=none) %}
    {%- set b = restate_bounds(dated=false) if people else none %}
    {%- set _dependencies = [ref('int_member_keys')] %}
    {%- set current_rows %}
    select r.*
    from {{ ref(staging_model) }} as r
    join (
        select file_id from {{ ref('int_file_versions_ranked') }}
        where kind = '{{ kind }}' and is_current_version
    ) as current_files on current_files.file_id = r.file_id
    {%- endset %}
    {{ current_rows }}
    {%- if b is not none and b.k is not none %}
    where r.period >= cast('{{ b.w }}' as date)
      and {{ raw_file_month_floor('r.file_month', "cast('" ~ b.w ~ "' as date)") }}
    union all
    -- the rows of merged or split people's records in the months k .. w - 1 (restate_bounds; people = 'merged')
    {{ current_rows }}
    where r.period >= cast('{{ b.k }}' as date) and r.period < cast('{{ b.w }}' as date)
      and {{ raw_file_month_floor('r.file_month', "cast('" ~ b.k ~ "' as date)") }}
      and coalesce(r.cccd, 'cmnd:' || r.cmnd) in (
          select identity_record from {{ ref('int_member_keys') }}
          where member_key in ({{ restated_people_sql(people) }}))
    {%- else %}
    where {{ restated_where('r.period', dated=false) }}
      and {{ raw_file_month_floor('r.file_month', restated_start(dated=false)) }}
    {%- endif %}
{% endmacro %}


{#- A constant lower bound on `file_month` (the raw zone's month directory, see raw_glob) for a query that reads
    raw rows from the month `start_sql` on (minus `lookback_months`), so DuckDB opens only those months' files
    instead of every file of history. Logically redundant with the query's own period filter, so it cannot change
    a result: a file's rows stand for its declared month, or, carried forward (`carried_forward=true`, roster rows
    through int_roster_branch_months), for later months whose source file is the earliest `source_period` of the
    branch months read. `start_sql` = a SQL date (a literal or restate_start_sql); none = this incremental
    run's own window (period_window); no window (a full build, no `periods`) = no bound. -#}
{% macro raw_file_month_floor(column, start_sql=none, lookback_months=0, carried_forward=false) -%}
  {%- set branch_months = ref('int_roster_branch_months') if carried_forward else none -%}
  {%- if start_sql is none -%}
    {%- set start = restate_from() -%}
    {%- if is_incremental() and start is not none -%}
      {%- set start_sql = restate_start_sql(start) -%}
    {%- endif -%}
  {%- endif -%}
  {%- if start_sql is none or not execute -%}
    1 = 1
  {%- else -%}
    {%- set first = 'cast(' ~ dbt.dateadd('month', -lookback_months, 'cast(' ~ start_sql ~ ' as date)') ~ ' as date)' -%}
    {%- if carried_forward -%}
      {%- set sql = "select strftime(min(source_period), '%Y-%m') from " ~ branch_months
            ~ " where source_file_id is not null and period >= " ~ first -%}
    {%- else -%}
      {%- set sql = "select strftime(" ~ first ~ ", '%Y-%m')" -%}
    {%- endif -%}
    {%- set month = run_query(sql).columns[0].values()[0] -%}
    {%- if month is none -%}1 = 1{%- else -%}{{ column }} >= '{{ month }}'{%- endif -%}
  {%- endif -%}
{%- endmacro %}


{#- pre_hook of int_identity_variants (insert-only): remove the variants first written in the restated window
    (from restate_from() on), or every variant when this run restates every month, before the window's new
    variants are appended. -#}
{% macro delete_variants_from_window() -%}
  {%- set start = restate_from() -%}
  {%- if not is_incremental() -%}
    select 1
  {%- elif start is none -%}
    delete from {{ this }}
  {%- else -%}
    delete from {{ this }} where first_period >= cast('{{ start }}' as date)
  {%- endif -%}
{%- endmacro %}


{#- Tests' `where` config (dbt renders it with var() and env_var() only, at parse time): on a run with `periods`,
    - `restated:<period column>` (a monthly table) stands for `<column> >= ` the first month this run restated
      (restate_start_literal, moved back over carried-forward months and re-keyed records);
    - `restated_raw:<period column>:<file_month column>` (a raw-rows view) for the months whose files changed
      (restate_from(): a file's rows stand for its declared month, in its file_month directory), which also
      bounds the raw months DuckDB opens;
    so a built-in test (not_null, accepted_values) checks only what this run wrote or read anew: the earlier
    months were checked when they were built, and the check costs a month instead of all history. Without
    `periods` (a full build) every row is checked. Any other value is used as SQL, as in dbt's own
    get_where_subquery, which this overrides for DuckDB (dispatch looks in the root project first).
    The test node's dependencies are its model's only (its where was a string at parse time), so the tables the
    window start reads are looked up in the graph (their schema and alias as configured), not ref()'d: a
    monthly table's test runs after the table, itself after them. -#}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and (where.startswith('restated:') or where.startswith('restated_raw:')) -%}
        {%- set parts = where.split(':') -%}
        {%- set start = restate_from() -%}
        {%- if start is none -%}
            {%- set where = '1 = 1' -%}
        {%- elif parts[0] == 'restated_raw' -%}
            {%- set where = parts[1] ~ " >= cast('" ~ start ~ "' as date) and " ~ parts[2] ~ " >= '" ~ start[:7] ~ "'" -%}
        {%- else -%}
            {#- the two models as the manifest places them (schema and alias from their config, not spelled here) -#}
            {%- set rels = [] -%}
            {%- for name in ['int_roster_branch_months', 'int_member_key_changes'] -%}
                {%- set node = graph.nodes['model.' ~ project_name ~ '.' ~ name] -%}
                {%- do rels.append(api.Relation.create(database=relation.database, schema=node.schema,
                                                       identifier=node.alias)) -%}
            {%- endfor -%}
            {%- set where = parts[1] ~ ' >= ' ~ restate_start_literal(start, rels) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
