"""Support code for Tollgate's end-to-end tests: the gateway process, origin servers,
certificates, ports and raw-socket helpers. The fixtures in ``tests/e2e/conftest.py`` wrap these."""
