{#- The per-person summaries of int_member_states (see that model): one pass over the month-end memberships
    (member_states_month_summary) and over the current-roster rows (member_states_roster_summary) of the rows
    `where` selects, and the flat column list of a (month summary, roster summary) pair. -#}
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


{% macro member_states_roster_summary(where) %}
    select
        k.member_key,
        arg_max(
            struct_pack(
                identity_id := k.identity_id, full_name := r.full_name, birth_date := r.birth_date,
                birth_date_precision := r.birth_date_precision, gender := r.gender,
                ethnicity_code := r.ethnicity_code, bhxh_code := r.bhxh_code, member_code := r.member_code,
                cdcs_code := r.cdcs_code, insurance_salary := r.insurance_salary, join_date := r.join_date),
            struct_pack(p := r.period, c := r.cccd is not null, f := r.file_id, s := r.source_row))
                                                      as latest,
        min(r.period)                                 as r_first_period,
        max(r.period)                                 as r_last_period,
        max(r.cmnd)                                   as r_cmnd,
        -- the first month the largest CMND was written (CMNDs descending, then months)
        arg_max(r.period, struct_pack(c := r.cmnd, d := {{ dbt.datediff('r.period', "cast('2999-12-01' as date)", 'day') }}))
            filter (where r.cmnd is not null)        as r_cmnd_period
    from {{ ref('int_roster_rows_monthly') }} as r
    join {{ ref('int_member_keys') }} as k on k.identity_record = r.identity_record
    where not r.is_carried_forward and {{ where }}
    group by k.member_key
{%- endmacro %}


{% macro member_states_flatten(m, r) %}
        {{ m }}.m_last_period, {{ m }}.m_cdcs_code, {{ m }}.m_gender, {{ m }}.m_birth_date, {{ m }}.m_first_period,
        {{ m }}.m_first_join_date, {{ m }}.m_first_join_period,
        {{ r }}.latest.identity_id as r_identity_id, {{ r }}.latest.full_name as r_full_name,
        {{ name_search(r ~ '.latest.full_name') }} as r_name_search,
        {{ r }}.latest.birth_date as r_birth_date, {{ r }}.latest.birth_date_precision as r_birth_date_precision,
        {{ r }}.latest.gender as r_gender, {{ r }}.latest.ethnicity_code as r_ethnicity_code,
        {{ r }}.latest.bhxh_code as r_bhxh_code, {{ r }}.latest.member_code as r_member_code,
        {{ r }}.latest.cdcs_code as r_cdcs_code, {{ r }}.latest.insurance_salary as r_insurance_salary,
        {{ r }}.latest.join_date as r_join_date,
        {{ r }}.r_first_period, {{ r }}.r_last_period, {{ r }}.r_cmnd, {{ r }}.r_cmnd_period
{%- endmacro %}

