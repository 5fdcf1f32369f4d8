"""The petstore-rds policy pack directory (``pulumi ... --policy-pack policy``).

This file only makes ``policy/__main__.py`` the module ``policy.__main__`` for mypy, so it does
not clash with the Pulumi program's own ``__main__.py``; the checks live in ``petstore_policy``.
"""
