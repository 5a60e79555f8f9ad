{#- The per-person summaries of int_member_month_states and int_member_roster_states (see those models): one
    pass over the month-end memberships (member_states_month_summary) or the current-roster rows
    (member_states_roster_summary) that `where` selects, one row per person; the stored copy with pure re-keys
    renamed (member_states_stored) and the merged or split keys (member_states_merged_keys), shared with
    int_membership_episodes. -#}
{% macro member_states_month_summary(where) %}
    select
        member_key,
        max(period)                                   as m_last_period,
        arg_max_null(cdcs_code, period)               as m_cdcs_code,
        arg_max_null(gender, period)                  as m_gender,
        arg_max_null(birth_date, period)              as m_birth_date,
        min(period)                                   as m_first_period,
        min(join_date)                                as m_first_join_date,
        -- the first month the earliest join date was written (join dates ascending, then months)
        arg_min(period, struct_pack(j := join_date, p := period)) filter (where join_date is not null)
                                                      as m_first_join_period
    from {{ ref('int_member_months') }}
    where {{ where }}
    group by member_key
{%- endmacro %}


{% macro member_states_roster_summary(where, rows=none) %}
    -- the latest row of each person by a window sort (spills to disk; an arg_max of a wide struct per person
    -- does not, and took 3× longer at national scale). `rows`: the roster rows to read (SQL of a relation; default
    -- int_roster_rows_monthly, every row of history the where does not exclude)
    select
        member_key,
        identity_id                                   as r_identity_id,
        full_name                                     as r_full_name,
        birth_date                                    as r_birth_date,
        birth_date_precision                          as r_birth_date_precision,
        gender                                        as r_gender,
        ethnicity_code                                as r_ethnicity_code,
        bhxh_code                                     as r_bhxh_code,
        member_code                                   as r_member_code,
        cdcs_code                                     as r_cdcs_code,
        insurance_salary                              as r_insurance_salary,
        join_date                                     as r_join_date,
        period                                        as r_last_period
    from (
        select
            k.member_key,
            k.identity_id,
            r.full_name, r.birth_date, r.birth_date_precision, r.gender, r.ethnicity_code, r.bhxh_code,
            r.member_code, r.cdcs_code, r.insurance_salary, r.join_date, r.period,
            row_number() over (partition by k.member_key
                               order by r.period desc, (r.cccd is not null) desc, r.file_id desc, r.source_row desc) as rn
        from {{ rows if rows is not none else ref('int_roster_rows_monthly') }} as r
        join {{ ref('int_member_keys') }} as k on k.identity_record = r.identity_record
        where not r.is_carried_forward and {{ where }}
    ) as ranked
    where rn = 1
{%- endmacro %}


{#- The roster rows of all history of a few people (`records_sql`: a query of their identity records), for a
    per-person state re-read from all history (keys merged or split, a stored row the restated months no longer
    have). Filtered on the raw columns before any join: joined to the keys first, every roster row of every month
    was hashed (national, three months: 35.6 M rows, over the 6 GB memory limit, so a month with one merged person
    could not be built). The records are read first (run_query); up to `inline_max` of them are written into the
    query as literal lists, which DuckDB applies inside the Parquet scan (8 s for three national months), more
    are matched by a semi-join on a temporary table of them (30 s, little memory). -#}
{% macro member_states_records_rows(records_sql, relation_name, inline_max=2000) %}
    {%- set rows = ref('int_roster_rows_monthly') %}
    {%- if not execute %}{{ return(rows) }}{% endif %}
    {%- set records = run_query('select distinct identity_record from (' ~ records_sql ~ ') as x '
                                ~ 'where identity_record is not null').columns[0].values() %}
    {%- set cccds = [] %}{%- set cmnds = [] %}
    {%- for r in records %}
      {%- set r = r | replace("'", "''") %}
      {%- if r.startswith('cmnd:') %}{% do cmnds.append(r[5:]) %}{% else %}{% do cccds.append(r) %}{% endif %}
    {%- endfor %}
    {%- if records | length <= inline_max %}
      {%- set cccd_in = "'" ~ (cccds | join("', '")) ~ "'" if cccds else 'null' %}
      {%- set cmnd_in = "'" ~ (cmnds | join("', '")) ~ "'" if cmnds else 'null' %}
      {{ return('(select * from ' ~ rows ~ ' where cccd in (' ~ cccd_in ~ ') union all select * from ' ~ rows
                ~ ' where cccd is null and cmnd in (' ~ cmnd_in ~ '))') }}
    {%- else %}
      {%- do run_query('create or replace temporary table ' ~ relation_name ~ ' as select distinct identity_record, '
                       ~ "case when identity_record like 'cmnd:%' then null else identity_record end as cccd, "
                       ~ "case when identity_record like 'cmnd:%' then substr(identity_record, 6) end as cmnd "
                       ~ 'from (' ~ records_sql ~ ') as x') %}
      {{ return('(select * from ' ~ rows ~ ' where cccd in (select cccd from ' ~ relation_name
                ~ ' where cccd is not null) union all select * from ' ~ rows ~ ' where cccd is null and cmnd in '
                ~ '(select cmnd from ' ~ relation_name ~ ' where cmnd is not null))') }}
    {%- endif %}
{%- endmacro %}


{#- The stored copy of a table kept month by month (`previous`: this model's table in the file the build starts
    from), with the keys of pure re-keys (int_member_key_changes.is_pure_rename) renamed. -#}
{% macro member_states_stored(previous, key_changes) %}
    select s.* replace (coalesce(rn.member_key, s.member_key) as member_key)
    from {{ previous }} as s
    left join (select distinct previous_member_key, member_key from {{ key_changes }} where is_pure_rename) as rn
      on rn.previous_member_key = s.member_key
{%- endmacro %}


{#- The keys whose records merged or split in this build (old and new): re-aggregated from all their history. -#}
{% macro member_states_merged_keys(key_changes) %}
    select member_key from {{ key_changes }} where not is_pure_rename
    union
    select previous_member_key from {{ key_changes }} where not is_pure_rename
{%- endmacro %}

{#- A person's standing from their two per-person states (m = int_member_month_states, r = int_member_roster_states)
    and the latest month of data (`latest`, SQL): counted in it (is_active), 'active' or 'left' (status), and
    their age band in it (from the month-end birth date, else the latest roster row's). dim_member and
    restricted.member_pii (what a member lookup shows) take them from here. -#}
{% macro member_is_active(m, latest) -%}
  coalesce({{ m }}.m_last_period = {{ latest }}, false)
{%- endmacro %}

{% macro member_status(m, latest) -%}
  case when {{ member_is_active(m, latest) }} then 'active' else 'left' end
{%- endmacro %}

{% macro member_age_band(m, r, latest) -%}
  {{ age_band('coalesce(' ~ m ~ '.m_birth_date, ' ~ r ~ '.r_birth_date)', latest) }}
{%- endmacro %}


{#- A person's current CĐCS from their two per-person states (m = int_member_month_states, r =
    int_member_roster_states): where they are counted in their latest month, else (never counted at a month end)
    the unit of their latest current-roster row. dim_member.cdcs_code and restricted.member_pii.cdcs_code. -#}
{% macro member_current_cdcs(m, r) -%}
  coalesce({{ m }}.m_cdcs_code, {{ r }}.r_cdcs_code)
{%- endmacro %}


{#- The CMND × CCCD pairs written on one roster row (a file's column of old CMNDs; `variants` =
    int_identity_variants), with the first month and CĐCS that wrote them together, how many CCCDs were written
    beside the CMND (n_cccd), whether a row that paired them names the CMND's own member (the name and gender of a
    row where the CMND stands alone, its CCCD cell empty, and no BHXH code other than that row's: two people never
    share one, and a birth date may be mistyped), whether the CMND has such rows at all, and the rule
    itself, written here only: links_by_row = the CMND belongs to that CCCD person by the row (the only CCCD
    written beside it, on rows naming its member, or it has no row of its own to compare). A pair that does not
    link is a conflict for a data steward: beside several CCCDs, or on rows naming someone else (Excel's fill
    handle dragged a legacy member's CMND onto the next person's row, say: in the national test data onto a
    namesake of the same gender with another BHXH code). Read by int_member_identities
    ('cmnd_same_row'), dq_member_conflicts ('cmnd_several_cccd', 'cmnd_beside_other_name') and member_pii.cmnd. -#}
{% macro cmnd_row_pairs(variants) %}
    select
        *,
        n_cccd = 1 and (names_cmnd_member or not cmnd_has_own_rows) as links_by_row
    from (
        select *, count(*) over (partition by cmnd) as n_cccd
        from (
            select
                p.cmnd,
                p.cccd,
                min(p.first_period)                                                                   as first_period,
                arg_min(p.first_cdcs_code, struct_pack(p := p.first_period, c := p.first_cdcs_code)) as cdcs_code,
                {{ any_row('coalesce(o.name_key = p.name_key and o.gender = p.gender '
                           ~ 'and not coalesce(o.bhxh_code <> p.bhxh_code, false), false)') }} as names_cmnd_member,
                {{ any_row('o.cmnd is not null') }}                                                   as cmnd_has_own_rows
            from {{ variants }} as p
            -- the ways the CMND was written on rows of its own (few per CMND)
            left join (
                select distinct cmnd, name_key, gender, bhxh_code
                from {{ variants }}
                where cccd is null and cmnd is not null
            ) as o
              on o.cmnd = p.cmnd
            where p.cmnd is not null and p.cccd is not null
            group by p.cmnd, p.cccd
        ) as pairs
    ) as counted
{%- endmacro %}
