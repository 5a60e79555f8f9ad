"""Access and self-service: accounts, roles, scope, audit, member lookups, the analyst SQL sandbox.

Restricted data (schema `restricted` of the warehouse: CCCD, names, birth dates, salaries) is read only
through this package, and every function that reads it takes the caller's `User` and enforces their scope.
See docs/ACCESS.md.
"""
