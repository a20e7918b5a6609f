"""Who may do what (安全与个人信息): accounts, roles and areas, audit, personal data.

* :mod:`~gridmap.security.auth` — users, password hashes, API keys, signed tokens;
* :mod:`~gridmap.security.access` — principals, roles and area scoping;
* :mod:`~gridmap.security.audit` — the append-only audit log;
* :mod:`~gridmap.security.privacy` — personal data: normalise, validate, mask, encrypt;
* :mod:`~gridmap.security.disclosure` — the one table of what each role may read about events.
"""
