-- grain: one person (member_key). RESTRICTED: identifying data, read only through pipelines.access.
-- Attributes come from the person's latest current-roster row (latest month, latest file, CCCD rows
-- before legacy CMND rows); cdcs_code is the unit where the person is counted in their latest
-- month (dim_member).
with rows_ as (
    select
        k.member_key,
        k.identity_id,
        r.*,
        row_number() over (
            partition by k.member_key
            order by r.period desc, (r.cccd is not null) desc, r.file_id desc, r.source_row desc
        ) as rn
    from {{ ref('int_roster_rows_monthly') }} as r
    join {{ ref('int_member_keys') }} as k on k.identity_record = r.identity_record
    where not r.is_carried_forward
),

cmnds as (
    select k.member_key, max(r.cmnd) as cmnd
    from {{ ref('int_roster_rows_monthly') }} as r
    join {{ ref('int_member_keys') }} as k on k.identity_record = r.identity_record
    where r.cmnd is not null and not r.is_carried_forward
    group by k.member_key
)

select
    r.member_key,
    case when r.identity_id like 'cmnd:%' then null else r.identity_id end as cccd,
    c.cmnd,
    r.full_name,
    {{ name_search('r.full_name') }}       as name_search,
    r.birth_date,
    r.birth_date_precision,
    r.gender,
    r.ethnicity_code,
    r.bhxh_code,
    r.member_code,
    d.cdcs_code,
    r.insurance_salary,
    r.join_date,
    r.period                               as last_roster_period
from rows_ as r
left join cmnds as c on c.member_key = r.member_key
left join {{ ref('dim_member') }} as d on d.member_key = r.member_key
where r.rn = 1
