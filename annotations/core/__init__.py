"""Cross-cutting pieces every area uses: the domain exception and the API error handler, ids, roles and
permissions, decorators, the audit trail, users, tokens, login limits, markdown, prepared statements."""
