{#-
  Raw zone and registry readers (DuckDB-specific, see dbt_project/README.md "Portability").

  raw_relation(source_name, table_name) renders a FROM-able relation for one source table:
  - registers the dependency with source() (lineage, docs, dagster-dbt asset graph);
  - reads every Parquet file of the source's glob with read_parquet. The rows of the five row kinds sit in one
    directory per declared month (raw/<kind>/file_month=YYYY-MM/), read with hive partitioning, so `file_month`
    is a column and a constant filter on it prunes whole months without opening their files. They are read
    without union_by_name (which opens every file of history to unify schemas): every rows file has one exact
    schema per kind (pipelines.ingest.engine.RAW_SCHEMA) and DuckDB binds on the empty
    file_month=0000-00/_schema.parquet that sorts first, so a file missing a column fails loudly. DuckDB estimates
    a multi-file read's rows as its first file's times the number of files: 0 with that empty file first, so every
    join built its hash table on the raw rows (12 M at national, all their columns) instead of on the few
    branch-months or file versions they join. So the read states its estimate (explicit_cardinality): the rows
    the ledger says were accepted into the kind, every version (exactly what the raw zone holds; read from the
    ledger, not from a rows file, so compiling opens no month a model does not read). Measured on a national
    month: a roster consumer's read 9.3 s → 4.3 s. The ledger and the quarantine are read with
    union_by_name;
  - unions BY NAME with a typed empty relation, so a column that no file has yet still exists with its
    contract type, and a kind with no file at all (a fresh data root) yields a typed empty relation
    instead of DuckDB's "No files found" error.
  On another engine the raw zone would be loaded as tables and this macro becomes `source(...)`.
-#}

{% macro raw_columns(table_name) %}
  {%- set lineage = {'file_id': 'varchar', 'branch_code': 'varchar', 'period': 'date',
                     'source_sheet': 'varchar', 'source_row': 'bigint', 'flags': 'varchar[]'} -%}
  {%- set cols = {
    'files': {'file_id': 'varchar', 'sha256': 'varchar', 'branch_code': 'varchar', 'period': 'date',
              'kind': 'varchar', 'detected_kind': 'varchar', 'original_name': 'varchar',
              'received_at': 'timestamp', 'status': 'varchar', 'reason_code': 'varchar',
              'message_vi': 'varchar', 'rows_read': 'bigint', 'rows_accepted': 'bigint',
              'rows_refused': 'bigint', 'format': 'varchar', 'encoding': 'varchar',
              'ingested_at': 'timestamp'},
    'roster': {'cdcs_code': 'varchar', 'full_name': 'varchar', 'birth_date': 'date',
               'birth_date_precision': 'varchar', 'gender': 'varchar', 'ethnicity_code': 'varchar',
               'cccd': 'varchar', 'cmnd': 'varchar', 'bhxh_code': 'varchar', 'member_code': 'varchar',
               'join_date': 'date', 'join_date_precision': 'varchar', 'insurance_salary': 'bigint',
               'leave_date': 'date', 'leave_reason_code': 'varchar'},
    'dues': {'cdcs_code': 'varchar', 'cdcs_name': 'varchar', 'members_count': 'bigint',
             'salary_fund': 'bigint', 'dues_expected': 'bigint', 'dues_collected': 'bigint'},
    'services': {'cdcs_code': 'varchar', 'full_name': 'varchar', 'cccd': 'varchar', 'cmnd': 'varchar',
                 'program': 'varchar', 'service_date': 'date', 'amount': 'bigint'},
    'activities': {'cdcs_code': 'varchar', 'activity_type': 'varchar', 'activity_name': 'varchar',
                   'activity_date': 'date', 'full_name': 'varchar', 'cccd': 'varchar', 'cmnd': 'varchar'},
    'insurance': {'employer_code': 'varchar', 'employer_name': 'varchar', 'province_new_code': 'varchar',
                  'industry_code': 'varchar', 'ownership_type': 'varchar', 'insured_workers': 'bigint',
                  'insured_women': 'bigint'},
    'quarantine': {'file_id': 'varchar', 'source_sheet': 'varchar', 'source_row': 'bigint',
                   'rule': 'varchar', 'column': 'varchar', 'value': 'varchar',
                   'message_vi': 'varchar', 'message_en': 'varchar'},
    'units': {'unit_code': 'varchar', 'unit_name': 'varchar', 'level': 'varchar',
              'upper_level_type': 'varchar', 'parent_code': 'varchar', 'province_old_code': 'varchar',
              'province_new_code': 'varchar', 'sector_code': 'varchar', 'ownership_type': 'varchar',
              'industry_code': 'varchar', 'employer_code': 'varchar', 'valid_from': 'date',
              'valid_to': 'date'},
    'branches': {'branch_code': 'varchar', 'branch_name': 'varchar', 'province_new_code': 'varchar',
                 'email': 'varchar', 'valid_from': 'date', 'valid_to': 'date'},
  } -%}
  {%- set out = cols[table_name] -%}
  {%- if is_raw_rows_kind(table_name) -%}
    {%- set merged = {} -%}
    {%- do merged.update(lineage) -%}
    {%- do merged.update(out) -%}
    {#- the month directory the rows file sits in (hive partition raw/<kind>/file_month=YYYY-MM/) -#}
    {%- do merged.update({'file_month': 'varchar'}) -%}
    {%- set out = merged -%}
  {%- endif -%}
  {{ return(out) }}
{% endmacro %}

{% macro is_raw_rows_kind(table_name) %}
  {{ return(table_name in ('roster', 'dues', 'services', 'activities', 'insurance')) }}
{% endmacro %}

{% macro raw_glob(table_name) %}
  {%- if table_name in ('units', 'branches') -%}
    {{ return(var('registry_dir') ~ '/' ~ table_name ~ '.parquet') }}
  {%- elif table_name == 'quarantine' -%}
    {#- loose files (one per file version) and the segments they are compacted into (pipelines.ingest.quarantine) -#}
    {{ return(var('quarantine_dir') ~ '/**/*.parquet') }}
  {%- elif table_name == 'files' -%}
    {#- the ledger: loose rows (one file per version) and the segments they are compacted into
        (pipelines.ingest.ledger); stg_raw__files keeps one row per file_id -#}
    {{ return(var('raw_dir') ~ '/files/**/*.parquet') }}
  {%- elif is_raw_rows_kind(table_name) -%}
    {#- one directory per declared month: a constant filter on file_month skips the other months' files
        without opening them (raw_file_month_floor) -#}
    {{ return(var('raw_dir') ~ '/' ~ table_name ~ '/file_month=*/*.parquet') }}
  {%- else -%}
    {{ return(var('raw_dir') ~ '/' ~ table_name ~ '/*.parquet') }}
  {%- endif -%}
{% endmacro %}

{% macro typed_empty_relation(columns) -%}
  (select {% for name, type in columns.items() %}cast(null as {{ type }}) as {{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor %} where 1 = 0)
{%- endmacro %}

{% macro raw_relation(source_name, table_name) -%}
  {%- set _lineage = source(source_name, table_name) -%}
  {%- set columns = raw_columns(table_name) -%}
  {%- set glob = raw_glob(table_name) -%}
  {%- set has_files = false -%}
  {%- set estimate = none -%}
  {%- if execute -%}
    {%- set result = run_query("select count(*), count(*) filter (where not ends_with(file, '/_schema.parquet')) "
                               ~ "from glob('" ~ glob ~ "')") -%}
    {%- set has_files = result.columns[0].values()[0] > 0 -%}
    {%- if is_raw_rows_kind(table_name) and result.columns[1].values()[0] > 0 -%}
      {#- the rows the ledger says were accepted into this kind (every version: what the raw zone holds) -#}
      {%- set ledger = raw_glob('files') -%}
      {%- if run_query("select count(*) from glob('" ~ ledger ~ "')").columns[0].values()[0] > 0 -%}
        {%- set accepted = run_query("select coalesce(sum(rows_accepted), 0) from read_parquet('" ~ ledger
              ~ "', union_by_name = true) where kind = '" ~ table_name ~ "'").columns[0].values()[0] -%}
        {%- set estimate = [accepted | int, 1] | max -%}
      {%- endif -%}
    {%- endif -%}
  {%- endif -%}
  {%- if has_files -%}
  (select * from {{ typed_empty_relation(columns) }}
   union all by name
   select * from read_parquet('{{ glob }}',
       {%- if is_raw_rows_kind(table_name) %} hive_partitioning = true, hive_types = {'file_month': varchar}
       {%- if estimate is not none %}, explicit_cardinality = {{ estimate }}{% endif %}
       {%- else %} union_by_name = true{% endif %}))
  {%- else -%}
  {{ typed_empty_relation(columns) }}
  {%- endif -%}
{%- endmacro %}
