"""Scheduled report emails ("Báo cáo qua email").

- `subscriptions`: who receives which brief (recipient, organisation unit = scope, cadence, language),
  and the delivery ledger, in `<data>/app/reports.sqlite` (separate from the warehouse).
- `periods`: what period a cadence reports on, and when.
- `recipients`: resolves a subscription to an address at send time (accounts may be disabled or
  lose their role between subscribing and sending).
- `figures`: the numbers of one brief, for one scope, from the dashboards' query layer.
- `charts`, `workbook`, `brief`: PNG charts, XLSX attachment and the MIME message.
- `delivery`: SMTP (or `.eml` files in `<data>/outbox/`), at most once per subscription and period.
- `cli`: `doanvien reports ...`.
"""
